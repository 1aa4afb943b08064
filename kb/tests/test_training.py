"""Fitting and measuring the ranker: the figures match the reference scorer, cross-validation
never sees the case it ranks, and `train_ranker` learns from the help desk's own work."""

import io
import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from kb.guided.flow import start_diagnosis
from kb.importer import import_content
from kb.models import Case, Section
from kb.search import ranking, search, semantic, training
from kb.search.ranking import FEATURES, INDEX

SCORER = Path(__file__).resolve().parents[3] / "shared" / "eval" / "score.py"

A, B, C, D = (("g", "a", "x"), ("g", "b", "y"), ("g", "c", "z"), ("g", "d", "w"))


def judged(case_id: str, **grades: int) -> training.Judged:
    keys = {"A": A, "B": B, "C": C, "D": D}
    return training.Judged(case_id, f"text {case_id}", {keys[k]: g for k, g in grades.items()})


def test_metrics_follow_the_evaluations_definitions():
    cases = [judged("c1", A=2, B=1), judged("c2", C=2), judged("c3", D=1)]
    ranking_ = {"c1": [B, A], "c2": [A, B, D, C], "c3": []}
    figures = training.metrics(cases, ranking_)
    assert figures["S@1"] == pytest.approx(0.0)
    assert figures["S@3"] == pytest.approx(1 / 3)  # c1 only: c2's answer is 4th
    assert figures["H@3"] == pytest.approx(1 / 3)
    assert figures["MRR@10"] == pytest.approx((1 / 2 + 1 / 4) / 3)
    c1 = (1 / math.log2(2) + 3 / math.log2(3)) / (3 / math.log2(2) + 1 / math.log2(3))
    c2 = (3 / math.log2(5)) / 3
    assert figures["nDCG@5"] == pytest.approx((c1 + c2) / 3)
    assert figures["unjudged@3"] == 3  # c2's A, B and D were never graded for it


@pytest.mark.skipif(not SCORER.is_file(), reason=f"reference scorer not found at {SCORER}")
def test_metrics_match_the_reference_scorer(tmp_path):
    cases = [judged("c1", A=2, B=1), judged("c2", C=2), judged("c3", D=1)]
    ranking_ = {"c1": [B, A, C], "c2": [D, C], "c3": [A, D]}
    run, qrels, ids = tmp_path / "run.jsonl", tmp_path / "qrels.jsonl", tmp_path / "cases.jsonl"
    run.write_text("".join(json.dumps({"id": i, "results": [{"guide": g, "article": a, "anchor": x} for g, a, x in keys]})
                           + "\n" for i, keys in ranking_.items()))
    qrels.write_text("".join(json.dumps({"id": c.id, "guide": g, "file": a + ".md", "anchor": x, "grade": grade}) + "\n"
                             for c in cases for (g, a, x), grade in c.grades.items()))
    ids.write_text("".join(json.dumps({"id": c.id}) + "\n" for c in cases))
    printed = subprocess.run([sys.executable, str(SCORER), str(run), "--qrels", str(qrels), "--cases", str(ids)],
                             capture_output=True, text=True, check=True).stdout
    ours = training.metrics(cases, ranking_)
    for name in ("S@1", "S@3", "H@3", "nDCG@5", "MRR@10"):
        assert f"{name} {ours[name]:.3f}" in printed


def featurised(case_id: str, grades: list[int], signal: list[float]) -> training.Featurised:
    """Candidates whose `lexical` feature carries the signal and `semantic` only noise."""
    rng = np.random.default_rng(len(case_id))
    matrix = np.zeros((len(grades), len(FEATURES)))
    matrix[:, INDEX["lexical"]] = signal
    matrix[:, INDEX["semantic"]] = rng.random(len(grades))
    keys = [("g", case_id, str(i)) for i in range(len(grades))]
    case = training.Judged(case_id, "", {key: g for key, g in zip(keys, grades) if g})
    return training.Featurised(case, keys, matrix)


def test_fit_learns_which_feature_tells_the_answer_apart():
    data = [featurised(f"c{i}", [0, 2, 0, 1], [0.1, 0.9, 0.2, 0.5]) for i in range(10)]
    model = training.fit(data)
    assert model.weights[INDEX["lexical"]] > abs(model.weights[INDEX["semantic"]])
    cascade = training.fit_cascade(data)
    assert all(training.ranked_keys(d, cascade)[0] == d.keys[1] for d in data)


