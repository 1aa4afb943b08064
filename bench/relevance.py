"""Relevance on the labelled error set: section Recall@1/3, MRR@10 and article Recall@3.

Usage: python bench/relevance.py [--db PATH] [--postgres URL]
Imports ../shared/corpus into a fresh database (or reuses --db if it already holds it),
runs ../shared/eval/errors-dev.jsonl through search and through recommend, and
prints the scores and the misses. Scoring follows ../shared/eval/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KB_SHARED_DIR", ROOT.parent / "shared"))


def setup(database_url: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def ensure_corpus() -> float:
    from kb.importer import import_content

    start = time.perf_counter()
    import_content([SHARED / "corpus"])
    return time.perf_counter() - start


def score(cases: list[dict], run: dict[str, list[tuple[str, str, str]]]) -> dict:
    out = {}
    for level in ("section", "article"):
        r1 = r3 = mrr = 0.0
        for case in cases:
            ranked = run.get(case["id"], [])
            if level == "section":
                gold = {(g["guide"], g["file"], g["anchor"]) for g in case["gold"]}
                keys = [tuple(x) for x in ranked]
            else:
                gold = {(g["guide"], g["file"]) for g in case["gold"]}
                keys = list(dict.fromkeys((x[0], x[1]) for x in ranked))
            rank = next((r for r, key in enumerate(keys[:10], 1) if key in gold), None)
            r1 += rank == 1
            r3 += rank is not None and rank <= 3
            mrr += 1 / rank if rank else 0
        n = len(cases)
        out[level] = {"R@1": r1 / n, "R@3": r3 / n, "MRR@10": mrr / n}
    return out


def run_search(cases: list[dict]) -> dict:
    from kb.search import search

    run = {}
    for case in cases:
        results = search(case["query"], limit=10).results
        run[case["id"]] = [(r.section.article.guide.slug, r.section.article.source_path, r.section.anchor)
                           for r in results]
    return run


def run_recommend(cases: list[dict]) -> dict:
    from kb.guided.recommend import recommend

    run = {}
    for case in cases:
        items = recommend(case["query"], limit=10).items
        run[case["id"]] = [(i.section.article.guide.slug, i.section.article.source_path, i.section.anchor)
                           for i in items]
    return run


def report(name: str, cases: list[dict], run: dict, *, show_misses: bool) -> dict:
    scores = score(cases, run)
    s, a = scores["section"], scores["article"]
    print(f"{name:10} section R@1 {s['R@1']:.3f}  R@3 {s['R@3']:.3f}  MRR@10 {s['MRR@10']:.3f}   "
          f"article R@3 {a['R@3']:.3f}  MRR@10 {a['MRR@10']:.3f}")
    if show_misses:
        for case in cases:
            gold = {(g["guide"], g["file"], g["anchor"]) for g in case["gold"]}
            top = run[case["id"]][:3]
            if not gold & set(map(tuple, top)):
                print(f"  miss {case['id']}: {case['query'][:90]!r}")
                print(f"       gold {sorted(g[1] + '#' + g[2] for g in gold)}")
                print(f"       got  {[t[1] + '#' + t[2] for t in top]}")
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="SQLite file to use (kept; imported into if empty)")
    parser.add_argument("--postgres", help="PostgreSQL URL instead of SQLite")
    parser.add_argument("--quiet", action="store_true", help="do not list the misses")
    parser.add_argument("--skip-import", action="store_true", help="use --db as it is (for tuning runs)")
    args = parser.parse_args()
    if not (SHARED / "corpus").is_dir():
        sys.exit(f"no corpus at {SHARED / 'corpus'}")
    db = args.postgres or f"sqlite:///{args.db or tempfile.mkdtemp() + '/bench.sqlite3'}"
    setup(db)
    if not args.skip_import:
        seconds = ensure_corpus()
        print(f"corpus ready in {seconds:.1f}s on {db.split(':')[0]}")
    cases = [json.loads(line) for line in (SHARED / "eval" / "errors-dev.jsonl").open()]
    report("search", cases, run_search(cases), show_misses=not args.quiet)
    report("recommend", cases, run_recommend(cases), show_misses=False)


if __name__ == "__main__":
    main()
