"""Reading pages cached under their content version and sent with ETag and Last-Modified.

A page's version comes from one small query (no rendering): an import that changes what
the page shows changes its version, hence its cache key and ETag, so every node renders it
afresh while unchanged pages stay cached and repeat visits get a 304. Each worker memoises
versions for the current content generation (kb/cache.py), so a cached page view asks the
database nothing: one cache read tells whether anything changed since.
The version also carries a digest of the code, templates and static files, so a deploy
never serves pages rendered by the previous release. Pages are cached with a placeholder
for the CSRF token of their forms, which each response fills in with the visitor's own.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.messages import get_messages
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers
from django.utils.http import http_date

from . import cache
from .models import Article, Guide

# Letters only, so that templates print it unescaped.
CSRF_PLACEHOLDER = "kbcsrftokenplaceholder"


@dataclass(frozen=True)
class PageVersion:
    """What a page's content depends on; `last_modified` is when that last changed (None: never)."""

    page: str
    parts: tuple
    last_modified: datetime | None

    @functools.cached_property
    def key(self) -> str:
        return hashlib.sha256(repr((cache.release(), self.page, self.parts)).encode()).hexdigest()[:32]

    def etag(self, request: HttpRequest) -> str:
        """The key and the visitor's CSRF secret: their copy holds a token made from it, so a
        visitor whose CSRF cookie changed gets the page again instead of a 304."""
        secret = request.META.get("CSRF_COOKIE", "")
        return '"' + hashlib.sha256(f"{self.key}:{secret}".encode()).hexdigest()[:32] + '"'


def article_version(guide: str, article: str) -> PageVersion | None:
    """An article page also prints its guide's title and its neighbours' and parents' titles,
    so it depends on the whole guide, whose `imported_at` moves whenever an import changes
    anything in it. Other guides' pages are untouched by that import."""
    # A primary-key-sized lookup, run on every article view a worker has not memoised: built
    # by the ORM it costs about 0.4 ms, twenty times its own run time.
    sql = (
        f"SELECT a.content_hash, a.imported_at, g.imported_at FROM {Article._meta.db_table} a"
        f" JOIN {Guide._meta.db_table} g ON g.id = a.guide_id WHERE g.slug = %s AND a.slug = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [guide, article])
        row = cursor.fetchone()
    if row is None:
        return None
    content_hash, article_imported, guide_imported = row[0], _aware(row[1]), _aware(row[2])
    return PageVersion(f"article:{guide}/{article}", (content_hash, article_imported, guide_imported), guide_imported)


def _aware(moment: datetime) -> datetime:
    """A raw cursor's datetime: SQLite gives it naive, in UTC as stored with USE_TZ."""
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def guide_version(guide: str) -> PageVersion | None:
    imported_at = Guide.objects.filter(slug=guide).values_list("imported_at", flat=True).first()
    if imported_at is None:
        return None
    return PageVersion(f"guide:{guide}", (imported_at,), last_modified=imported_at)


def corpus_version(page: str) -> PageVersion:
    """Pages listing every guide (home, topics) change with any import, or with a guide removed."""
    latest, count = Guide.objects.content_version()
    return PageVersion(page, (latest, count), last_modified=latest)


def render_shared(request: HttpRequest, template_name: str, context: dict) -> HttpResponse:
    """render() for views under cached_page: the one part of these pages that is the visitor's
    own, the CSRF token of their forms, is left as a placeholder that cached_page fills in
    on every response, so one rendering serves everyone."""
    return render(request, template_name, {**context, "csrf_token": CSRF_PLACEHOLDER})


def cached_page(version_of: Callable[..., PageVersion | None]) -> Callable:
    """Decorate a GET view that renders with render_shared: answer 304 when the visitor has the
    current version, else serve the page from the cache, rendering (and caching) it on a miss.

    `version_of` gets the view's URL keyword arguments; when it returns None (no such
    content) the view runs as usual, to answer its 404. Visitors with a session (staff
    signed in) see links of their own, so their pages are rendered for them alone.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        current_version = cache.memoised(version_of)

        @functools.wraps(view)
        def wrapper(request: HttpRequest, **kwargs) -> HttpResponse:
            shared = request.method in ("GET", "HEAD") and settings.SESSION_COOKIE_NAME not in request.COOKIES
            version = current_version(**kwargs) if shared else None
            if version is None:
                return _with_csrf_token(request, view(request, **kwargs))
            timestamp = int(version.last_modified.timestamp()) if version.last_modified else None
            response = get_conditional_response(request, etag=version.etag(request), last_modified=timestamp)
            if response is None:
                response = _with_csrf_token(request, _cached_render(request, version, lambda: view(request, **kwargs)))
            response.headers["ETag"] = version.etag(request)  # after the token: a new visitor's new secret
            if timestamp is not None:
                response.headers["Last-Modified"] = http_date(timestamp)
            # Browsers may keep the page but must ask again each time: a 304 is cheap, and a
            # page is never shown stale after an import. Cookies decide the token and links.
            patch_cache_control(response, no_cache=True)
            patch_vary_headers(response, ["Cookie"])
            return response

        return wrapper

    return decorator


def _cached_render(request: HttpRequest, version: PageVersion, build: Callable[[], HttpResponse]) -> HttpResponse:
    """The page from the cache (kb/cache.py), else rendered and cached when it is the same for everyone."""
    key = f"page:{version.key}"
    hit = cache.fetch(key)
    if hit is not None:
        content, content_type = hit
        return HttpResponse(content, content_type=content_type)
    response = build()
    if response.status_code == 200 and _same_for_everyone(request, response):
        cache.store(key, (response.content, response["Content-Type"]))
    return response


def _with_csrf_token(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    placeholder = CSRF_PLACEHOLDER.encode()
    if not response.streaming and placeholder in response.content:
        response.content = response.content.replace(placeholder, get_token(request).encode())
    return response


def _same_for_everyone(request: HttpRequest, response: HttpResponse) -> bool:
    """False when rendering used anything of the visitor's own (a CSRF token other than the
    placeholder, messages, cookies): such a page must never be served to someone else."""
    return not (
        request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
        or getattr(get_messages(request), "used", False)
        or response.cookies
        or response.has_header("Vary")
    )
