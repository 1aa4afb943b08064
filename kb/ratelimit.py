"""Per-client rate limits on the expensive and writing endpoints.

`check(request)` resolves the request's path to its URL name, maps the name to a limit
group (`GROUPS`: so views need no decorators, and a route moved to a new path keeps its
limit) and counts the request in the database (kb/ratecounter.py), which every process and
node shares. The rates come from `settings.KB_RATE_LIMITS`, read at call time. Windows are
fixed (counts reset at each period boundary): simple, one counter per client, and fair
enough for limits sized for people.

When the counters cannot be counted, each group fails the way its harm decides:
- **closed** (503, nothing done) for writes that others act on: cases fill the help desk's
  queue and votes move the learned ranking, so unlimited ones do lasting harm;
- **open** (served uncounted) for reading: search, suggestions and recommendations answer
  a person who needs help now, and cost only time that the workers bound.
Either way /healthz reports the counters degraded, `manage.py check --database default`
warns, and the log says so at most once a minute per process.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from time import monotonic

from django.conf import settings
from django.http import HttpRequest
from django.urls import Resolver404, resolve

from . import ratecounter

logger = logging.getLogger(__name__)

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
LOG_EVERY = 60  # seconds between two "counters unavailable" log lines in one process
MAX_CLIENT_CHARS = 100  # longer identities (tokens, say) are counted by their digest


@dataclass(frozen=True)
class Group:
    """Requests counted together: any of `methods` on any of the URL names in `urls`."""

    methods: frozenset[str]
    urls: frozenset[str]
    fail_closed: bool


GET, POST = frozenset({"GET"}), frozenset({"POST"})
GROUPS: dict[str, Group] = {
    "search": Group(GET, frozenset({"kb:search", "kb:api-search"}), fail_closed=False),
    "suggest": Group(GET, frozenset({"kb:api-suggest"}), fail_closed=False),
    "recommend": Group(POST, frozenset({"guided:start", "guided:api-recommend"}), fail_closed=False),
    "feedback": Group(
        POST, frozenset({"kb:search-opened", "guided:feedback", "guided:section-feedback", "api:feedback"}),
        fail_closed=True,
    ),
    "case": Group(POST, frozenset({"guided:case"}), fail_closed=True),
    # Integrations' case reads and writes, counted per API token (client_identity).
    "api": Group(
        GET | POST, frozenset({"api:cases", "api:case", "api:case-status", "api:case-resolve", "api:case-reply"}),
        fail_closed=True,
    ),
}


@dataclass(frozen=True)
class Limited:
    """A request over its group's limit; `retry_after` is in whole seconds."""

    limit: int
    period: int
    retry_after: int


@dataclass(frozen=True)
class Unavailable:
    """A request of a fail-closed group that could not be counted."""

    group: str
    retry_after: int = 60


def fail_closed_groups() -> list[str]:
    """The groups whose requests are refused while the counters cannot count."""
    return sorted(name for name, group in GROUPS.items() if group.fail_closed)


def group_for(method: str, path: str) -> str | None:
    """The limit group a request counts against, or None when it is not limited.

    Resolved before any view (or CSRF check) runs, so a limit holds whatever the view does."""
    try:
        view_name = resolve(path).view_name
    except Resolver404:
        return None
    for name, group in GROUPS.items():
        if method in group.methods and view_name in group.urls:
            return name
    return None


def parse_rate(rate: str) -> tuple[int, int] | None:
    """"30/m" -> (30, 60); "off" -> None. The settings module has validated the format."""
    if rate == "off":
        return None
    count, unit = rate.split("/")
    return int(count), PERIODS[unit]


def client_address(request: HttpRequest) -> str:
    """Who a request is counted for (the one place that decides): the client's IP, the
    connection's or, with `KB_PROXY_COUNT` proxies in front, the one the outermost proxy
    saw. Entries further left are whatever the client sent, so never trusted."""
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


def check(request: HttpRequest) -> Limited | Unavailable | None:
    """Count the request against its group's limit: a Limited when it goes over, an
    Unavailable when it cannot be counted and its group fails closed, else None."""
    if not settings.KB_RATE_LIMIT_ENABLED:
        return None
    group = group_for(request.method, request.path_info)
    rate = parse_rate(settings.KB_RATE_LIMITS.get(group, "off")) if group else None
    if rate is None:
        return None
    limit, period = rate
    now = time.time()
    window = int(now // period)
    try:
        count = ratecounter.hit(f"{group}:{window}:{_client_key(request)}", (window + 1) * period, now)
    except ratecounter.CounterUnavailable as exc:
        fail_closed = GROUPS[group].fail_closed
        _log_unavailable(str(exc), group, fail_closed)
        return Unavailable(group) if fail_closed else None
    if count <= limit:
        return None
    return Limited(limit, period, retry_after=max(1, math.ceil((window + 1) * period - now)))


def _client_key(request: HttpRequest) -> str:
    client = client_identity(request)
    return client if len(client) <= MAX_CLIENT_CHARS else hashlib.sha256(client.encode()).hexdigest()


_last_logged = [-math.inf]
_log_lock = threading.Lock()


def _log_unavailable(reason: str, group: str, fail_closed: bool) -> None:
    """Log that the counters are unavailable, at most once every LOG_EVERY seconds: a
    line per request would bury everything else when the store breaks under load."""
    with _log_lock:
        now = monotonic()
        if now - _last_logged[0] < LOG_EVERY:
            return
        _last_logged[0] = now
    logger.error(
        "rate-limit counters unavailable (%s): %s requests are %s; fail-closed groups (%s) answer 503 "
        "until they are back (logged at most once a minute)",
        reason, group, "refused" if fail_closed else "served uncounted", ", ".join(fail_closed_groups()),
    )
