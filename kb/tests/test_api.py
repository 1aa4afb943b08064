"""The integrations API: its OpenAPI document, every route it lists, tokens and their scopes.

The document drives the main test: each (operation, status) it declares has a call below,
made through the test client, and the answer must have that status and validate against
the schema the document declares for it. Sections come from a tiny guide loaded with the
real importer; cases are plain rows.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.core import mail
from django.test import Client
from openapi_schema_validator import OAS31Validator, oas31_format_checker
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from kb import ratelimit
from kb.api import tokens
from kb.api.openapi import document
from kb.importer import import_content
from kb.models import ApiToken, Case, Diagnosis, Feedback, Section

TROUBLESHOOT = """\
# Troubleshooting access<a name="troubleshoot_access"></a>

Use this page when access is denied\\.

## I get "access denied"<a name="access-denied"></a>

Check the policy\\.

## I cannot assume a role<a name="assume-role"></a>

Check the trust policy of the role\\.
"""

REFERENCE = "KB-2612-API234"
SECTION = "g/troubleshoot#assume-role"
DOC = document()
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def guide(db, write_guide) -> None:
    import_content([write_guide("g", {"troubleshoot.md": TROUBLESHOOT})])


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("integrator", password="pw", is_staff=True)


@pytest.fixture
def case(guide) -> Case:
    diagnosis = Diagnosis.objects.create(
        error_text="An error occurred (AccessDenied) when calling the AssumeRole operation\nsecond line",
        signature="sig-api", analysis={"codes": ["AccessDenied"], "actions": ["sts:AssumeRole"]},
        recommendations=[{
            "guide": "g", "article": "troubleshoot", "anchor": "assume-role", "title": "I cannot assume a role",
            "article_title": "Troubleshooting access", "url": "/kb/g/troubleshoot/#assume-role",
            "snippet": "Check the <mark>trust</mark> policy", "score": 2.5, "why": ["action sts:AssumeRole"],
            "section_id": 1,
        }],
        outcome=Diagnosis.Outcome.ESCALATED, token="private-" + uuid.uuid4().hex,
    )
    return Case.objects.create(reference=REFERENCE, diagnosis=diagnosis, name="Pat", email="pat@example.com")


@pytest.fixture
def issue(staff):
    """`issue(scope="read", revoked=False) -> raw token`."""

    def make(scope: str = "read", *, revoked: bool = False) -> str:
        row, raw = tokens.issue(name=f"{scope} tool", user=staff, scope=scope)
        if revoked:
            ApiToken.objects.filter(pk=row.pk).update(revoked=True)
        return raw

    return make


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


# The document --------------------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1(client, db):
    served = client.get("/api/v1/openapi.json")
    assert served.status_code == 200
    assert served.json() == DOC
    validate(served.json(), cls=OpenAPIV31SpecValidator)
    assert DOC["openapi"].startswith("3.1.")


def operations() -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, item in DOC["paths"].items()
            for method, op in item.items() if method in METHODS]


def declared() -> list[tuple[str, int]]:
    """Every (operationId, status) the document declares, except 429 (tested per token below)."""
    return sorted((op["operationId"], int(status)) for _, _, op in operations() for status in op["responses"]
                  if status != "429")


@dataclass(frozen=True)
class Call:
    """A request to an operation: the token it carries ("read", "write", "revoked", None or
    a raw Authorization header), its path parameters, query and JSON body."""

    token: str | None = None
    path: dict[str, str] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None


ON_CASE = {"reference": REFERENCE}
NO_CASE = {"reference": "KB-0000-NOSUCH"}
CALLS: dict[tuple[str, int], Call] = {
    ("search", 200): Call(query={"q": "cannot assume role"}),
    ("search", 400): Call(query={"q": "x", "limit": "lots"}),
    ("search", 401): Call(token="revoked", query={"q": "role"}),
    ("suggest", 200): Call(query={"q": "assume"}),
    ("suggest", 401): Call(token="Basic dXNlcjpwdw==", query={"q": "assume"}),
    ("recommend", 200): Call(body={"error_text": "AccessDenied when calling AssumeRole"}),
    ("recommend", 400): Call(body={"error_text": 42}),
    ("recommend", 401): Call(token="kbt_unknown", body={"error_text": "AccessDenied"}),
    ("listCases", 200): Call(token="read", query={"status": "new", "since": "2020-01-01", "content_missing": "false"}),
    ("listCases", 400): Call(token="read", query={"status": "lost", "per_page": "1000"}),
    ("listCases", 401): Call(),
    ("listCases", 404): Call(token="read", query={"page": "9"}),
    ("getCase", 200): Call(token="read", path=ON_CASE),
    ("getCase", 401): Call(token="revoked", path=ON_CASE),
    ("getCase", 404): Call(token="read", path=NO_CASE),
    ("changeCaseStatus", 200): Call(token="write", path=ON_CASE, body={"status": "in_progress", "note": "On it"}),
    ("changeCaseStatus", 400): Call(token="write", path=ON_CASE, body={"status": "lost"}),
    ("changeCaseStatus", 401): Call(path=ON_CASE, body={"status": "in_progress"}),
    ("changeCaseStatus", 403): Call(token="read", path=ON_CASE, body={"status": "in_progress"}),
    ("changeCaseStatus", 404): Call(token="write", path=NO_CASE, body={"status": "in_progress"}),
    ("resolveCase", 200): Call(token="write", path=ON_CASE, body={"section": SECTION}),
    ("resolveCase", 400): Call(token="write", path=ON_CASE, body={"section": "g/troubleshoot#nowhere"}),
    ("resolveCase", 401): Call(token="revoked", path=ON_CASE, body={"section": SECTION}),
    ("resolveCase", 403): Call(token="read", path=ON_CASE, body={"section": SECTION}),
    ("resolveCase", 404): Call(token="write", path=NO_CASE, body={"section": SECTION}),
    ("replyToCase", 201): Call(token="write", path=ON_CASE, body={"body": "Which region were you in?"}),
    ("replyToCase", 400): Call(token="write", path=ON_CASE, body={"body": "  "}),
    ("replyToCase", 401): Call(path=ON_CASE, body={"body": "Hello"}),
    ("replyToCase", 403): Call(token="read", path=ON_CASE, body={"body": "Hello"}),
    ("replyToCase", 404): Call(token="write", path=NO_CASE, body={"body": "Hello"}),
    ("voteOnSection", 201): Call(token="write", body={"section": SECTION, "vote": "helped"}),
    ("voteOnSection", 400): Call(token="write", body={"section": SECTION, "vote": "meh"}),
    ("voteOnSection", 401): Call(body={"section": SECTION, "vote": "helped"}),
    ("voteOnSection", 403): Call(token="read", body={"section": SECTION, "vote": "helped"}),
    ("getOpenApi", 200): Call(),
    ("getReference", 200): Call(),
}


def test_every_declared_answer_has_a_call_here():
    """A route or status added to the document without a test here fails this test."""
    assert sorted(CALLS) == declared()


def find(operation_id: str) -> tuple[str, str, dict]:
    return next((path, method, op) for path, method, op in operations() if op["operationId"] == operation_id)


def send(client: Client, operation_id: str, call: Call, issue) -> Any:
    path, method, _ = find(operation_id)
    url = DOC["servers"][0]["url"] + re.sub(r"\{(\w+)\}", lambda m: call.path[m.group(1)], path)
    headers = {}
    if call.token in {"read", "write", "revoked"}:
        headers = bearer(issue("read" if call.token == "revoked" else call.token, revoked=call.token == "revoked"))
    elif call.token:
        headers = {"HTTP_AUTHORIZATION": call.token if " " in call.token else f"Bearer {call.token}"}
    if method == "get":
        return client.get(url, call.query, **headers)
    return client.post(url, call.body, content_type="application/json", **headers)


def check_answer(response, op: dict, status: int) -> None:
    """The response has the declared status, media type and schema."""
    assert response.status_code == status, response.content[:300]
    (media, content), = op["responses"][str(status)]["content"].items()
    assert response["Content-Type"].split(";")[0] == media
    if media == "application/json":
        schema = {**content["schema"], "components": DOC["components"]}
        OAS31Validator(schema, format_checker=oas31_format_checker).validate(response.json())


@pytest.mark.parametrize("operation_id, status", declared())
def test_every_operation_answers_as_described(client, case, issue, operation_id, status):
    response = send(client, operation_id, CALLS[operation_id, status], issue)
    check_answer(response, find(operation_id)[2], status)
    if status >= 400:
        assert response.json()["error"]


@pytest.fixture
def limits(settings, monkeypatch):
    """Every limit 1 per minute, the limiter's clock in the middle of a minute (windows are fixed)."""
    middle_of_a_minute = time.time() // 60 * 60 + 30
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: middle_of_a_minute))
    settings.KB_RATE_LIMIT_ENABLED = True
    settings.KB_RATE_LIMITS = {group: "1/m" for group in ("search", "recommend", "feedback", "case", "api")}


