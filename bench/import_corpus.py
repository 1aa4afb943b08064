#!/usr/bin/env python
"""Benchmark the importer on the reference corpus: a cold import, then an unchanged re-import.

    .venv/bin/python bench/import_corpus.py [--corpus DIR] [--database URL]

Each run is its own process, so the peak-memory figures of one do not include the other.
Without --database (or DATABASE_URL) it uses a fresh SQLite file in a temporary folder;
with one, the corpus guides in that database are deleted first so the import is cold.
Prints wall seconds, articles/s and peak memory side by side, with the targets of issue 2
(cold < 60 s, re-import < 5 s, peak < 500 MB) as PASS/FAIL; exits 1 if any fails.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = Path(os.environ.get("KB_CORPUS_DIR") or ROOT.parent / "shared" / "corpus")
PHASES = {"cold": "cold import", "reimport": "unchanged re-import"}
TARGET_SECONDS = {"cold": 60.0, "reimport": 5.0}
TARGET_PEAK_MB = 500.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--database", default=os.environ.get("DATABASE_URL", ""), help="default: a fresh SQLite file")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)  # one measured run, in a child process
    args = parser.parse_args()
    if not args.corpus.is_dir():
        parser.error(f"no corpus at {args.corpus}")
    if args.phase:
        print(json.dumps(measure(args.phase, args.corpus)))
        return 0
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as scratch:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_DEBUG": "1",
            "DATABASE_URL": args.database or f"sqlite:///{Path(scratch) / 'bench.sqlite3'}",
        }
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        results = {phase: run_phase(phase, args.corpus, env) for phase in PHASES}
    return print_table(results, env["DATABASE_URL"].split(":", 1)[0])


def run_phase(phase: str, corpus: Path, env: dict[str, str]) -> dict:
    command = [sys.executable, __file__, "--phase", phase, "--corpus", str(corpus)]
    done = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.splitlines()[-1])


def measure(phase: str, corpus: Path) -> dict:
    """Run one import in this process and return its figures (memory in MB)."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from kb.importer import import_content
    from kb.models import Guide

    if phase == "cold":
        Guide.objects.filter(slug__in=[p.name for p in corpus.iterdir() if p.is_dir()]).delete()
    sampler = TreeMemory()
    sampler.start()
    started = time.perf_counter()
    report = import_content([corpus])
    seconds = time.perf_counter() - started
    sampler.stop()
    articles = len(report.added) + len(report.updated) + len(report.unchanged)
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    own_mb, workers = own.ru_maxrss / 1024, children.ru_maxrss / 1024  # kB on Linux
    return {
        "articles": articles,
        "written": len(report.added) + len(report.updated) + len(report.removed),
        "seconds": seconds,
        # Since the process started (Django set-up included): comparable on a busy machine.
        "cpu": sum(usage.ru_utime + usage.ru_stime for usage in (own, children)),
        "parent_mb": own_mb,
        "worker_mb": workers,
        "tree_mb": max(sampler.peak_mb, own_mb + workers),  # the sum covers a peak sampling missed
    }


class TreeMemory(threading.Thread):
    """Peak summed RSS of this process and its children (the render workers), sampled from /proc."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.02):
            self.peak_mb = max(self.peak_mb, sum(map(_rss_mb, _tree(os.getpid()))))

    def stop(self) -> None:
        self._done.set()
        self.join()


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            pids += [p for child in children.read_text().split() for p in _tree(int(child))]
        except OSError:  # the process ended between listing and reading
            continue
    return pids


def _rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0.0)


def print_table(results: dict[str, dict], database: str) -> int:
    rows = [
        ("articles", lambda r: f"{r['articles']}"),
        ("articles written", lambda r: f"{r['written']}"),
        ("wall seconds", lambda r: f"{r['seconds']:.1f}"),
        ("articles/s", lambda r: f"{r['articles'] / r['seconds']:.0f}"),
        ("CPU seconds, all processes", lambda r: f"{r['cpu']:.1f}"),
        ("peak RSS, main process (MB)", lambda r: f"{r['parent_mb']:.0f}"),
        ("peak RSS, largest worker (MB)", lambda r: f"{r['worker_mb']:.0f}" if r["worker_mb"] else "-"),
        ("peak RSS, process tree (MB)", lambda r: f"{r['tree_mb']:.0f}"),
    ]
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"Importer benchmark on {database}, {os.cpu_count()} CPU(s){load}")
    print(f"{'':32}" + "".join(f"{label:>22}" for label in PHASES.values()))
    for label, cell in rows:
        print(f"{label:32}" + "".join(f"{cell(results[phase]):>22}" for phase in PHASES))
    failed = False
    for phase, label in PHASES.items():
        result = results[phase]
        for what, value, limit, unit in [
            ("time", result["seconds"], TARGET_SECONDS[phase], "s"),
            ("peak memory", result["tree_mb"], TARGET_PEAK_MB, " MB"),
        ]:
            ok = value < limit
            failed |= not ok
            print(f"{'PASS' if ok else 'FAIL'}  {label} {what}: {value:.1f}{unit} (target < {limit:.0f}{unit})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
