#!/usr/bin/env python
"""Server-side search latency on the full corpus: p50/p95 of 200 queries on each engine.

    .venv/bin/python bench/search_latency.py [--sqlite PATH] [--postgres URL] [--queries N] [--seed N]

Each engine runs in its own process (Django settings are per process): SQLite first, then
PostgreSQL. A process syncs the corpus into its bench database (a cold import the first
time, a cheap unchanged sync afterwards), then times half keyword queries (2-4 words of
section titles) and half pasted errors (errors-dev.jsonl, cycled, with fresh account and
request ids after the first pass). A timing covers what the results page does before it
renders: `kb.search.search()`, loading the first page of sections and their snippets.
Every timed query starts with empty caches, so the targets are judged on the engine's own
work, as for an error nobody pasted before; a last row ("repeat") shows the same pasted
errors again with fresh ids, answered from the ranking cache as a running server does.
The semantic stage runs as in production (the corpus is embedded once, then kept). Prints
p50/p95 and the slowest query (a pause of the whole process shows there) per engine and
query kind against issue 10's targets (keyword queries 30 ms, pasted errors 40 ms), and the
recommend path's p95 on the pasted errors (80 ms); exits 1 if one fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

from common import create_postgres_database, each_engine, with_fresh_ids

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("KB_CORPUS_DIR") or ROOT.parent / "shared" / "corpus")
RESULTS = ROOT / "bench" / ".results"
TARGET_P95_MS = {"keyword": 30.0, "error": 40.0}  # issue 10, both engines
RECOMMEND_TARGET_P95_MS = 80.0  # the recommend path, pasted errors only
PAGE = 10  # results on the first page, whose sections and snippets are loaded
WARM_UP = 20  # untimed queries of their own first: connections, imports and caches as in a running server



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", type=Path, default=RESULTS / "latency.sqlite3", help="SQLite bench database")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/bench_latency",
                        help="PostgreSQL bench database, created if missing ('' to skip)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20240305)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--errors", type=Path, default=CORPUS.parent / "eval" / "errors-dev.jsonl")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # the database URL one engine process measures
    args = parser.parse_args()
    for path in (args.corpus, args.errors):
        if not path.exists():
            parser.error(f"{path} not found (set KB_CORPUS_DIR or pass --corpus/--errors)")
    if args.child:
        print(json.dumps(measure(args)))
        return 0

    args.sqlite.parent.mkdir(parents=True, exist_ok=True)
    return each_engine(__file__, args.sqlite, args.postgres, ["--queries", str(args.queries), "--seed", str(args.seed),
                       "--corpus", str(args.corpus), "--errors", str(args.errors)], report)


def measure(args) -> dict:
    """In a child process: prepare the bench database for one engine, then time the queries."""
    setup(args.child)
    from django.core.cache import caches
    from django.db import connection

    from kb.cache import GENERATION_KEY, content_generation
    from kb.guided.recommend import recommend
    from kb.importer import import_content
    from kb.models import Section
    from kb.search import search, semantic

    start = time.perf_counter()
    imported = import_content([args.corpus])
    log(f"{connection.vendor}: corpus synced in {time.perf_counter() - start:.1f}s "
        f"({len(imported.added)} added, {len(imported.updated)} updated, {len(imported.unchanged)} unchanged)")
    start = time.perf_counter()
    embedded = semantic.sync_embeddings()
    log(f"{connection.vendor}: {embedded.embedded} section(s) embedded in {time.perf_counter() - start:.1f}s "
        f"(semantic stage {'on' if semantic.available() else 'off'})")
    if semantic.available():
        semantic.build_query_model()  # as import_kb does

    rng = random.Random(args.seed)
    titles = Section.objects.order_by("article__guide__slug", "article__slug", "position").values_list("title", flat=True)
    keywords = keyword_queries(list(titles), args.queries // 2, rng)
    errors = error_queries(args.errors, args.queries - len(keywords), rng)
    queries = [("keyword", q) for q in keywords] + [("error", q) for q in errors]
    rng.shuffle(queries)

    def clear_caches() -> None:
        # Rankings and pages go; the content generation stays, as on a server between
        # imports (a new one would also drop what each process derives once per import).
        generation = content_generation()
        for name in ("local", "default"):
            caches[name].clear()
        caches["default"].set(GENERATION_KEY, generation, timeout=None)

    def run(text: str, *, cold: bool = True) -> tuple[float, float, float, int]:
        if cold:
            clear_caches()
        cpu_start, start = time.process_time(), time.perf_counter()
        found = search(text)
        shown = found[:PAGE]  # what the first results page loads
        searched = time.perf_counter()
        for result in shown:
            str(result.snippet)
        end = time.perf_counter()
        # CPU time of this process: on SQLite the whole cost, unaffected by other load; on
        # PostgreSQL only the client's share.
        cpu = time.process_time() - cpu_start
        return (searched - start) * 1000, (end - searched) * 1000, cpu * 1000, found.count

    for text in keyword_queries(list(titles), WARM_UP, random.Random(args.seed + 1)):
        run(text)
    timings = {kind: [] for kind in ("keyword", "error")}
    for kind, text in queries:
        timings[kind].append(run(text))
    clear_caches()
    for text in error_queries(args.errors, len(errors), random.Random(args.seed + 2), fresh_ids_from=0):
        run(text, cold=False)  # seen once: ranked and cached
    timings["repeat"] = [run(text, cold=False) for text in error_queries(
        args.errors, len(errors), random.Random(args.seed + 3), fresh_ids_from=0)]
    recommending = []
    for text in errors:  # what POST /api/v1/recommend computes, snippets and reasons included
        clear_caches()
        start = time.perf_counter()
        recommend(text).as_dict()
        recommending.append((time.perf_counter() - start) * 1000)
    # Wall times on a busy machine are inflated: report the load they were taken under.
    return {"vendor": connection.vendor, "timings": timings, "recommend": recommending,
            "load": os.getloadavg()[0], "cpus": os.cpu_count()}


def setup(database_url: str) -> None:
    if database_url.startswith("postgres"):
        create_postgres_database(database_url)
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    # Production-like: with DEBUG on, Django also records every SQL statement it runs.
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ["KB_CACHE_DIR"] = str(RESULTS / "latency-cache")  # cleared before each timed query
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-" + "k" * 50)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def keyword_queries(titles: list[str], count: int, rng: random.Random) -> list[str]:
    """Runs of 2-4 words from section titles, as people type a topic."""
    worded = [words for words in (re.findall(r"[^\W\d_][\w'-]*", title) for title in titles) if len(words) >= 2]
    queries = []
    while len(queries) < count:
        words = rng.choice(worded)
        size = rng.randint(2, min(4, len(words)))
        start = rng.randint(0, len(words) - size)
        queries.append(" ".join(words[start:start + size]))
    return queries


def error_queries(path: Path, count: int, rng: random.Random, *, fresh_ids_from: int | None = None) -> list[str]:
    """The eval set's pasted errors, cycled; repeats (from `fresh_ids_from`, by default the
    second pass) get fresh account, request and UUID ids, as real pastes do."""
    from kb.search.training import load_judged

    pasted = [case.text for case in load_judged(path)]
    fresh_from = len(pasted) if fresh_ids_from is None else fresh_ids_from
    queries = []
    for index in range(count):
        text = pasted[index % len(pasted)]
        if index >= fresh_from:
            text = with_fresh_ids(text, rng)
        queries.append(text)
    return queries


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def report(measured: dict) -> bool:
    vendor, timings = measured["vendor"], measured["timings"]
    print(f"\n{vendor}: ms per query, server-side; load average {measured['load']:.1f} on {measured['cpus']} CPUs")
    print(f"  {'kind':8} {'n':>4} {'search p50':>11} {'p95':>6} {'snippets p50':>13} {'p95':>6} "
          f"{'total p50':>10} {'p95':>6} {'max':>6} {'cpu p95':>8} {'results':>8}")
    first_time = {kind: runs for kind, runs in timings.items() if kind != "repeat"}
    rows = [*first_time.items(), ("all", [t for runs in first_time.values() for t in runs]), ("repeat", timings["repeat"])]
    for kind, runs in rows:
        search_ms, snippet_ms, cpu_ms, counts = zip(*runs)
        totals = [s + n for s, n, *_ in runs]
        print(f"  {kind:8} {len(runs):4} {percentile(search_ms, 50):11.1f} {percentile(search_ms, 95):6.1f} "
              f"{percentile(snippet_ms, 50):13.1f} {percentile(snippet_ms, 95):6.1f} "
              f"{percentile(totals, 50):10.1f} {percentile(totals, 95):6.1f} {max(totals):6.1f} {percentile(cpu_ms, 95):8.1f} "
              f"{statistics.median(counts):8.0f}")
    passed = True
    for kind, target in TARGET_P95_MS.items():
        p95 = percentile([s + n for s, n, *_ in timings[kind]], 95)
        passed &= p95 <= target
        print(f"  target: {kind} total p95 <= {target:.0f} ms -> {p95:.1f} ms {'PASS' if p95 <= target else 'FAIL'}")
    recommend_p95 = percentile(measured["recommend"], 95)
    recommend_ok = recommend_p95 <= RECOMMEND_TARGET_P95_MS
    print(f"  recommend (pasted errors): p50 {percentile(measured['recommend'], 50):.1f} ms, p95 {recommend_p95:.1f} ms;"
          f" target p95 <= {RECOMMEND_TARGET_P95_MS:.0f} ms -> {'PASS' if recommend_ok else 'FAIL'}")
    return passed and recommend_ok


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
