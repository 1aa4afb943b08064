"""The rate limits' counters: one database row per group, window and client, added to with
one atomic statement.

Why the database, on every deployment (Redis included):
- its table is made by `migrate`, so no separate set-up step can be missed;
- `INSERT … ON CONFLICT DO UPDATE SET hits = hits + 1 RETURNING hits` counts atomically on
  SQLite (3.35 and newer) and PostgreSQL alike, so concurrent workers and nodes never lose
  a hit (Django's database cache read, then wrote);
- every limited request already writes to the database (search log, diagnosis, vote,
  case), so a one-statement write more is in proportion, and when the database fails
  those requests fail anyway;
- Redis, the alternative on several nodes, is run with `allkeys-lru` eviction, which would
  quietly reset counters under memory pressure, and would be a second code path to test.

`hit()` raises CounterUnavailable when it cannot count; kb/ratelimit.py decides what that
means for the request.
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import nullcontext

from django.db import Error, connections, router, transaction

from .models import RateLimitCounter

# Rows of finished windows are deleted by the first count after this many seconds (per process).
PRUNE_EVERY = 60
_pruned = [-math.inf]
_prune_lock = threading.Lock()


class CounterUnavailable(Exception):
    """The counters cannot be counted (a missing table, a database that refuses writes, …);
    `kind` is the underlying error's type, safe to show where its message is not."""

    def __init__(self, cause: BaseException):
        self.kind = type(cause).__name__
        first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        super().__init__(f"{self.kind}: {first_line}"[:300] if first_line else self.kind)


def hit(bucket: str, expires: int, now: float) -> int:
    """Add one to `bucket`'s count (a new bucket is kept until the Unix time `expires`)
    and return the new count, atomically. `now` is the caller's clock, which decides
    which buckets are over when finished ones are deleted."""
    alias = router.db_for_write(RateLimitCounter)
    connection = connections[alias]
    table = connection.ops.quote_name(RateLimitCounter._meta.db_table)
    # One statement: https://www.sqlite.org/lang_upsert.html, https://www.sqlite.org/lang_returning.html
    # and https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT
    sql = (
        f"INSERT INTO {table} (bucket, hits, expires) VALUES (%s, 1, %s) "
        f"ON CONFLICT (bucket) DO UPDATE SET hits = {table}.hits + 1 RETURNING hits"
    )
    try:
        # Inside a caller's transaction (tests, ATOMIC_REQUESTS) a failed statement would
        # abort it on PostgreSQL: a savepoint keeps it usable. In autocommit, no round trips more.
        with transaction.atomic(using=alias) if connection.in_atomic_block else nullcontext():
            with connection.cursor() as cursor:
                cursor.execute(sql, [bucket, expires])
                count = cursor.fetchone()[0]
            _prune(alias, now)
    except Error as exc:  # database errors only: anything else is a bug, and a 500 says so
        raise CounterUnavailable(exc) from exc
    return count


def probe() -> CounterUnavailable | None:
    """Why the counters cannot count, or None when they can (a real count on a bucket of its own)."""
    now = time.time()
    try:
        hit(f"probe:{int(now) // 60}", int(now) + 120, now)
    except CounterUnavailable as exc:
        return exc
    return None


def _prune(alias: str, now: float) -> None:
    """Delete finished windows' rows, at most once every PRUNE_EVERY seconds in this process."""
    with _prune_lock:
        if time.monotonic() - _pruned[0] < PRUNE_EVERY:
            return
        _pruned[0] = time.monotonic()
    RateLimitCounter.objects.using(alias).filter(expires__lt=int(now)).delete()
