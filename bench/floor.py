"""The portal's WSGI application plus one minimal view, the floor bench/load.py measures against.

`gunicorn -c gunicorn.conf.py bench.floor:application` serves every portal URL and
`/bench/floor`, a view that returns two bytes through the same middleware, so the floor
and the pages are measured under one server. Production never loads this module.
"""

import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
settings.ROOT_URLCONF = __name__

from portal.wsgi import application  # noqa: E402  (after the URLconf is chosen; it sets Django up)


def floor(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("bench/floor", floor), path("", include("portal.urls"))]

__all__ = ["application"]
