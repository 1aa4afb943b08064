#!/usr/bin/env python
"""Title suggestions as you type, on the full corpus: the database query they used to run
(`title__icontains` per word) against the title index each worker keeps per content generation.

    .venv/bin/python bench/suggest.py [--sqlite PATH] [--postgres URL] [--titles N] [--seed N]

Each engine runs in its own process (Django settings are per process). A process syncs the
corpus into its bench database (no embedding: suggestions do not use it), then replays
what search.js sends while someone types the first words of N section titles (every prefix
of two characters or more, up to 30 characters) and prints p50/p95 per lookup for both, and
what building the index costs once per content generation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from search_latency import setup

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("KB_CORPUS_DIR") or ROOT.parent / "shared" / "corpus")
RESULTS = ROOT / "bench" / ".results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", type=Path, default=RESULTS / "suggest.sqlite3", help="SQLite bench database")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/bench_suggest",
                        help="PostgreSQL bench database, created if missing ('' to skip)")
    parser.add_argument("--titles", type=int, default=100, help="section titles typed")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(f"no corpus at {CORPUS} (set KB_CORPUS_DIR)", file=sys.stderr)
        return 2
    if args.child:
        print(json.dumps(measure(args)))
        return 0
    args.sqlite.parent.mkdir(parents=True, exist_ok=True)
    for url in [f"sqlite:///{args.sqlite.resolve()}"] + ([args.postgres] if args.postgres else []):
        command = [sys.executable, __file__, "--child", url, "--titles", str(args.titles), "--seed", str(args.seed)]
        done = subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
        figures = json.loads(done.stdout.splitlines()[-1])
        print(f"{figures['vendor']}: {figures['topics']} topics, {figures['lookups']} lookups; "
              f"index built in {figures['build_ms']:.1f} ms once per content generation")
        for name in ("query", "index"):
            print(f"  {name:6} p50 {figures[name]['p50']:6.2f} ms  p95 {figures[name]['p95']:6.2f} ms")
    return 0


def measure(args) -> dict:
    """In a child process: sync the corpus, then time both lookups on the same typed prefixes."""
    setup(args.child)
    from django.db import connection

    from kb.importer import import_content
    from kb.models import Section
    from kb.search import suggestions

    import_content([CORPUS])
    titles = list(Section.objects.topics().values_list("title", flat=True))
    rng = random.Random(args.seed)
    typed = [title[:end] for title in rng.sample(titles, min(args.titles, len(titles)))
             for end in range(2, min(len(title), 30) + 1)]

    def by_query(text: str) -> list:
        """What api_suggest ran before the index: a database scan per keystroke."""
        sections = Section.objects.topics().select_related("article__guide").only(
            "title", "anchor", "level", "article__slug", "article__title", "article__guide__slug"
        )
        for word in text.split()[:suggestions.MAX_WORDS]:
            sections = sections.filter(title__icontains=word)
        return [(s.title, s.article.title, s.get_absolute_url())
                for s in sections.order_by("level", "title")[:suggestions.SUGGESTIONS]]

    start = time.perf_counter()
    suggestions.title_index.__wrapped__()
    build_ms = (time.perf_counter() - start) * 1000
    suggestions.suggest_titles("warm up")
    return {
        "vendor": connection.vendor, "topics": len(titles), "lookups": len(typed), "build_ms": build_ms,
        "query": timings(by_query, typed), "index": timings(suggestions.suggest_titles, typed),
    }


def timings(lookup, typed: list[str]) -> dict:
    spent = []
    for text in typed:
        start = time.perf_counter()
        lookup(text)
        spent.append((time.perf_counter() - start) * 1000)
    return {"p50": statistics.median(spent), "p95": statistics.quantiles(spent, n=20)[-1]}


if __name__ == "__main__":
    sys.exit(main())
