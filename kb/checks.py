"""System checks: the search engine the database needs must be available and rate limits
countable (both need the database, so they run with `migrate`, `check --database default`
and gunicorn's start, gunicorn.conf.py, not with every command); a deployment sends mail
and links to its own address."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor

from kb import ratecounter, ratelimit
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


@register(deploy=True)
def mail_goes_out(app_configs=None, **kwargs) -> list[Warning]:
    """Mail to people and the desk, and the links in it, need a server and the site's address."""
    warnings = []
    if settings.EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend":
        warnings.append(Warning("EMAIL_URL is not set: mail to people and the desk is printed to the log, not sent",
                                id="kb.W001", hint="Set EMAIL_URL, e.g. smtp://user:password@mail.example.com:587?tls=1"))
    if urlsplit(settings.KB_SITE_URL).hostname in {"127.0.0.1", "localhost", None}:
        warnings.append(Warning(f"KB_SITE_URL is {settings.KB_SITE_URL!r}: links in mail and webhooks point there",
                                id="kb.W002", hint="Set KB_SITE_URL to the address people use, e.g. https://kb.example.com"))
    return warnings


@register("database")
def rate_limits_countable(app_configs=None, databases=None, **kwargs) -> list[Warning]:
    """A warning, not an error: the site can serve without counters (kb/ratelimit.py says how)."""
    if not databases:
        return []
    problem = ratecounter.probe()
    if problem is None or _migrations_pending():
        return []  # `migrate` is about to create the table (Django itself warns of unapplied ones)
    return [Warning(
        f"rate limits cannot be counted ({problem}): {', '.join(ratelimit.fail_closed_groups())} requests "
        "will be refused with 503, the rest served without limits",
        hint="Run `manage.py migrate`; /healthz shows when the counters work again.", id="kb.W003",
    )]


def _migrations_pending() -> bool:
    executor = MigrationExecutor(connection)
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))
