"""Derived data kept twice: in each worker's memory, then in the shared cache.

Callers put the content version into every key, so a key names one version of what it
holds: a copy is never stale, nothing needs invalidating, and each worker may keep its own
copy to save a round trip to Redis (or a file read). A failing shared cache only costs
the work of building the value again.

The content generation is a token in the shared cache that every content change replaces
(imports, and guides or articles saved or deleted). What a worker memoises under it
(`memoised`: page versions, the content version) is dropped by every node once it reads the
new token: each process reads it at most every KB_CONTENT_CHECK_MS (one second by default),
so a change reaches every node within that time while a cached page view costs no round
trip at all.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import caches
from django.db import transaction

logger = logging.getLogger(__name__)

GENERATION_KEY = "content-generation"
# What, besides content, decides what is derived from it (pages, rankings).
RELEASE_DIRS = ("kb", "portal", "templates", "static")
RELEASE_SUFFIXES = {".py", ".html", ".css", ".js", ".svg"}
# Memoised answers are also dropped after this long, which bounds how long a node could
# keep a stale one if a new generation failed to reach the shared cache.
MEMO_SECONDS = 60
MEMO_SIZE = 20_000
# When this process last read the generation, and what it was.
_known: list = [0.0, None]

T = TypeVar("T")


def fetch(key: str) -> Any | None:
    """The value from this worker's memory, else from the shared cache (then kept locally)."""
    local = caches["local"]
    value = local.get(key)
    if value is None:
        try:
            value = caches["default"].get(key)
        except Exception:
            logger.exception("shared cache unavailable")
        if value is not None:
            local.set(key, value)
    return value


def store(key: str, value: Any) -> None:
    caches["local"].set(key, value)
    try:
        caches["default"].set(key, value)
    except Exception:
        logger.exception("shared cache unavailable")


def content_generation() -> str | None:
    """The current generation; None when the shared cache cannot tell (callers then memoise nothing)."""
    now = time.monotonic()
    if _known[1] is not None and now - _known[0] < settings.KB_CONTENT_CHECK_MS / 1000:
        return _known[1]
    shared = caches["default"]
    try:
        token = shared.get(GENERATION_KEY)
        if token is None:  # never set, or evicted: start one (a lost token only costs misses)
            shared.add(GENERATION_KEY, uuid.uuid4().hex, timeout=None)
            token = shared.get(GENERATION_KEY)
        if token is None:  # a key that holds no token (written as None) would otherwise stay
            token = uuid.uuid4().hex
            shared.set(GENERATION_KEY, token, timeout=None)
    except Exception:
        logger.exception("shared cache unavailable")
        token = None
    _known[:] = [now, token]
    return token


def content_changed() -> None:
    """Start a new generation now and again when the transaction commits.

    Now, so that this process sees the change at once (and in tests, which never commit);
    again after the commit, because another node may have memoised what it read before the
    commit under the generation started now.
    """
    new_content_generation()
    transaction.on_commit(new_content_generation)


def new_content_generation() -> None:
    """Start a new generation (content_changed() does this at the right moments of a transaction)."""
    token = uuid.uuid4().hex
    _known[:] = [time.monotonic(), token]  # this process sees its own change at once
    try:
        caches["default"].set(GENERATION_KEY, token, timeout=None)
    except Exception:
        logger.exception("shared cache unavailable: other nodes may show the previous content for a minute")


def memoised(compute: Callable[..., T]) -> Callable[..., T]:
    """`compute`, its answers (by keyword arguments) kept in this worker's memory for the
    current content generation; without one (the shared cache is down) it computes every time."""
    memo: dict[tuple, tuple[Any, float]] = {}

    @functools.wraps(compute)
    def current(**kwargs: Any) -> T:
        generation = content_generation()
        if generation is None:
            return compute(**kwargs)
        key = (generation, *sorted(kwargs.items()))
        now = time.monotonic()
        hit = memo.get(key)
        if hit is None or now - hit[1] > MEMO_SECONDS:
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            hit = memo[key] = (compute(**kwargs), now)
        return hit[0]

    return current


@memoised
def content_version() -> tuple:
    """Guide.objects.content_version(), asked once per content generation: a search keys its
    ranking, term frequencies and statistics on it, and would otherwise ask each time."""
    from kb.models import Guide  # not at import time: this module is loaded before the models

    return Guide.objects.content_version()


def release() -> str:
    """A digest of the source files that shape derived data (pages, rankings), the same on
    every node that runs the same release (contents are hashed, not modification times).
    Worked out once per process, but on every call with DEBUG on, so that edits show at
    once in development."""
    return _source_digest() if settings.DEBUG else _release_digest()


def _source_digest() -> str:
    digest = hashlib.sha256()
    base = settings.BASE_DIR
    files = sorted(
        path for folder in RELEASE_DIRS for path in (base / folder).rglob("*")
        if path.suffix in RELEASE_SUFFIXES and path.is_file()
    )
    for path in files:
        digest.update(str(path.relative_to(base)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


_release_digest = functools.cache(_source_digest)
