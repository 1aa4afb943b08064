"""Property-based fuzzing of every endpoint and form: whatever arrives, no 500, and nothing
stored is lost, changed or written where it should not be.

Requests are built as a client's bytes, not as Python strings, so lone surrogates, NUL,
invalid UTF-8, repeated and missing parameters, deep JSON and odd headers reach the server
as they would from the wire. CI runs a small seeded profile (`KB_FUZZ_EXAMPLES` per target,
derandomised); `bench/fuzz.py` runs the same targets with enough examples for ≥ 10,000 inputs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote_from_bytes

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.contrib.auth.models import User
from hypothesis import HealthCheck, given, settings, strategies as st

from kb.api import tokens
from kb.guided.flow import open_case, start_diagnosis
from kb.importer import import_content
from kb.models import ApiToken, Article, Case, Diagnosis, Guide, Section

EXAMPLES = int(os.environ.get("KB_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=os.environ.get("KB_FUZZ_RANDOM") != "1",
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
SENT = {"requests": 0, "by_status": {}}  # read by bench/fuzz.py after an in-process run

# Strings people and tools really send, and the ones that break naive code.
SPECIAL = [
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\u202eevil\u202c", "e" + "\u0301" * 50, "\ufeff", "\u200b" * 10,
    "%", "%00", "%ZZ", "&", "=", "'; DROP TABLE kb_section; --", '"*"', "NEAR(", "AND OR NOT", "(((", "\\", "*" * 100,
    "<script>alert(1)</script>", "{{ 7 }}", "\r\n\r\n", "\t" * 50, "-" * 5000, "A" * 30_000,
    "User: arn:aws:iam::123456789012:user/x is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::1:role/r",
    "An error occurred (AccessDenied) when calling the PutObject operation: Access Denied",
    "g/a#s", "../../etc/passwd", "0", "-1", "1e309", "NaN", "99999999999999999999999", "true", "null", "[]", "{}",
]
UNICODE = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(st.characters(codec=None), max_size=300),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=5),  # lone surrogates
    st.text(st.sampled_from("\u05d0\u0627\u202b\u202e\u0300\u0301\u0489 aZ9:/*\x00"), max_size=200),  # RTL, combining
)
NAMES = st.text(st.characters(codec="ascii"), max_size=20)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | UNICODE,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(UNICODE, children, max_size=5),
    max_leaves=30,
)
HEADERS = st.dictionaries(
    st.sampled_from([
        "HTTP_ACCEPT", "HTTP_ACCEPT_LANGUAGE", "HTTP_ACCEPT_ENCODING", "HTTP_X_FORWARDED_FOR", "HTTP_COOKIE",
        "HTTP_REFERER", "HTTP_USER_AGENT", "HTTP_AUTHORIZATION", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE",
        "HTTP_RANGE", "HTTP_X_REQUESTED_WITH", "HTTP_ORIGIN",
    ]),
    # WSGI carries headers as latin-1 strings: any byte, as a proxy would pass it on.
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")) | st.sampled_from(["*/*", "application/json", "text/html;q=x"]),
    max_size=4,
)
CONTENT_TYPES = st.sampled_from([
    "application/x-www-form-urlencoded", "application/json", "multipart/form-data", "multipart/form-data; boundary=x",
    "text/plain", "application/x-www-form-urlencoded; charset=latin-1", "application/x-www-form-urlencoded; charset=nope", "",
])


def encoded(text: str) -> str:
    """Percent-encoded UTF-8 bytes, surrogates included, as a client that does not check would send them."""
    return quote_from_bytes(text.encode("utf-8", "surrogatepass"), safe="")


def query_string(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{encoded(k)}={encoded(v)}" for k, v in pairs)


def params(known: tuple[str, ...]) -> st.SearchStrategy[list[tuple[str, str]]]:
    """The form's own fields (each missing, once or repeated) among unknown ones."""
    key = st.sampled_from(known) | NAMES if known else NAMES
    return st.lists(st.tuples(key, UNICODE), max_size=8)


def deep_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


BODIES = st.one_of(
    JSON.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.fixed_dictionaries({"error_text": JSON, "context": JSON}).map(lambda v: json.dumps(v).encode()),
    st.sampled_from([deep_json(100_000), b'{"error_text": "' + b"x" * 300_000 + b'"}', b"\xff\xfe", b"{", b"nul\x00l"]),
    st.binary(max_size=500),
)


def json_bodies(fields: tuple[str, ...]) -> st.SearchStrategy[bytes]:
    """BODIES, and objects of the endpoint's own fields written as a client's JSON encoder
    does (escapes such as "\\ud800" spell lone surrogates in plain ASCII)."""
    own = st.dictionaries(st.sampled_from(fields), UNICODE | JSON, max_size=len(fields)) if fields else st.nothing()
    return BODIES | own.map(lambda v: json.dumps(v).encode())