LIMITED = sorted(op["operationId"] for _, _, op in operations() if "429" in op["responses"])


@pytest.mark.parametrize("operation_id", LIMITED)
def test_limits_count_per_token(case, issue, limits, operation_id):
    """Over the limit a token gets the declared 429; another token, or the same address without one, has its own."""
    success = next(call for (op, status), call in CALLS.items() if op == operation_id and status < 300)
    address = f"fd00::{uuid.uuid4().hex[:4]}"  # an address no other test (or run) has counted
    token = issue("write")
    with_token = Call(token=f"Bearer {token}", path=success.path, query=success.query, body=success.body)
    assert send(Client(REMOTE_ADDR=address), operation_id, with_token, issue).status_code < 300
    over = send(Client(REMOTE_ADDR=address), operation_id, with_token, issue)
    check_answer(over, find(operation_id)[2], 429)
    assert int(over["Retry-After"]) > 0
    other = Call(token="write", path=success.path, query=success.query, body=success.body)
    assert send(Client(REMOTE_ADDR=address), operation_id, other, issue).status_code < 300
    if "x-scope" not in find(operation_id)[2]:  # public: the address's own budget is untouched
        assert send(Client(REMOTE_ADDR=address), operation_id, success, issue).status_code < 300


# Tokens ---------------------------------------------------------------------------------------


