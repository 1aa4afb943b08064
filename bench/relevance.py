"""Relevance on the judged error set, as ../shared/eval/README.md defines it.

Usage: python bench/relevance.py [--db PATH | --postgres URL] [--skip-import] [--splits N] [--quiet]

Imports ../shared/corpus (text, entities and embeddings) into a fresh database (or the one
given), then scores over the 120 cases, top 10 each: search and recommend with the shipped
weights, and both again 5-fold cross-validated by case (each case ranked through the real
search and recommend code by a ranker, query adapter and weights, trained without it); all of
it again without the semantic stage (as without its package); the plain FTS5 OR baseline
beside them; candidate recall (with each case's fold's adapter); and the sections nobody
judged that the shipped search puts in a top 3. Figures are computed by kb.search.training.metrics and checked against score.py.

One split of 120 cases into folds moves a figure by a few cases, so the cross-validated
search is also run over N more splits, shuffled (mean and range): ranked from the candidates'
feature rows (training.cross_validate), which give the real code's order (checked on the first split).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KB_SHARED_DIR", ROOT.parent / "shared"))
EVAL = SHARED / "eval"
TARGETS = {"S@3": 0.60, "S@1": 0.42, "H@3": 0.80, "nDCG@5": 0.52}
RECALL_TARGET = 0.85


def setup(database_url: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    if database_url.startswith("postgres"):
        from common import create_postgres_database

        create_postgres_database(database_url)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def baseline(cases) -> dict:
    """Plain FTS5 BM25 over every section (title x5), an OR of the query's words: the floor to beat."""
    from kb.models import Section

    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE s USING fts5(title, body, key UNINDEXED)")
    db.executemany("INSERT INTO s VALUES (?, ?, ?)", [
        (title, text, json.dumps([guide, article, anchor]))
        for title, text, guide, article, anchor in Section.objects.values_list(
            "title", "text", "article__guide__slug", "article__slug", "anchor")
    ])
    ranking = {}
    for case in cases:
        words = sorted(set(re.findall(r"\w+", case.text.lower())))
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words) or '""'
        rows = db.execute("SELECT key FROM s WHERE s MATCH ? ORDER BY bm25(s, 5.0, 1.0) LIMIT 10", [match])
        ranking[case.id] = [tuple(json.loads(key)) for (key,) in rows]
    return ranking


def keys_of(sections) -> list[tuple[str, str, str]]:
    return [(s.article.guide.slug, s.article.slug, s.anchor) for s in sections]


def run_search(cases) -> dict:
    from kb.search import search

    return {case.id: keys_of(r.section for r in search(case.text, limit=10).results) for case in cases}


def run_recommend(cases) -> dict:
    from kb.guided.recommend import recommend

    return {case.id: keys_of(i.section for i in recommend(case.text, limit=10).items) for case in cases}


def check_against_score_py(cases, ranking: dict, figures: dict) -> None:
    """The reference scorer must print the same figures for the same run."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as run:
        for case in cases:
            results = [{"guide": g, "article": a, "anchor": x} for g, a, x in ranking.get(case.id, [])]
            run.write(json.dumps({"id": case.id, "results": results}) + "\n")
    printed = subprocess.run([sys.executable, str(EVAL / "score.py"), run.name], capture_output=True, text=True,
                             check=True).stdout
    os.unlink(run.name)
    theirs = {k: float(v) for k, v in re.findall(r"(S@1|S@3|H@3|nDCG@5|MRR@10|unjudged@3) ([\d.]+)", printed)}
    for name, value in theirs.items():
        assert abs(value - round(figures[name], 3)) < 0.0015, f"score.py says {name} {value}, we say {figures[name]}"


def spread(cases, runs: list[dict]) -> None:
    """Each figure's mean over the runs, and its range."""
    from kb.search.training import metrics

    figures = [metrics(cases, run) for run in runs]
    print(f"search, 5-fold cross-validated over {len(runs)} shuffled splits: mean (min-max)")
    for name in figures[0]:
        values = [f[name] for f in figures]
        digits = 0 if name == "unjudged@3" else 3
        target = f"  target {TARGETS[name]}" if name in TARGETS else ""
        print(f"  {name:10} {sum(values) / len(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f}){target}")