@dataclass(frozen=True)
class Target:
    """One endpoint: its URL name, methods, the fields its form reads, and how it is reached."""

    url_name: str
    methods: tuple[str, ...] = ("GET",)
    fields: tuple[str, ...] = ()
    kwargs: Callable[["Fixtures"], dict[str, str]] = field(default=lambda fx: {})
    staff: bool = False
    json_body: bool = False
    token: bool = False  # sends a write-scope API token, as an integration would


@dataclass
class Fixtures:
    """Real objects for the URL parameters, so requests get past the lookup into the forms."""

    guide: str
    article: str
    token: str
    case_token: str
    reference: str
    api_token: str = ""


TARGETS = [
    Target("kb:home"),
    Target("kb:topics", fields=("q", "guide")),
    Target("kb:search", fields=("q", "guide", "page", "limit")),
    Target("kb:search-opened", ("POST", "GET"), ("section", "rank"), lambda fx: {"token": fx.token}),
    Target("kb:api-search", fields=("q", "guide", "limit")),
    Target("kb:api-suggest", fields=("q",)),
    Target("kb:guide", kwargs=lambda fx: {"guide": fx.guide}),
    Target("kb:article", kwargs=lambda fx: {"guide": fx.guide, "article": fx.article}),
    Target("kb:article-html", kwargs=lambda fx: {"guide": fx.guide, "article": fx.article}),
    Target("guided:start", ("GET", "POST"), ("q", "error_text", "activity", "service")),
    Target("guided:answer", kwargs=lambda fx: {"token": fx.token}),
    Target("guided:feedback", ("POST",), ("section", "vote"), lambda fx: {"token": fx.token}),
    Target("guided:fixed", ("POST", "GET"), (), lambda fx: {"token": fx.token}),
    Target("guided:case", ("GET", "POST"), ("name", "email", "details"), lambda fx: {"token": fx.token}),
    Target("guided:case", ("GET", "POST"), ("name", "email", "details"), lambda fx: {"token": fx.case_token}),
    Target("guided:section-feedback", ("POST",), ("section", "vote", "next")),
    Target("guided:api-recommend", ("POST",), ("error_text", "context"), json_body=True),
    Target("desk:queue", fields=("status", "page"), staff=True),
    Target("desk:case", ("GET", "POST"), ("status", "assign_to_me", "note", "section", "content_missing"),
           lambda fx: {"reference": fx.reference}, staff=True),
    Target("desk:insights", fields=("from", "to"), staff=True),
    Target("desk:gaps", fields=("from", "to"), staff=True),
    Target("desk:export", fields=("from", "to"), kwargs=lambda fx: {"table": "signatures"}, staff=True),
    Target("api:reference"),
    Target("api:openapi"),
    Target("api:cases", fields=("status", "since", "content_missing", "page", "per_page"), token=True),
    Target("api:case", kwargs=lambda fx: {"reference": fx.reference}, token=True),
    Target("api:case-status", ("POST",), ("status", "note"), kwargs=lambda fx: {"reference": fx.reference}, json_body=True, token=True),
    Target("api:case-resolve", ("POST",), ("section", "content_missing", "note"), kwargs=lambda fx: {"reference": fx.reference}, json_body=True, token=True),
    Target("api:case-reply", ("POST",), ("body",), kwargs=lambda fx: {"reference": fx.reference}, json_body=True, token=True),
    Target("api:feedback", ("POST",), ("section", "vote"), json_body=True, token=True),
    Target("healthz"),
]
# Routes that are not the portal's own forms: Django's admin is fuzzed by Django's own suite.
NOT_FUZZED_NAMESPACES = {"admin"}