def test_a_read_token_cannot_change_a_case(client, case, issue):
    response = client.post(f"/api/v1/cases/{REFERENCE}/resolve", {"section": SECTION},
                           content_type="application/json", **bearer(issue("read")))
    assert response.status_code == 403
    assert "write scope" in response.json()["error"]
    case.refresh_from_db()
    assert (case.status, case.guide_slug) == (Case.Status.NEW, "")


@pytest.mark.parametrize("url", ["/api/v1/cases", "/api/v1/search?q=role"])
def test_a_revoked_token_gets_401_json_even_where_none_is_needed(client, case, issue, url):
    response = client.get(url, **bearer(issue("write", revoked=True)))
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "this API token has been revoked"}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_token_whose_owner_is_no_longer_staff_is_refused(client, case, issue, staff):
    token = issue("write")
    staff.is_staff = False
    staff.save()
    assert client.get("/api/v1/cases", **bearer(token)).status_code == 401


def test_token_requests_are_exempt_from_csrf(case, issue):
    client = Client(enforce_csrf_checks=True)
    response = client.post(f"/api/v1/cases/{REFERENCE}/status", {"status": "in_progress"},
                           content_type="application/json", **bearer(issue("write")))
    assert response.status_code == 200


def test_last_use_is_recorded(client, case, issue):
    token = issue("read")
    assert ApiToken.objects.get().last_used_at is None
    client.get("/api/v1/cases", **bearer(token))
    assert ApiToken.objects.get().last_used_at is not None


def all_stored_values() -> str:
    """Every value in every table the project's models have, as one string."""
    rows = []
    for model in apps.get_models():
        names = [f.attname for f in model._meta.concrete_fields]
        rows.extend(repr(row) for row in model.objects.values_list(*names))
    return "\n".join(rows)


