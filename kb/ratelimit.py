"""Per-client rate limits on the expensive and writing endpoints, counted in a shared cache.

`check(request)` maps the request to a limit group by method and path (so views need no
decorators, including views still being written) and counts it in the "ratelimit" cache,
which every process and node shares: Redis on several nodes, a database table on one.
The rates come from `settings.KB_RATE_LIMITS`, read at call time. Windows are fixed
(counts reset at each period boundary): simple, one counter per client, and fair enough
for limits sized for people.
"""

from __future__ import annotations

import logging
import math
import re
import time
from contextlib import nullcontext
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.db import router, transaction
from django.http import HttpRequest

logger = logging.getLogger(__name__)

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# (group, method, path pattern): the first match decides. Paths are matched rather than
# URL names so a limit holds before any view (or CSRF check) runs.
RULES: list[tuple[str, str, re.Pattern[str]]] = [
    ("search", "GET", re.compile(r"^/search/$|^/api/v1/search$")),
    ("recommend", "POST", re.compile(r"^/api/v1/recommend$|^/troubleshoot/$")),
    ("feedback", "POST", re.compile(r"^/search/opened/|^/feedback/$|^/troubleshoot/[^/]+/feedback/$|^/api/v1/feedback$")),
    ("case", "POST", re.compile(r"^/troubleshoot/[^/]+/case/$")),
    ("api", "GET", re.compile(r"^/api/v1/cases")),
    ("api", "POST", re.compile(r"^/api/v1/cases")),
]


@dataclass(frozen=True)
class Limited:
    """A request over its group's limit; `retry_after` is in whole seconds."""

    limit: int
    period: int
    retry_after: int


def group_for(method: str, path: str) -> str | None:
    """The limit group a request counts against, or None when it is not limited."""
    for group, rule_method, pattern in RULES:
        if method == rule_method and pattern.search(path):
            return group
    return None


def parse_rate(rate: str) -> tuple[int, int] | None:
    """"30/m" -> (30, 60); "off" -> None. The settings module has validated the format."""
    if rate == "off":
        return None
    count, unit = rate.split("/")
    return int(count), PERIODS[unit]


def client_address(request: HttpRequest) -> str:
    """The client's IP: the connection's, or with `KB_PROXY_COUNT` proxies in front, the one
    the outermost proxy saw. Entries further left are whatever the client sent, so never trusted."""
    proxies = settings.KB_PROXY_COUNT
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if len(forwarded) >= proxies and forwarded[-proxies]:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def client_identity(request: HttpRequest) -> str:
    """Whom a request counts against: its API token when it carries a valid one (set by
    kb.api.auth.ApiTokenMiddleware), so an integration has its own budget; else its address."""
    token = getattr(request, "api_token", None)
    return f"token:{token.pk}" if token is not None else client_address(request)


def check(request: HttpRequest) -> Limited | None:
    """Count the request against its group's limit; a Limited when it goes over.

    Fails open: when the cache is down the request is served and the error logged, as a
    help desk that cannot be reached is worse than one briefly unlimited.
    """
    if not settings.KB_RATE_LIMIT_ENABLED:
        return None
    group = group_for(request.method, request.path_info)
    rate = parse_rate(settings.KB_RATE_LIMITS.get(group, "off")) if group else None
    if rate is None:
        return None
    limit, period = rate
    now = time.time()
    window = int(now // period)
    key = f"{group}:{client_identity(request)}:{window}"
    try:
        count = _count(key, period)
    except Exception:
        logger.exception("rate limit cache unavailable; %s request not counted", group)
        return None
    if count <= limit:
        return None
    return Limited(limit, period, retry_after=max(1, math.ceil((window + 1) * period - now)))


def _count(key: str, period: int) -> int:
    """Add one to the key's counter (created for one period) and return the new count."""
    cache = caches["ratelimit"]
    # A database cache increments by read-then-write; inside an IMMEDIATE transaction
    # (the SQLite setting) that holds the write lock, so concurrent workers never lose a
    # hit. Redis and local memory increment atomically on their own.
    serialised = (
        transaction.atomic(using=router.db_for_write(cache.cache_model_class))
        if isinstance(cache, DatabaseCache)
        else nullcontext()
    )
    with serialised:
        cache.add(key, 0, timeout=period + 1)
        try:
            return cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=period + 1)
            return 1
