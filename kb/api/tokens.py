"""API tokens: issuing one, and finding the token a request carries.

A token is `kbt_` and 43 URL-safe characters (256 random bits). Only its SHA-256 digest
and first characters are stored, so the database never holds one that could be replayed.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import User
from django.http import HttpRequest
from django.utils import timezone

from kb.models import ApiToken

TOKEN_PREFIX = "kbt_"
SHOWN_CHARS = 12  # "kbt_" and 8 random characters: enough to tell tokens apart in the admin
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenRefused(Exception):
    """The request carries a token that is malformed, unknown, revoked or whose account is disabled."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(*, name: str, user: User, scope: str) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the token itself, which is never available again."""
    row = ApiToken(name=name, user=user, scope=scope)
    token = fill_new(row)
    row.save()
    return row, token


def fill_new(row: ApiToken) -> str:
    """Give an unsaved row (as the admin's add form builds it) a new token; returns the token."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row.prefix, row.digest = token[:SHOWN_CHARS], digest(token)
    return token


def bearer(request: HttpRequest) -> str | None:
    """The token in `Authorization: Bearer <token>`, or None without that header.

    Raises TokenRefused for an Authorization header that is not a bearer token.
    """
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRefused("send the token as 'Authorization: Bearer <token>'")
    return token.strip()


def authenticate(token: str) -> ApiToken:
    """The live token row for `token`, its last use recorded; raises TokenRefused otherwise."""
    row = ApiToken.objects.select_related("user").filter(digest=digest(token)).first()
    if row is None:
        raise TokenRefused("unknown API token")
    if row.revoked:
        raise TokenRefused("this API token has been revoked")
    if not (row.user.is_active and row.user.is_staff):
        raise TokenRefused("this API token's account is no longer active staff")
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        # Conditional, so concurrent requests write it once and a busy token is not a write per request.
        stale = now - LAST_USED_RESOLUTION
        ApiToken.objects.filter(pk=row.pk).exclude(last_used_at__gt=stale).update(last_used_at=now)
        row.last_used_at = now
    return row
