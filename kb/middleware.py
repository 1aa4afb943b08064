"""Middleware for production: the Content-Security-Policy header, the 411/413/429/503 limits,
and JSON errors for the API.

Django's SecurityMiddleware and XFrameOptionsMiddleware send the other security headers
(nosniff, Referrer-Policy, X-Frame-Options); Django 5.2 has no CSP of its own.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from . import ratelimit

GetResponse = Callable[[HttpRequest], HttpResponse]


class ContentSecurityPolicyMiddleware:
    """Send `settings.KB_CONTENT_SECURITY_POLICY` on every response that does not set its own.

    Django's debug error pages (DEBUG on only) style themselves inline, so they go without it.
    """

    def __init__(self, get_response: GetResponse):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not (settings.DEBUG and response.status_code >= 400):
            response.headers.setdefault("Content-Security-Policy", settings.KB_CONTENT_SECURITY_POLICY)
        return response


class RequestLimitsMiddleware:
    """Refuse, before any session, CSRF or view work, a body over DATA_UPLOAD_MAX_MEMORY_SIZE
    (413), a client over its rate limit (429 with Retry-After) and, while rate limits cannot
    be counted, the writes that fail closed (503 with Retry-After; see kb/ratelimit.py).

    Django itself would answer an oversized body with a 400 (RequestDataTooBig) and only
    when something reads it; checking Content-Length up front makes it a 413 every time.
    """

    def __init__(self, get_response: GetResponse):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            # Django reads a body only up to Content-Length: a chunked one would arrive empty.
            return limit_response(request, 411, "411.html", {}, error="send the body with a Content-Length header")
        if body_too_large(request):
            limit_kb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024
            return limit_response(
                request, 413, "413.html", {"limit_kb": limit_kb},
                error=f"request body larger than {limit_kb} KB",
            )
        decision = ratelimit.check(request)
        if isinstance(decision, ratelimit.Limited):
            response = limit_response(
                request, 429, "429.html", {"retry_after": decision.retry_after},
                error=f"too many requests: at most {decision.limit} per {decision.period} seconds",
            )
        elif isinstance(decision, ratelimit.Unavailable):
            response = limit_response(
                request, 503, "503.html", {"retry_after": decision.retry_after},
                error="temporarily unavailable: requests cannot be counted against their limit; nothing was saved",
            )
        else:
            return self.get_response(request)
        response["Retry-After"] = str(decision.retry_after)
        return response


class JsonApiErrorsMiddleware:
    """Errors under /api/ as JSON whatever answered them: Django's own 403 (CSRF), 404, 405
    and 500 responses are pages, which the API's clients cannot parse. With DEBUG on, a 500
    keeps Django's page with the traceback."""

    def __init__(self, get_response: GetResponse):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        status = response.status_code
        if (not is_api(request) or status < 400 or (settings.DEBUG and status >= 500)
                or response.get("Content-Type", "").startswith("application/json")):
            return response
        error = JsonResponse({"error": response.reason_phrase.lower()}, status=status)
        for header in ("Allow", "Retry-After"):
            if header in response:
                error[header] = response[header]
        return error


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def body_too_large(request: HttpRequest) -> bool:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False  # Django reads a malformed length as an empty body
    return limit is not None and length > limit


def limit_response(request: HttpRequest, status: int, template: str, context: dict, *, error: str) -> HttpResponse:
    """JSON for the API (what its clients parse), a page for people everywhere else."""
    if is_api(request):
        return JsonResponse({"error": error, **context}, status=status)
    return render(request, template, context, status=status)
