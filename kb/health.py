"""`/healthz` for load balancers and monitors: is this node able to serve?

Cheap enough to poll every second: a `SELECT 1`, the search index's existence and row
count, a read from each cache and one count on the rate limits' own probe counter. Only the
database and the search index decide the status code; a failing cache or rate-limit counter
makes the node "degraded" (200): pages still serve, slower, or with writes refused and
reading unlimited (kb/ratelimit.py).
"""

from __future__ import annotations

import logging

from django.core.cache import caches
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from kb import ratecounter, ratelimit
from kb.search.engines import get_engine

logger = logging.getLogger(__name__)


def check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        logger.exception("health: database")
        return {"status": "error", "error": type(exc).__name__}
    return {"status": "ok", "vendor": connection.vendor}


def check_search_index() -> dict:
    try:
        engine = get_engine()
        if not engine.exists():
            return {"status": "missing"}
        return {"status": "ok", "documents": engine.document_count()}
    except Exception as exc:
        logger.exception("health: search index")
        return {"status": "error", "error": type(exc).__name__}


def check_caches() -> dict:
    result = {}
    for alias in ("default",):
        try:
            caches[alias].get("healthz")
            result[alias] = "ok"
        except Exception as exc:
            logger.exception("health: cache %s", alias)
            result[alias] = f"error: {type(exc).__name__}"
    return result


def check_rate_limits() -> dict:
    """Whether requests can be counted; if not, which limit groups refuse requests meanwhile."""
    problem = ratecounter.probe()
    if problem is None:
        return {"status": "ok"}
    return {"status": "error", "error": problem.kind, "refused": ratelimit.fail_closed_groups()}


def report() -> tuple[bool, dict]:
    """(healthy, details): healthy when the database answers and the search index exists;
    the status is "degraded" when, besides, a cache or the rate-limit counters fail."""
    details = {
        "database": check_database(), "search_index": check_search_index(),
        "cache": check_caches(), "rate_limits": check_rate_limits(),
    }
    healthy = details["database"]["status"] == "ok" and details["search_index"]["status"] == "ok"
    degraded = details["rate_limits"]["status"] != "ok" or any(v != "ok" for v in details["cache"].values())
    return healthy, {"status": "error" if not healthy else "degraded" if degraded else "ok", **details}


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """GET /healthz: the report as JSON, 200 when healthy, else 503."""
    healthy, details = report()
    return JsonResponse(details, status=200 if healthy else 503)
