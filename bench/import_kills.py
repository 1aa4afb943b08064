#!/usr/bin/env python
"""Kill `import_kb` with SIGKILL many times: the bigger profile of kb/tests/test_import_crash.py.

    .venv/bin/python bench/import_kills.py [--kills N] [--guides N] [--articles N] [--seed N] [--database URL]

Without --database (or DATABASE_URL) it uses an SQLite file in a temporary folder; with a
PostgreSQL URL it creates and drops a database of its own on that server. After every kill
the database must hold one whole version with a matching full-text index and no process
or session of the killed import left; embedding runs killed half-way are then finished.
Prints the kills, how many landed after the commit, and the wall time; exits 1 on a failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--guides", type=int, default=4)
    parser.add_argument("--articles", type=int, default=60, help="per guide")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", default=os.environ.get("DATABASE_URL", ""), help="default: a fresh SQLite file")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-" + "x" * 50)
    if args.database:
        os.environ["DATABASE_URL"] = args.database
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from kb.tests.test_import_crash import Profile, kill_repeatedly, migrated

    profile = Profile(kills=args.kills, seed=args.seed, guides=args.guides, articles=args.articles,
                      finish_embedding=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kb-kills-") as scratch, migrated(Path(scratch)) as runner:
        try:
            committed = kill_repeatedly(runner, profile)
        except AssertionError as failure:
            print(f"FAIL  {failure}")
            return 1
    seconds = time.perf_counter() - started
    print(f"PASS  {profile.kills} kills ({committed} after the commit) on {runner.db.vendor} in {seconds:.0f} s,"
          f" {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
