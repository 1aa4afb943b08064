"""Who is calling the API: the bearer token middleware and the per-endpoint scope check.

The middleware finds the token before the rate limiter counts the request, so limits
count per token (kb/ratelimit.py reads `request.api_token`), and refuses a bad token
with a 401 only after the limits have been applied.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from kb.models import ApiToken

from .http import ApiError, error
from .tokens import TokenRefused, authenticate, bearer

View = Callable[..., HttpResponse]


class ApiTokenMiddleware:
    """Set `request.api_token` (an ApiToken or None) on every request; under /api/ a token
    that is malformed, unknown or revoked gets 401 JSON, on public endpoints too."""

    def __init__(self, get_response: View):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.api_token, request.api_token_refused = None, ""
        if request.path_info.startswith("/api/"):
            try:
                token = bearer(request)
                request.api_token = authenticate(token) if token else None
            except TokenRefused as refused:
                request.api_token_refused = str(refused)
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view: View, args: tuple, kwargs: dict) -> HttpResponse | None:
        if getattr(request, "api_token_refused", ""):
            return unauthorised(request.api_token_refused)
        return None


def unauthorised(message: str) -> HttpResponse:
    response = error(401, message)
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def endpoint(*methods: str, scope: str | None = None) -> Callable[[View], View]:
    """An API view: only `methods`, never cached, and with `scope` ("read" or "write") a token
    of that scope required (401 without one, 403 for a read token on a write endpoint). An
    ApiError the view raises is its answer.

    CSRF-exempt: API views authenticate by the bearer token alone and never read the
    session cookie, so a forged cross-site request has no credentials to borrow.
    """

    def decorate(view: View) -> View:
        @csrf_exempt
        @never_cache
        @require_http_methods(list(methods))
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            token: ApiToken | None = request.api_token
            if scope is not None and token is None:
                return unauthorised("this endpoint needs an API token: send 'Authorization: Bearer <token>'")
            if scope == ApiToken.Scope.WRITE and not token.can_write:
                return error(403, "this token has read scope: changes need a token with write scope")
            try:
                return view(request, *args, **kwargs)
            except ApiError as refused:
                return refused.response()

        return wrapped

    return decorate
