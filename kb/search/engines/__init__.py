"""Full-text engines, one module per database vendor, chosen at call time from the connection."""

from django.db import connection
from django.core.exceptions import ImproperlyConfigured

from .base import Candidate, SearchEngine, SyncResult
from .postgresql import PostgreSQLEngine
from .sqlite import SQLiteEngine

ENGINES: dict[str, type[SearchEngine]] = {"sqlite": SQLiteEngine, "postgresql": PostgreSQLEngine}


def get_engine() -> SearchEngine:
    try:
        return ENGINES[connection.vendor]()
    except KeyError:
        raise ImproperlyConfigured(f"no search engine for the {connection.vendor!r} database") from None


__all__ = ["Candidate", "SearchEngine", "SyncResult", "get_engine"]