def test_staff_see_a_token_once_and_the_database_never_holds_it(client, case, staff, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("admin", password="pw"))
    created = client.post("/admin/kb/apitoken/add/", {"name": "Ticket system", "user": staff.pk, "scope": "write"})
    assert created.status_code == 200
    assert "no-cache" in created["Cache-Control"]
    raw = re.search(r'value="(kbt_[\w-]+)"', created.content.decode()).group(1)
    row = ApiToken.objects.get()
    assert (row.name, row.scope, row.user, row.prefix) == ("Ticket system", "write", staff, raw[:12])

    assert raw not in all_stored_values()
    assert row.digest in all_stored_values()  # the check above would see the token if it were there
    assert raw not in client.get(f"/admin/kb/apitoken/{row.pk}/change/").content.decode()
    assert raw not in client.get("/admin/kb/apitoken/").content.decode()

    assert client.get("/api/v1/cases", **bearer(raw)).status_code == 200
    client.post("/admin/kb/apitoken/", {"action": "revoke", "_selected_action": [row.pk]})
    assert client.get("/api/v1/cases", **bearer(raw)).status_code == 401


def test_staff_who_are_not_superusers_issue_tokens_only_for_themselves(client, staff, django_user_model):
    from django.contrib.auth.models import Permission

    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(*Permission.objects.filter(codename__in=["add_apitoken", "view_apitoken"]))
    client.force_login(clerk)
    as_other = client.post("/admin/kb/apitoken/add/", {"name": "mine now", "user": staff.pk, "scope": "write"})
    assert as_other.status_code == 200 and not ApiToken.objects.exists()
    assert "Select a valid choice" in as_other.content.decode()
    client.post("/admin/kb/apitoken/add/", {"name": "mine", "user": clerk.pk, "scope": "read"})
    assert ApiToken.objects.get().user == clerk


# Cases ----------------------------------------------------------------------------------------


def test_list_filters_and_pages(client, case, issue):
    headers = bearer(issue("read"))
    for n in range(3):
        Case.objects.create(reference=f"KB-2612-OLD{n}", status=Case.Status.RESOLVED, content_missing=n == 0,
                            diagnosis=Diagnosis.objects.create(error_text="e", signature="s", token=f"t{n}"),
                            name="Sam", email="sam@example.com")
    def references(**query) -> list[str]:
        return [row["reference"] for row in client.get("/api/v1/cases", query, **headers).json()["results"]]

    assert references(status="new") == [REFERENCE]
    assert references(content_missing="true") == ["KB-2612-OLD0"]
    assert len(references(status="resolved")) == 3
    assert references(since="2999-01-01T00:00:00Z") == []
    first = client.get("/api/v1/cases", {"per_page": 3}, **headers).json()
    assert (first["count"], first["page"], first["pages"], len(first["results"])) == (4, 1, 2, 3)
    assert len(references(per_page=3, page=2)) == 1
    bad = client.get("/api/v1/cases", {"since": "yesterday", "content_missing": "maybe"}, **headers)
    assert bad.status_code == 400
    assert set(bad.json()["fields"]) == {"since", "content_missing"}


def test_a_page_of_cases_takes_the_same_few_queries_however_many_it_holds(
        client, case, issue, staff, django_assert_max_num_queries):
    headers = bearer(issue("read"))
    client.get("/api/v1/cases", **headers)  # records the token's last use, once a minute
    section = Section.objects.select_related("article__guide").get(anchor="assume-role")
    for n in range(10):
        many = Case(reference=f"KB-2612-MANY{n}", assignee=staff, status=Case.Status.RESOLVED, name="Sam",
                    email="sam@example.com",
                    diagnosis=Diagnosis.objects.create(error_text="e", signature="s", token=f"many{n}"))
        many.point_at(section)
        many.save()
    # The token, the count and the page.
    with django_assert_max_num_queries(3):
        assert len(client.get("/api/v1/cases", **headers).json()["results"]) == 11


