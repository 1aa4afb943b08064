"""Pasted errors as people paste them again: the same error with their own ids."""

from __future__ import annotations

import random
import re
import uuid

ACCOUNT_ID = re.compile(r"(?<!\d)\d{12}(?!\d)")
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)
REQUEST_ID = re.compile(r"\b[0-9A-F]{16}\b")


def with_fresh_ids(text: str, rng: random.Random) -> str:
    """The text with new account ids, UUIDs and request ids."""
    text = ACCOUNT_ID.sub(lambda _: str(rng.randrange(10**11, 10**12)), text)
    text = UUID.sub(lambda _: str(uuid.UUID(int=rng.getrandbits(128))), text)
    return REQUEST_ID.sub(lambda _: f"{rng.getrandbits(64):016X}", text)
