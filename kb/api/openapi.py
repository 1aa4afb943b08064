"""The OpenAPI 3.1 document for /api/v1/: the one description of the API.

`/api/v1/openapi.json` serves `document()` as is, the reference page prints `reference()`
(read from the same document), and the tests call every operation it lists and validate
each answer against the schema it declares. `x-scope` on an operation names the token
scope it needs; operations without it are public (a token, if sent, must be valid).
"""

from __future__ import annotations

from typing import Any

from kb.models import ApiToken, Case, CaseEvent, Diagnosis, Feedback
from kb.search.query import MAX_QUERY_CHARS

from .forms import MAX_PER_PAGE

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Schema], *, required: list[str] | None = None, description: str = "") -> Schema:
    """An object schema; every property is required unless `required` says otherwise."""
    schema: Schema = {"type": "object", "properties": properties,
                      "required": list(properties) if required is None else required}
    if description:
        schema["description"] = description
    return schema


def text(description: str = "", **extra: Any) -> Schema:
    return {"type": "string", **({"description": description} if description else {}), **extra}


def strings(description: str = "") -> Schema:
    return {"type": "array", "items": {"type": "string"}, **({"description": description} if description else {})}


def nullable(schema: Schema) -> Schema:
    """The schema, or null (an enum lists null too, as JSON Schema checks enum separately)."""
    schema = {**schema, "type": [schema["type"], "null"]}
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    return schema


WHEN = text(format="date-time")
SECTION_KEY = "guide/article#anchor"

SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "description": "Every error under /api/: a message, and for invalid input the fields at fault.",
        "properties": {
            "error": text("What went wrong, in words."),
            "fields": {"type": "object", "description": "Field name -> [{message, code}] for invalid input."},
        },
        "required": ["error"],
    },
    "Section": obj({
        "guide": text("Guide slug."), "article": text("Article slug."), "anchor": text("The author's anchor."),
        "title": text(), "article_title": text(), "url": text("The section's page, with its anchor."),
        "snippet": text("HTML: the text escaped, the matched words in <mark>."), "score": {"type": "number"},
    }, description="A section as search and recommend return it."),
    "SearchResults": obj({
        "query": obj({
            "understood": text("What the analyser took from the text."), "terms": strings(), "codes": strings(),
            "actions": strings(), "operations": strings(), "statuses": strings(),
        }),
        "results": {"type": "array", "items": ref("Section")},
    }),
    "Suggestions": obj({"suggestions": {"type": "array", "items": obj(
        {"title": text(), "article_title": text(), "url": text()})}}),
    "RecommendRequest": obj({
        "error_text": text("The pasted error or a described symptom.", minLength=1, maxLength=MAX_QUERY_CHARS),
        "context": obj({
            "activity": text("A key of the guided form's \"What were you doing?\" choices."),
            "service": text("Service or tool.", maxLength=100),
        }, required=[]),
    }, required=["error_text"]),
    "Recommendation": {"allOf": [ref("Section"), obj({"why": strings("Reasons, in words.")})]},
    "Recommendations": obj({
        "analysis": {"type": "object", "description": "What the analyser understood: codes, actions, "
                     "operations, principal, denial, summary and more."},
        "recommendations": {"type": "array", "items": ref("Recommendation")},
    }),
    "Resolution": nullable(obj({
        "section": text(f"The resolving section as {SECTION_KEY}, kept if an import removes it."),
        "title": nullable(text("Null when the section no longer exists.")),
        "url": nullable(text()),
    }, description="The section that resolved the case, or null.")),
    "CaseSummary": obj({
        "reference": text("The case's reference, e.g. KB-2601-ABC234."),
        "status": text(enum=Case.Status.values),
        "name": text(), "email": text(format="email"),
        "assignee": nullable(text("Username of the staff member it is assigned to.")),
        "content_missing": {"type": "boolean", "description": "Resolved as a gap: no section covers it."},
        "resolution": ref("Resolution"),
        "error": text("First line of the pasted error."),
        "codes": strings("Error codes found in it."),
        "created_at": WHEN, "updated_at": WHEN,
        "url": text("This case in the API."), "desk_url": text("This case on the help desk."),
    }),
    "CaseList": obj({
        "count": {"type": "integer", "description": "Cases matching the filters."},
        "page": {"type": "integer"}, "pages": {"type": "integer"},
        "results": {"type": "array", "items": ref("CaseSummary")},
    }),
    "StoredRecommendation": {"allOf": [ref("Recommendation"), obj({
        "vote": nullable(text("The person's vote on it.", enum=Feedback.Vote.values)),
    })]},
    "Case": {"allOf": [ref("CaseSummary"), obj({
        "details": text("What the person added, secrets redacted."),
        "diagnosis": obj({
            "error_text": text("As pasted, secrets redacted."),
            "context": {"type": "object", "description": "What the person was doing, service or tool."},
            "analysis": {"type": "object"},
            "signature": text("Groups errors of the same kind."),
            "outcome": text(enum=Diagnosis.Outcome.values),
            "created_at": WHEN,
        }),
        "recommendations": {"type": "array", "items": ref("StoredRecommendation"),
                            "description": "What the person was shown, in order, with their votes."},
        "timeline": {"type": "array", "items": ref("Event"), "description": "Oldest first, internal notes included."},
    })]},
    "Event": obj({
        "kind": text("reply: the desk to the person; note: internal; answer: the person's; status: a change.",
                     enum=CaseEvent.Kind.values),
        "author": nullable(text("The staff member; null for the person and for the portal.")),
        "body": text("The message (empty for a status change)."),
        "old_status": nullable(text(enum=Case.Status.values)),
        "new_status": nullable(text(enum=Case.Status.values)),
        "created_at": WHEN,
    }, description="One entry of a case's timeline."),
    "Reply": obj({"body": text("The message to the person.", minLength=1, maxLength=10_000)}),
    "StatusChange": obj({
        "status": text(enum=Case.Status.values),
        "note": text("An internal note added to the timeline under the token owner's name.", maxLength=10_000),
    }, required=["status"]),
    "Resolve": obj({
        "section": text(f"{SECTION_KEY} or a portal link (/kb/guide/article/#anchor)."),
        "content_missing": {"type": "boolean", "description": "true instead of a section: no section covers it."},
        "note": text(maxLength=10_000),
    }, required=[], description="A section, or content_missing true; not both."),
    "Vote": obj({
        "section": text(f"{SECTION_KEY} or a portal link."),
        "vote": text(enum=Feedback.Vote.values),
    }),
    "VoteRecorded": obj({"section": text(SECTION_KEY), "url": text(), "vote": text(enum=Feedback.Vote.values)}),
}