def test_a_case_with_its_diagnosis_and_recommendations(client, case, issue):
    body = client.get(f"/api/v1/cases/{REFERENCE}", **bearer(issue("read"))).json()
    assert body["error"] == "An error occurred (AccessDenied) when calling the AssumeRole operation"
    assert body["codes"] == ["AccessDenied"]
    assert body["diagnosis"]["analysis"]["actions"] == ["sts:AssumeRole"]
    assert [(r["anchor"], r["vote"]) for r in body["recommendations"]] == [("assume-role", None)]
    assert "section_id" not in body["recommendations"][0]
    assert body["desk_url"] == f"/desk/cases/{REFERENCE}/"


def test_status_and_resolve_act_as_the_tokens_owner(client, case, issue):
    headers = bearer(issue("write"))
    url = f"/api/v1/cases/{REFERENCE}"

    changed = client.post(f"{url}/status", {"status": "in_progress", "note": "Looking"},
                          content_type="application/json", **headers).json()
    assert changed["status"] == "in_progress"
    assert [(e["kind"], e["author"], e["body"], e["new_status"]) for e in changed["timeline"]] == [
        ("note", "integrator", "Looking", None), ("status", "integrator", "", "in_progress")]

    resolved = client.post(f"{url}/resolve", {"section": "/kb/g/troubleshoot/#assume-role"},
                           content_type="application/json", **headers).json()
    assert resolved["status"] == "resolved"
    assert resolved["resolution"] == {"section": SECTION, "title": "I cannot assume a role",
                                      "url": "/kb/g/troubleshoot/#assume-role"}

    reopened = client.post(f"{url}/status", {"status": "new"}, content_type="application/json", **headers).json()
    assert (reopened["status"], reopened["resolution"]) == ("new", None)

    gap = client.post(f"{url}/resolve", {"content_missing": True}, content_type="application/json", **headers).json()
    assert (gap["status"], gap["content_missing"]) == ("resolved", True)


def test_setting_resolved_on_a_resolved_case_keeps_the_section_that_resolved_it(client, case, issue):
    """A ticket system that mirrors its own "closed" as status resolved must not erase the answer."""
    headers = bearer(issue("write"))
    url = f"/api/v1/cases/{REFERENCE}"
    client.post(f"{url}/resolve", {"section": SECTION}, content_type="application/json", **headers)
    again = client.post(f"{url}/status", {"status": "resolved", "note": "Closed in the ticket system"},
                        content_type="application/json", **headers)
    assert again.status_code == 200
    assert again.json()["resolution"]["section"] == SECTION
    case.refresh_from_db()
    assert (case.status, case.anchor, case.section.anchor) == ("resolved", "assume-role", "assume-role")
    assert [e.kind for e in case.events.all()] == ["status", "note"]


def test_a_reply_and_a_resolution_reach_the_person_by_mail_and_on_their_page(
        client, case, issue, django_capture_on_commit_callbacks):
    headers = bearer(issue("write"))
    with django_capture_on_commit_callbacks(execute=True):
        replied = client.post(f"/api/v1/cases/{REFERENCE}/replies", {"body": "Which <b>region</b> were you in?"},
                              content_type="application/json", **headers)
    assert replied.status_code == 201
    assert (replied.json()["kind"], replied.json()["author"]) == ("reply", "integrator")
    assert mail.outbox[-1].to == ["pat@example.com"] and "Which <b>region</b> were you in?" in mail.outbox[-1].body
    page = client.get(f"/troubleshoot/{case.diagnosis.token}/case/").content.decode()
    assert "Which &lt;b&gt;region&lt;/b&gt; were you in?" in page

    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/v1/cases/{REFERENCE}/resolve", {"section": SECTION}, content_type="application/json",
                    **headers)
    assert len(mail.outbox) == 2 and mail.outbox[-1].to == ["pat@example.com"]
    assert "I cannot assume a role" in client.get(f"/troubleshoot/{case.diagnosis.token}/case/").content.decode()
    assert [e.kind for e in case.events.all()] == ["reply", "status"]