def line(name: str, figures: dict, *, targets: bool = False) -> str:
    from kb.search.training import describe

    text = f"{name:34} {describe(figures)}"
    if targets:
        missed = [f"{k} < {v}" for k, v in TARGETS.items() if figures[k] < v]
        text += "   targets " + ("PASS" if not missed else "FAIL (" + ", ".join(missed) + ")")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="SQLite file to use (kept; imported into if empty)")
    parser.add_argument("--postgres", help="PostgreSQL URL instead of SQLite")
    parser.add_argument("--skip-import", action="store_true", help="use the database as it is")
    parser.add_argument("--splits", type=int, default=5, help="random splits to cross-validate over (0: none)")
    parser.add_argument("--quiet", action="store_true", help="do not list unjudged sections")
    args = parser.parse_args()
    if not (SHARED / "corpus").is_dir() or not (EVAL / "qrels-dev.jsonl").is_file():
        sys.exit(f"no corpus or judgments under {SHARED}")
    database = args.postgres or f"sqlite:///{args.db or tempfile.mkdtemp() + '/bench.sqlite3'}"
    setup(database)
    from kb.importer import import_content
    from kb.search import ranking, semantic, training

    if not args.skip_import:
        start = time.perf_counter()
        import_content([SHARED / "corpus"])
        print(f"corpus imported in {time.perf_counter() - start:.1f}s on {database.split(':')[0]}")
        start = time.perf_counter()
        embedded = semantic.sync_embeddings()
        print(f"{embedded.embedded} section(s) embedded in {time.perf_counter() - start:.1f}s")
    if semantic.available():
        semantic.build_query_model()  # as import_kb does
    print(f"semantic stage: {'on, pastes embedded by ' + semantic.query_model_path().name if semantic.available() else 'off'}")
    cases = training.load_judged(EVAL / "errors-dev.jsonl", EVAL / "qrels-dev.jsonl")

    rows = [("plain FTS5 OR baseline", baseline(cases), False)]
    adapters = training.Adapters(cases)
    parts = training.folds(cases)
    held_data = []  # each case's candidates with its fold's query adapter: the recall a new paste gets
    for label in ["", " (no semantic)"] if semantic.available() else [""]:
        if label:
            os.environ["KB_SEMANTIC"] = "0"  # as without the model package
        shipped_search = run_search(cases)
        rows.append((f"search, shipped weights{label}", shipped_search, True))
        rows.append((f"recommend, shipped weights{label}", run_recommend(cases), True))
        crossed_search, crossed_recommend = {}, {}
        for i, held_out in enumerate(parts):
            fitted = training.train([c for j, part in enumerate(parts) if j != i for c in part], adapters=adapters)
            with ranking.using(fitted):
                crossed_search.update(run_search(held_out))
                crossed_recommend.update(run_recommend(held_out))
            if not label:
                held_data += training.featurise(held_out, dict.fromkeys((c.id for c in held_out), fitted.adapter))
        rows.append((f"search, 5-fold cross-validated{label}", crossed_search, True))
        rows.append((f"recommend, 5-fold cross-validated{label}", crossed_recommend, True))
        if not label:
            unjudged, crossed_by_id = shipped_search, crossed_search
    os.environ.pop("KB_SEMANTIC", None)
    lexical_recall = training.candidate_recall(training.without_semantic(held_data))
    print(f"candidate recall {training.candidate_recall(held_data):.3f} (target {RECALL_TARGET}; query adapter "
          f"cross-validated); without the semantic stage {lexical_recall:.3f}")

    for name, run, judged in rows:
        figures = training.metrics(cases, run)
        check_against_score_py(cases, run, figures)
        print(line(name, figures, targets=judged))

    if args.splits:
        rows_by_id = training.cross_validate(cases, adapters=adapters)
        if training.metrics(cases, rows_by_id) != training.metrics(cases, crossed_by_id):
            print("WARNING: ranking the feature rows differs from the real code: the splits below are not its figures")
        spread(cases, [training.cross_validate(cases, seed=seed, adapters=adapters) for seed in range(args.splits)])

    if not args.quiet:
        print("\nunjudged sections in the shipped search's top 3 (they count as 0):")
        for case in cases:
            for rank, key in enumerate(unjudged.get(case.id, [])[:3], 1):
                if key not in case.grades:
                    print(f"  {case.id} #{rank} {key[0]}/{key[1]}#{key[2]}")


if __name__ == "__main__":
    main()
