"""What every API view answers with: JSON errors with a message, and JSON request bodies."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.http import HttpRequest, JsonResponse


def error(status: int, message: str, **extra: Any) -> JsonResponse:
    """The API's error shape: {"error": message, ...}, as the middleware's limit answers too."""
    return JsonResponse({"error": message, **extra}, status=status)


class ApiError(Exception):
    """Raised by a view's helpers; `endpoint` answers it with `error(status, message, **extra)`."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra

    def response(self) -> JsonResponse:
        return error(self.status, self.message, **self.extra)


def json_object(request: HttpRequest) -> dict[str, Any] | None:
    """The request body as a JSON object, or None when it is not one.

    A body whose strings hold a lone surrogate (the escape "\\ud800") is not one either:
    no database can store such a string, so it would fail every write as a 500.
    """
    try:
        body = json.loads(request.body or b"")
        json.dumps(body, ensure_ascii=False).encode()  # UnicodeEncodeError on a lone surrogate
    except (ValueError, RecursionError):  # UnicodeError is a ValueError; nesting deeper than the parser's stack
        return None
    return body if isinstance(body, dict) else None


def json_fields(request: HttpRequest, expected: dict[str, type]) -> dict[str, Any]:
    """The body's fields, each of its expected type (null ones left out); ApiError 400 otherwise.

    A field not in `expected` is an error too, so a misspelt name is never silently ignored.
    """
    body = json_object(request)
    if body is None:
        raise ApiError(400, "the body must be a JSON object")
    names = {str: "a string", bool: "true or false"}
    for field, value in body.items():
        if field not in expected:
            raise ApiError(400, f"unknown field {field!r}: expected {', '.join(sorted(expected))}")
        if value is not None and not isinstance(value, expected[field]):
            raise ApiError(400, f"{field} must be {names[expected[field]]}")
    return {field: value for field, value in body.items() if value is not None}


def cleaned(form: forms.Form, message: str = "invalid input") -> dict[str, Any]:
    """The form's cleaned data; ApiError 400 naming each field's problem when it is not valid."""
    if not form.is_valid():
        raise ApiError(400, message, fields=form.errors.get_json_data())
    return form.cleaned_data
