"""Values every template may print, from the one place that defines them."""

from django.http import HttpRequest

from kb.search.query import MAX_QUERY_CHARS


def limits(request: HttpRequest) -> dict:
    return {"MAX_PASTE_CHARS": MAX_QUERY_CHARS}
