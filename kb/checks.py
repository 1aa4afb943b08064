"""System checks: the search engine the database needs must be available."""

from django.core.checks import Error, register
from django.db import connections

from kb.search.engines import ENGINES


@register("database")
def search_engine_available(app_configs=None, databases=None, **kwargs) -> list[Error]:
    """SQLite builds without FTS5 exist; catch that at start-up, not at the first search."""
    errors = []
    for alias in databases or []:
        connection = connections[alias]
        if connection.vendor not in ENGINES:
            errors.append(Error(f"no search engine for the {connection.vendor!r} database", id="kb.E001"))
        elif connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA compile_options")
                options = {row[0] for row in cursor.fetchall()}
            if "ENABLE_FTS5" not in options:
                errors.append(Error("this SQLite build has no FTS5, which search needs", id="kb.E002",
                                    hint="Use a Python whose sqlite3 module is built with FTS5, or PostgreSQL."))
    return errors
