#!/usr/bin/env python
"""The endpoint fuzzing of kb/tests/test_fuzz.py at full size: ≥ 10,000 generated inputs.

    .venv/bin/python bench/fuzz.py [--examples N] [--postgres URL] [--random]

Runs the test module in this process (so its request counter can be read) with N examples
per target, on SQLite, then in a second process on PostgreSQL + Redis when a URL is given.
Prints the number of requests sent, the responses by status, and the failures (a 500, or
stored data lost, changed or written where nothing should be); exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_here(examples: int, randomised: bool) -> dict:
    """Run the fuzz tests in this process; their outcome and the requests they sent."""
    import pytest

    os.environ["KB_FUZZ_EXAMPLES"] = str(examples)
    os.environ["KB_FUZZ_RANDOM"] = "1" if randomised else "0"
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    code = pytest.main(["kb/tests/test_fuzz.py", "-q", "-p", "no:cacheprovider", "-p", "kb.tests.environment"])
    sent = sys.modules["kb.tests.test_fuzz"].SENT
    return {"exit": int(code), "seconds": round(time.perf_counter() - started, 1), "requests": sent["requests"],
            "by_status": {str(k): v for k, v in sorted(sent["by_status"].items())}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=500, help="examples per target (22 targets)")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/bench_fuzz",
                        help="PostgreSQL database for the second run ('' to skip)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--random", action="store_true", help="a fresh random seed instead of the derandomised one")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        outcome = run_here(args.examples, args.random)
        print("FUZZ " + json.dumps(outcome))
        return 0

    runs = [("SQLite", {})]
    if args.postgres:
        runs.append(("PostgreSQL + Redis", {"DATABASE_URL": args.postgres, "REDIS_URL": args.redis}))
    failed = False
    for name, env in runs:
        command = [sys.executable, __file__, "--child", "--examples", str(args.examples)] + (["--random"] if args.random else [])
        done = subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
        line = next((x for x in done.stdout.splitlines() if x.startswith("FUZZ ")), None)
        if line is None:
            print(done.stdout[-3000:])
            print(f"{name}: the run did not finish")
            failed = True
            continue
        outcome = json.loads(line[5:])
        failed |= outcome["exit"] != 0
        print(f"{name}: {outcome['requests']:,} requests in {outcome['seconds']} s; by status {outcome['by_status']}; "
              f"{'FAILED (see the pytest output above)' if outcome['exit'] else 'no 500, nothing lost'}")
        if outcome["exit"]:
            print(done.stdout[-6000:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