def route_names(resolver: URLResolver | None = None, namespace: str = "") -> set[str]:
    names = set()
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(filter(None, [namespace, entry.namespace]))
            if entry.namespace not in NOT_FUZZED_NAMESPACES:
                names |= route_names(entry, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            names.add(f"{namespace}:{entry.name}" if namespace else entry.name)
    return names


def test_every_route_is_fuzzed():
    """A new endpoint joins TARGETS, or the fuzzing silently stops covering the portal."""
    assert route_names() <= {t.url_name for t in TARGETS}


@pytest.mark.parametrize("target", [t for t in TARGETS if t.kwargs(Fixtures("g", "a", "t", "t", "r"))], ids=lambda t: t.url_name)
def test_a_control_character_in_a_path_is_not_found(target: Target, admin_client):
    """No key holds one; PostgreSQL cannot even compare text with a NUL (a 500 before)."""
    path = reverse(target.url_name, kwargs={key: "x" for key in target.kwargs(Fixtures("g", "a", "t", "t", "r"))})
    for bad in ("%00", "a%00b", "%1b", "%7f"):
        assert admin_client.get(path.replace("/x", "/" + bad, 1)).status_code == 404


def stored_state() -> dict[str, object]:
    """What a request must never lose or change: every model's row count, and the content."""
    counts = {model._meta.label: model.objects.count() for model in apps.get_app_config("kb").get_models()}
    content = list(Section.objects.order_by("pk").values_list("pk", "anchor", "title", "html"))
    people = list(Diagnosis.objects.order_by("pk").values_list("pk", "error_text", "signature"))
    cases = list(Case.objects.order_by("pk").values_list("pk", "reference", "name", "email", "details"))
    return {"counts": counts, "content": content, "guides": list(Guide.objects.values_list("slug", "title")),
            "articles": Article.objects.count(), "diagnoses": people, "cases": cases}


# Rows a request may add: logs of what was asked (and the rate-limit counters, which
# /healthz probes), and what a valid POST creates.
LOGGED = {"kb.SearchLog", "kb.RateLimitCounter"}
# Counts derived from the search log, which a view of the desk's insights keeps and may
# count again (kb/desk/searchdays.py): a cache in the database, not data.
DERIVED = {"kb.SearchDay", "kb.SearchDayGroup"}
CREATED_BY_POST = {"kb.Diagnosis", "kb.Feedback", "kb.Case", "kb.SearchLog", "kb.CaseEvent", "kb.OutgoingEmail",
                   "kb.WebhookDelivery"}


def assert_nothing_lost(before: dict, after: dict, method: str, status: int) -> None:
    assert after["content"] == before["content"], "a request changed imported content"
    assert after["guides"] == before["guides"] and after["articles"] == before["articles"]
    assert after["diagnoses"][: len(before["diagnoses"])] == before["diagnoses"], "a stored paste changed or vanished"
    for pk, reference, *_ in before["cases"]:
        assert any(row[0] == pk and row[1] == reference for row in after["cases"]), "a case vanished"
    may_add = LOGGED | (CREATED_BY_POST if method == "POST" and status < 400 else set())
    for label, count in before["counts"].items():
        if label in DERIVED:
            continue
        if label in may_add:
            assert after["counts"][label] >= count, f"{label} rows were lost"
        elif method != "POST":
            assert after["counts"][label] == count, f"a {method} wrote {label} rows"


@pytest.fixture
def fixtures(db) -> Fixtures:
    import_content([django_settings.KB_CONTENT_DIR])
    section = Section.objects.select_related("article__guide").first()
    first = start_diagnosis("An error occurred (AccessDenied) when calling the AssumeRole operation", {})
    escalated = start_diagnosis("User is not authorized to perform: iam:PassRole", {})
    case = open_case(escalated, name="Ana", email="ana@example.com")
    agent = User.objects.create_user("integration", is_staff=True)
    return Fixtures(
        guide=section.article.guide.slug, article=section.article.slug, token=first.token,
        case_token=escalated.token, reference=case.reference,
        api_token=tokens.issue(name="fuzz", user=agent, scope=ApiToken.Scope.WRITE)[1],
    )


def send(client: Client, target: Target, fx: Fixtures, method: str, pairs, body: bytes | None,
         content_type: str, headers: dict[str, str], garbage_path: str | None) -> int:
    kwargs = target.kwargs(fx)
    if garbage_path is not None and kwargs:
        kwargs = {key: garbage_path for key in kwargs}
    try:
        path = reverse(target.url_name, kwargs=kwargs)
    except Exception:  # the garbage cannot even form this route: the resolver answers 404 for it
        path = reverse(target.url_name, kwargs=target.kwargs(fx))
    if target.token:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {fx.api_token}", **headers}
    if method == "GET":
        response = client.generic("GET", path, QUERY_STRING=query_string(pairs), **headers)
    else:
        data = body if body is not None else query_string(pairs).encode("ascii")
        response = client.generic("POST", path, data=data, content_type=content_type, **headers)
    SENT["requests"] += 1
    SENT["by_status"][response.status_code] = SENT["by_status"].get(response.status_code, 0) + 1
    return response.status_code


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.url_name)
def test_no_input_gives_a_500_or_loses_data(target: Target, fixtures: Fixtures, django_user_model):
    client = Client()
    if target.staff:
        client.force_login(django_user_model.objects.create_user("agent", password="x", is_staff=True))

    @FUZZ
    @given(
        method=st.sampled_from(target.methods),
        pairs=params(target.fields),
        body=json_bodies(target.fields) if target.json_body else st.none(),
        content_type=st.just("application/json") | CONTENT_TYPES if target.json_body else CONTENT_TYPES,
        headers=HEADERS,
        garbage_path=st.none() | UNICODE.filter(lambda s: "/" not in s and s.strip()),
    )
    def run(method, pairs, body, content_type, headers, garbage_path):
        before = stored_state()
        status = send(client, target, fixtures, method, pairs, body, content_type, headers, garbage_path)
        assert status < 500, f"{method} {target.url_name} answered {status}"
        assert_nothing_lost(before, stored_state(), method, status)

    run()