ERRORS = {
    400: "Invalid input; `fields` names each problem.",
    401: "No token where one is needed, or a token that is malformed, unknown or revoked.",
    403: "The token has read scope and this endpoint changes things.",
    404: "No such case.",
    429: "Over the rate limit (per token when one is sent, else per address); see Retry-After.",
}


def answer(description: str, schema: Schema, media: str = "application/json") -> Schema:
    return {"description": description, "content": {media: {"schema": schema}}}


def operation(operation_id: str, summary: str, description: str, ok: tuple[int, str, str], errors: list[int], *,
              scope: str | None = None, parameters: list[Schema] | None = None, body: str | None = None,
              tag: str) -> Schema:
    """One operation: `ok` is (status, schema name, description); `errors` the statuses it can answer."""
    status, schema, said = ok
    op: Schema = {
        "operationId": operation_id, "tags": [tag], "summary": summary, "description": description,
        "responses": {str(status): answer(said, ref(schema)),
                      **{str(code): answer(ERRORS[code], ref("Error")) for code in errors}},
        # A public operation takes an optional token (it then counts against the token's limit).
        "security": [{"bearer": []}] if scope else [{}, {"bearer": []}],
    }
    if scope:
        op["x-scope"] = scope
    if parameters:
        op["parameters"] = parameters
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(body)}}}
    return op


def query(name: str, schema: Schema, description: str, required: bool = False) -> Schema:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


REFERENCE = {"name": "reference", "in": "path", "required": True, "description": "The case's reference.",
             "schema": text()}
READ, WRITE = ApiToken.Scope.READ.value, ApiToken.Scope.WRITE.value


