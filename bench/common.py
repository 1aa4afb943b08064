"""What the benchmarks share: pasted errors with fresh ids, and their PostgreSQL databases."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

ACCOUNT_ID = re.compile(r"(?<!\d)\d{12}(?!\d)")
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)
REQUEST_ID = re.compile(r"\b[0-9A-F]{16}\b")


def with_fresh_ids(text: str, rng: random.Random) -> str:
    """The same error as someone else pastes it: new account ids, UUIDs and request ids."""
    text = ACCOUNT_ID.sub(lambda _: str(rng.randrange(10**11, 10**12)), text)
    text = UUID.sub(lambda _: str(uuid.UUID(int=rng.getrandbits(128))), text)
    return REQUEST_ID.sub(lambda _: f"{rng.getrandbits(64):016X}", text)


def create_postgres_database(url: str) -> None:
    """The database `url` names, created on its server if missing."""
    import dj_database_url
    import psycopg

    parts = dj_database_url.parse(url)
    server = {"host": parts["HOST"], "port": parts["PORT"] or 5432, "user": parts["USER"],
              "password": parts["PASSWORD"] or None}
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [parts["NAME"]]).fetchone():
            admin.execute(f'CREATE DATABASE "{parts["NAME"]}"')


def each_engine(script: str, sqlite: Path, postgres: str, child_args: list[str], report: Callable[[dict], bool]) -> int:
    """Run `script --child URL ...` once per engine (Django settings are per process),
    SQLite then PostgreSQL when a URL is given; report each child's last printed JSON line.
    Returns the exit code: 1 when a report says a target failed."""
    urls = [f"sqlite:///{sqlite.resolve()}"] + ([postgres] if postgres else [])
    passed = True
    for url in urls:
        done = subprocess.run([sys.executable, script, "--child", url, *child_args],
                              cwd=Path(script).resolve().parents[1], check=True, stdout=subprocess.PIPE, text=True)
        passed &= report(json.loads(done.stdout.splitlines()[-1]))
    return 0 if passed else 1
