"""The reference page's content, read from the OpenAPI document so the page cannot drift from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .openapi import Schema, document

METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    description: str


@dataclass(frozen=True)
class Operation:
    id: str
    method: str
    path: str
    summary: str
    description: str
    scope: str  # "public", or the token scope it needs
    parameters: list[Field]
    body: str  # the request body's schema name, or ""
    responses: list[tuple[str, str, str]]  # (status, description, schema name or media type)


@dataclass(frozen=True)
class Model:
    name: str
    description: str
    fields: list[Field]


@dataclass(frozen=True)
class Reference:
    title: str
    description: str
    base: str
    operations: list[Operation]
    models: list[Model]


def reference() -> Reference:
    doc = document()
    base = doc["servers"][0]["url"]
    schemas = doc["components"]["schemas"]
    operations = [
        _operation(base, path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]
    models = [Model(name, schemas[name].get("description", ""), _fields(schemas[name], schemas)) for name in schemas]
    return Reference(doc["info"]["title"], doc["info"]["description"], base, operations, models)


def type_name(schema: Schema) -> str:
    """A schema as a few words: "CaseSummary", "array of string", "string or null", "one of: new, resolved"."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "allOf" in schema:
        return " + ".join(type_name(part) for part in schema["allOf"])
    if "enum" in schema:
        return "one of: " + ", ".join(str(value) for value in schema["enum"])
    kinds = schema.get("type", "any")
    words = []
    for kind in kinds if isinstance(kinds, list) else [kinds]:
        if kind == "array":
            words.append("array of " + type_name(schema.get("items", {})))
        elif kind == "string" and "format" in schema:
            words.append(f"string ({schema['format']})")
        else:
            words.append(kind)
    return " or ".join(words)


def _operation(base: str, path: str, method: str, op: Schema) -> Operation:
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    responses = []
    for status, response in op["responses"].items():
        media, content = next(iter(response.get("content", {}).items()), ("", {}))
        schema = content.get("schema", {})
        responses.append((status, response["description"], type_name(schema) if "$ref" in schema else media))
    parameters = [
        Field(f"{p['name']} ({p['in']})", type_name(p["schema"]), p.get("required", False), p.get("description", ""))
        for p in op.get("parameters", [])
    ]
    return Operation(
        id=op["operationId"], method=method.upper(), path=base.rstrip("/") + path, summary=op["summary"],
        description=op.get("description", ""), scope=op.get("x-scope", "public"), parameters=parameters,
        body=type_name(body) if body else "", responses=responses,
    )


def _fields(schema: Schema, schemas: dict[str, Schema]) -> list[Field]:
    """The properties of an object schema, those of its allOf parts included."""
    if "$ref" in schema:
        return _fields(schemas[type_name(schema)], schemas)
    fields = [field for part in schema.get("allOf", []) for field in _fields(part, schemas)]
    required = set(schema.get("required", []))
    properties: dict[str, Any] = schema.get("properties", {})
    return fields + [
        Field(name, type_name(value), name in required, value.get("description", ""))
        for name, value in properties.items()
    ]