@pytest.mark.parametrize("seed", [None, 3])
def test_cross_validation_of_feature_rows_ranks_each_case_by_weights_fitted_without_it(monkeypatch, seed):
    data = [featurised(f"c{i}", [0, 2], [0.1, 0.9]) for i in range(10)]
    fitted_on = []
    real_fit = training.fit_cascade

    def spy(training_data, **kwargs):
        fitted_on.append({d.case.id for d in training_data})
        return real_fit(training_data, **kwargs)

    monkeypatch.setattr(training, "fit_cascade", spy)
    ranked = training.cross_validate_rows(data, seed=seed)
    assert set(ranked) == {d.case.id for d in data}
    for fold, seen in zip(training.folds(data, seed=seed), fitted_on):
        assert not seen & {d.case.id for d in fold}
        assert len(seen) == len(data) - len(fold)


def test_a_seed_shuffles_the_split_reproducibly():
    data = [featurised(f"c{i:02}", [0, 2], [0.1, 0.9]) for i in range(20)]

    def ids(parts):
        return [sorted(d.case.id for d in part) for part in parts]

    shuffled = ids(training.folds(data, seed=1))
    assert sorted(i for part in shuffled for i in part) == sorted(d.case.id for d in data)
    assert shuffled == ids(training.folds(data, seed=1))
    assert shuffled != ids(training.folds(data))
    assert shuffled != ids(training.folds(data, seed=2))


def test_without_semantic_keeps_what_full_text_found_and_zeroes_the_rest():
    d = featurised("c1", [0, 2, 0], [0.0, 0.9, 0.3])
    d.matrix[:, INDEX["lexical_rank"]] = [0.0, 0.5, 0.33]  # the first only the semantic stage found
    (lexical,) = training.without_semantic([d])
    assert lexical.keys == d.keys[1:]
    assert not lexical.matrix[:, [INDEX[n] for n in ranking.SEMANTIC_FEATURES]].any()


GUIDE = {
    "troubleshoot_keys.md": """\
# Troubleshooting access keys<a name="troubleshoot_keys"></a>

Problems with access keys and the errors they cause.

## The security token included in the request is invalid<a name="invalid-token"></a>

The access key or session token you sent is not valid. Check the key ID, and that temporary
credentials were sent with their session token.

## I lost my secret access key<a name="lost-secret"></a>

A secret access key cannot be read again after you create it. Create a new access key and
make the old one inactive.
""",
    "id_credentials_temp.md": """\
# Temporary security credentials<a name="id_credentials_temp"></a>

Temporary credentials expire after a duration you choose. Request new credentials from AWS STS
before they expire; a request signed with expired credentials fails.
""",
}
EXPIRED = "An error occurred (ExpiredToken) when calling the GetCallerIdentity operation: The security token included in the request is expired"


def test_train_ranker_refits_from_the_help_desks_resolved_cases(db, write_guide, tmp_path, monkeypatch):
    import_content([write_guide("g", GUIDE)])
    answer = Section.objects.get(anchor="id_credentials_temp")
    before = [r.section.pk for r in search(EXPIRED).results]
    assert before[0] != answer.pk  # the words point at the invalid-token section
    for n in range(3):  # the desk resolves the same error, pasted three times, with the temporary credentials page
        diagnosis = start_diagnosis(EXPIRED.replace("GetCallerIdentity", ["ListUsers", "GetObject", "PutObject"][n]), {})
        case = Case(reference=f"KB-{n}", diagnosis=diagnosis, name="A", email="a@example.com", status=Case.Status.RESOLVED)
        case.point_at(answer)
        case.save()
    weights = tmp_path / "ranker.json"
    weights.write_text(ranking.WEIGHTS_FILE.read_text())
    monkeypatch.setattr(ranking, "WEIGHTS_FILE", weights)
    out = io.StringIO()
    call_command("train_ranker", "--cases", str(tmp_path / "none.jsonl"), "--write", stdout=out)
    assert "3 from the help desk" in out.getvalue()
    ranking.shipped_ranker.cache_clear()
    try:
        after = [r.section.pk for r in search(EXPIRED).results]
    finally:
        ranking.shipped_ranker.cache_clear()
    assert after.index(answer.pk) < before.index(answer.pk)
    assert json.loads(weights.read_text())["desk_cases"] == 3


