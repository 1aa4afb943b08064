"""What every API view answers with: JSON errors with a message, and JSON request bodies."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, JsonResponse


def error(status: int, message: str, **extra: Any) -> JsonResponse:
    """The API's error shape: {"error": message, ...}, as the middleware's limit answers too."""
    return JsonResponse({"error": message, **extra}, status=status)


def json_object(request: HttpRequest) -> dict[str, Any] | None:
    """The request body as a JSON object, or None when it is not one."""
    try:
        body = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):  # nesting deeper than the parser's stack
        return None
    return body if isinstance(body, dict) else None


def wrong_types(body: dict[str, Any], expected: dict[str, type]) -> str:
    """A message naming the first field of `body` that is not of its expected type ("" when all are).

    Fields not in `expected` are an error too, so a typo in a field name is not silently ignored.
    """
    names = {str: "a string", bool: "true or false", int: "a whole number", dict: "an object"}
    for field, value in body.items():
        if field not in expected:
            return f"unknown field {field!r}: expected {', '.join(sorted(expected))}"
        wanted = expected[field]
        # bool is an int in Python; JSON's true is not a number.
        if value is not None and (not isinstance(value, wanted) or (wanted is int and isinstance(value, bool))):
            return f"{field} must be {names[wanted]}"
    return ""