def paths() -> dict[str, dict[str, Schema]]:
    return {
        "/search": {"get": operation(
            "search", "Search sections", "Sections ranked for a question or a whole pasted error.",
            (200, "SearchResults", "Ranked sections."), [400, 401, 429], tag="Search", parameters=[
                query("q", text(maxLength=MAX_QUERY_CHARS), "The question or pasted error.", required=True),
                query("guide", text(), "Only this guide (its slug)."),
                query("limit", {"type": "integer", "minimum": 1, "maximum": 50}, "At most this many (10)."),
            ])},
        "/suggest": {"get": operation(
            "suggest", "Suggest section titles",
            "Section titles containing every word typed so far (2 characters or more).",
            (200, "Suggestions", "Up to 8 titles."), [401], tag="Search",
            parameters=[query("q", text(), "What was typed so far.")])},
        "/recommend": {"post": operation(
            "recommend", "Recommend sections for an error",
            "The guided form's analysis and recommendations; stores nothing.",
            (200, "Recommendations", "What was understood and the sections to try."), [400, 401, 429],
            tag="Search", body="RecommendRequest")},
        "/cases": {"get": operation(
            "listCases", "List cases", "Help-desk cases, most recently changed first, a page at a time.",
            (200, "CaseList", "One page of cases."), [400, 401, 404, 429], scope=READ, tag="Cases", parameters=[
                query("status", text(enum=Case.Status.values), "Only cases with this status."),
                query("since", WHEN, "Only cases changed at or after this time (ISO 8601; a date means midnight UTC). "
                      "Internal notes and assignments are not changes the person sees, and do not count."),
                query("content_missing", text(enum=["true", "false"]), "Only cases marked content missing, or not."),
                query("page", {"type": "integer", "minimum": 1}, "Page number (1); past the last page is a 404."),
                query("per_page", {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE}, "Cases per page (25)."),
            ])},
        "/cases/{reference}": {"get": operation(
            "getCase", "Read a case",
            "The case with the person's diagnosis and the recommendations they saw, with their votes.",
            (200, "Case", "The case."), [401, 404, 429], scope=READ, tag="Cases", parameters=[REFERENCE])},
        "/cases/{reference}/status": {"post": operation(
            "changeCaseStatus", "Change a case's status",
            "Sets the status as the token's owner (recorded in the timeline, announced when it resolves the case) "
            "and adds the note. Any status but resolved clears a resolution, and resolved on a resolved case keeps "
            "it; resolve with a section through /resolve.",
            (200, "Case", "The case as saved."), [400, 401, 403, 404, 429], scope=WRITE, tag="Cases",
            parameters=[REFERENCE], body="StatusChange")},
        "/cases/{reference}/resolve": {"post": operation(
            "resolveCase", "Resolve a case",
            "Resolves the case with the section that answered it (recommendations learn from it; the person is "
            "mailed and their page shows it), or marks content missing (a gap for the writers).",
            (200, "Case", "The case as saved."), [400, 401, 403, 404, 429], scope=WRITE, tag="Cases",
            parameters=[REFERENCE], body="Resolve")},
        "/cases/{reference}/replies": {"post": operation(
            "replyToCase", "Reply to the person", "A message from the token's owner, shown on the person's case "
            "page and mailed to them (and announced to the webhooks).",
            (201, "Event", "The reply as recorded in the timeline."), [400, 401, 403, 404, 429], scope=WRITE,
            tag="Cases", parameters=[REFERENCE], body="Reply")},
        "/feedback": {"post": operation(
            "voteOnSection", "Vote on a section",
            "A \"helpful\" or \"not helpful\" vote, as on the section's page; learning counts each token as one person.",
            (201, "VoteRecorded", "The vote was recorded."), [400, 401, 403, 429], scope=WRITE, tag="Feedback",
            body="Vote")},
        "/openapi.json": {"get": {
            "operationId": "getOpenApi", "tags": ["About"], "summary": "This document",
            "description": "The OpenAPI 3.1 description of this API.", "security": [{}],
            "responses": {"200": answer("The document.", {"type": "object"})},
        }},
        "/": {"get": {
            "operationId": "getReference", "tags": ["About"], "summary": "Reference page",
            "description": "This document as a readable page.", "security": [{}],
            "responses": {"200": answer("An HTML page.", {"type": "string"}, media="text/html")},
        }},
    }


def document() -> Schema:
    """The whole document, built afresh (cheaply) so that no caller can change another's copy."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Troubleshooting knowledge base API",
            "version": "1.0.0",
            "description": "Search the guides, get recommendations for an error, and work the help desk's "
                           "cases from other tools. Staff create tokens in the admin (API tokens); send one as "
                           "`Authorization: Bearer <token>`. Every error is JSON: `{\"error\": message}`.",
        },
        "servers": [{"url": "/api/v1"}],
        "paths": paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "An API token from the admin. Read scope reads; write scope also changes cases "
                               "and votes.",
            }},
        },
    }