def test_train_ranker_writes_nothing_unless_asked(db, write_guide, tmp_path, monkeypatch):
    import_content([write_guide("g", GUIDE)])
    diagnosis = start_diagnosis(EXPIRED, {})
    case = Case(reference="KB-1", diagnosis=diagnosis, name="A", email="a@example.com", status=Case.Status.RESOLVED)
    case.point_at(Section.objects.get(anchor="id_credentials_temp"))
    case.save()
    weights = tmp_path / "ranker.json"
    weights.write_text(ranking.WEIGHTS_FILE.read_text())
    monkeypatch.setattr(ranking, "WEIGHTS_FILE", weights)
    before = weights.read_text()
    out = io.StringIO()
    call_command("train_ranker", "--cases", str(tmp_path / "none.jsonl"), stdout=out)
    assert "not written" in out.getvalue()
    assert weights.read_text() == before


# The query adapter

def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def test_the_query_adapter_learns_what_pastes_share_and_moves_new_ones_to_their_answers():
    # Every paste carries the same boilerplate (a stack trace, say), which a hub section matches
    # better than the paste's own answer matches the rest of it; among the headings another
    # boilerplate's hub does.
    rng = np.random.default_rng(0)
    body_hub, heading_hub = unit(rng.normal(size=(2, 384)))
    answers = unit(rng.normal(size=(30, 384)))
    sections = np.vstack([body_hub, answers]).astype(np.float32)
    headings = np.vstack([heading_hub, answers]).astype(np.float32)
    pastes = unit(0.6 * body_hub + 0.6 * heading_hub + 0.5 * answers).astype(np.float32)

    def first_hits(vectors, rows, among):
        return sum(int(np.argmax(among @ v)) == 1 + i for v, i in zip(vectors, rows))

    held_out = range(20, 30)
    assert first_hits(pastes[20:], held_out, sections) == 0  # the hub comes first for every paste
    assert first_hits(pastes[20:], held_out, headings) == 0
    adapter = training.fit_adapter(pastes[:20], [[1 + i] for i in range(20)], sections, headings)
    assert first_hits(adapter.for_sections(pastes[20:]), held_out, sections) == 10
    assert first_hits(adapter.for_headings(pastes[20:]), held_out, headings) == 10
    assert np.allclose(np.linalg.norm(adapter.for_sections(pastes), axis=1), 1.0, atol=1e-5)


def test_a_ranker_keeps_its_adapter_beside_its_weights_for_its_model_only(tmp_path, monkeypatch):
    adapter = semantic.QueryAdapter(np.eye(384) * 0.5, np.eye(384) * -0.25)
    weights = tmp_path / "ranker.json"
    replace(ranking.shipped_ranker(), adapter=adapter).save(weights)
    loaded = ranking.Ranker.load(weights)
    assert np.array_equal(loaded.adapter.to_sections, adapter.to_sections)
    assert np.array_equal(loaded.adapter.to_headings, adapter.to_headings)
    assert loaded.semantic == ranking.shipped_ranker().semantic
    # Another process loading the same files names the ranker alike in cache keys; other
    # matrices (or weights) give another name.
    assert ranking.Ranker.load(weights).fingerprint == loaded.fingerprint
    assert replace(loaded, adapter=semantic.QueryAdapter(np.eye(384), np.eye(384))).fingerprint != loaded.fingerprint
    # An adapter fitted before headings had a matrix of their own moves a query for both.
    np.save(tmp_path / "ranker-adapter.npy", np.eye(384))
    one = ranking.Ranker.load(weights).adapter
    assert np.array_equal(one.to_sections, np.eye(384)) and np.array_equal(one.to_headings, np.eye(384))
    monkeypatch.setattr(semantic, "MODEL_ID", "another-model")  # vectors the adapter was not fitted on
    assert ranking.Ranker.load(weights).adapter is None
    with pytest.raises(ValueError):
        semantic.QueryAdapter(np.eye(3), np.eye(3))
