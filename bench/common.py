"""What the benchmarks share: pasted errors with fresh ids, and their PostgreSQL databases."""

from __future__ import annotations

import random
import re
import uuid

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
