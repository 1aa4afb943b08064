"""Relevance on the labelled error set: section Recall@1/3, MRR@10 and article Recall@3.

Usage: python bench/relevance.py [--db PATH | --postgres URL] [--quiet] [--skip-import]
Imports ../shared/corpus into a fresh database (or the one given), runs
../shared/eval/errors-dev.jsonl through search and through recommend, and prints the
scores, the issue's targets, and the misses. Scoring follows ../shared/eval/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KB_SHARED_DIR", ROOT.parent / "shared"))
TARGETS = {
    "search": {("section", "R@3"): 0.70, ("section", "MRR@10"): 0.55, ("article", "R@3"): 0.85},
    "recommend": {("section", "MRR@10"): 0.70},
}


def setup(database_url: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def report(name: str, cases: list[dict], ranking: dict, *, show_misses: bool) -> dict:
    from kb.search.evaluation import misses, score

    scores = score(cases, ranking)
    s, a = scores["section"], scores["article"]
    print(f"{name:10} section R@1 {s['R@1']:.3f}  R@3 {s['R@3']:.3f}  MRR@10 {s['MRR@10']:.3f}   "
          f"article R@3 {a['R@3']:.3f}  MRR@10 {a['MRR@10']:.3f}")
    for (level, metric), target in TARGETS.get(name, {}).items():
        value = scores[level][metric]
        print(f"{'':10} target {level} {metric} >= {target:.2f}: {value:.3f} {'PASS' if value >= target else 'FAIL'}")
    if show_misses:
        for case, top in misses(cases, ranking):
            gold = sorted(f"{g['file']}#{g['anchor']}" for g in case["gold"])
            print(f"  miss {case['id']}: {case['query'][:90]!r}\n       gold {gold}\n"
                  f"       got  {[f'{key[1]}#{key[2]}' for key in top]}")
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="SQLite file to use (kept; imported into if empty)")
    parser.add_argument("--postgres", help="PostgreSQL URL instead of SQLite")
    parser.add_argument("--quiet", action="store_true", help="do not list the misses")
    parser.add_argument("--skip-import", action="store_true", help="use the database as it is (for tuning runs)")
    args = parser.parse_args()
    if not (SHARED / "corpus").is_dir():
        sys.exit(f"no corpus at {SHARED / 'corpus'}")
    database = args.postgres or f"sqlite:///{args.db or tempfile.mkdtemp() + '/bench.sqlite3'}"
    setup(database)
    from kb.guided.recommend import recommend
    from kb.importer import import_content
    from kb.search import search
    from kb.search.evaluation import load_cases, run

    if not args.skip_import:
        start = time.perf_counter()
        import_content([SHARED / "corpus"])
        print(f"corpus ready in {time.perf_counter() - start:.1f}s on {database.split(':')[0]}")
    cases = load_cases(SHARED / "eval" / "errors-dev.jsonl")
    report("search", cases, run(cases, lambda text: [r.section for r in search(text, limit=10).results]),
           show_misses=not args.quiet)
    report("recommend", cases, run(cases, lambda text: [i.section for i in recommend(text, limit=10).items]),
           show_misses=False)


if __name__ == "__main__":
    main()
