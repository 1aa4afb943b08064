"""Derived data kept twice: in each worker's memory, then in the shared cache.

Callers put the content version into every key, so a key names one version of what it
holds: a copy is never stale, nothing needs invalidating, and each worker may keep its own
copy to save a round trip to Redis (or a file read). A failing shared cache only costs
the work of building the value again.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import caches

logger = logging.getLogger(__name__)


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