@pytest.mark.parametrize("body, message", [
    ({}, "name the section"),
    ({"section": SECTION, "content_missing": True}, "invalid input"),
    ({"section": ["g"]}, "section must be a string"),
    ({"sektion": SECTION}, "unknown field 'sektion'"),
    ("[1, 2]", "must be a JSON object"),
    ("{not json", "must be a JSON object"),
])
def test_bad_resolutions_are_400_with_a_message(client, case, issue, body, message):
    response = client.post(f"/api/v1/cases/{REFERENCE}/resolve", body, content_type="application/json",
                           **bearer(issue("write")))
    assert response.status_code == 400
    assert message in response.json()["error"]
    case.refresh_from_db()
    assert case.status == Case.Status.NEW


@pytest.mark.parametrize("path, body", [
    (f"/api/v1/cases/{REFERENCE}/replies", '{"body": "it fails \\ud800 here"}'),
    (f"/api/v1/cases/{REFERENCE}/status", '{"status": "in_progress", "note": "\\udfff"}'),
    ("/api/v1/feedback", '{"section": "g/troubleshoot#\\ud800", "vote": "helped"}'),
])
def test_a_lone_surrogate_escape_is_a_400_not_a_500(client, case, issue, path, body):
    """JSON may spell a lone surrogate ("\\ud800"), which no database can store as UTF-8."""
    response = Client(raise_request_exception=False).post(
        path, body, content_type="application/json", **bearer(issue("write")))
    assert response.status_code == 400
    assert "must be a JSON object" in response.json()["error"]
    assert case.events.count() == 0 and not Feedback.objects.exists()


def test_a_vote_is_stored_as_an_article_page_vote(client, case, issue):
    client.post("/api/v1/feedback", {"section": SECTION, "vote": "not_this"}, content_type="application/json",
                **bearer(issue("write")))
    vote = Feedback.objects.get()
    assert (vote.guide_slug, vote.article_slug, vote.anchor, vote.vote, vote.diagnosis) == (
        "g", "troubleshoot", "assume-role", "not_this", None)


def test_each_token_votes_as_one_person(client, case, issue):
    """Learning counts one vote per person: an integration is one, whatever address it calls from."""
    first, second = issue("write"), issue("write")
    for token, address in ((first, "10.0.0.1"), (first, "10.0.0.2"), (second, "10.0.0.1")):
        client.post("/api/v1/feedback", {"section": SECTION, "vote": "not_this"}, content_type="application/json",
                    REMOTE_ADDR=address, **bearer(token))
    voters = list(Feedback.objects.values_list("voter", flat=True))
    assert all(voters) and len(set(voters)) == 2


# Errors and the reference page -------------------------------------------------------------


def test_other_errors_under_the_api_are_json(client, case, issue, settings):
    wrong_method = client.get(f"/api/v1/cases/{REFERENCE}/status", **bearer(issue("write")))
    assert (wrong_method.status_code, wrong_method["Allow"]) == (405, "POST")
    assert wrong_method.json()["error"]
    too_big = client.post(f"/api/v1/cases/{REFERENCE}/status", "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
                          content_type="application/json", **bearer(issue("write")))
    assert too_big.status_code == 413
    assert too_big.json()["error"]


def test_a_server_error_is_json_too(case, issue, monkeypatch):
    def broken(reference):
        raise RuntimeError("database on fire")

    monkeypatch.setattr("kb.api.views.case_detail", broken)
    response = Client(raise_request_exception=False).get(f"/api/v1/cases/{REFERENCE}", **bearer(issue("read")))
    assert response.status_code == 500
    assert response.json()["error"] and "fire" not in response.content.decode()


def test_the_reference_page_prints_every_operation_and_the_footer_links_it(client, db):
    page = client.get("/api/v1/").content.decode()
    for path, method, op in operations():
        assert f'id="{op["operationId"]}"' in page
        assert f"{method.upper()} /api/v1{path}" in page
    for name in DOC["components"]["schemas"]:
        assert f'id="schema-{name}"' in page
    assert 'href="/api/v1/"' in client.get("/").content.decode()
