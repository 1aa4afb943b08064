"""Rate limits: which routes count in which group, counting that loses no hit under
concurrency, and what happens when the counters cannot count (kb/ratelimit.py,
kb/ratecounter.py). Real servers set up with `migrate` and `import_kb` alone show the
same, as an operator would see it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from django.db import connection, connections
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, include, path

from kb import ratelimit
from kb.checks import rate_limits_countable
from kb.guided.flow import start_diagnosis
from kb.importer import import_content
from kb.models import Case, RateLimitCounter
from kb.ratelimit import GROUPS, group_for
from kb.tests.test_two_nodes import (  # noqa: F401  (postgres_url: a fixture)
    ROOT, Visitor, manage, node, postgres_url, site, well_inside_a_minute,
)

ARTICLE = """\
# Signing in<a name="signing-in"></a>

## I cannot sign in<a name="cannot-sign-in"></a>

Reset the password\\.
"""

# The site as it would be if the guided pages moved under /help/ (used with pytest.mark.urls).
urlpatterns = [
    path("help/", include("kb.guided.urls")),
    path("", include("kb.api.urls")),
    path("", include("kb.urls")),
]


@pytest.fixture
def clock(monkeypatch) -> float:
    """The limiter's clock stands still in the middle of a minute: windows are fixed, so a
    test that crossed a minute boundary would see its counts start again."""
    middle_of_a_minute = time.time() // 60 * 60 + 30
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: middle_of_a_minute))
    return middle_of_a_minute


@pytest.fixture
def limits(settings, clock):
    settings.KB_RATE_LIMIT_ENABLED = True
    settings.KB_PROXY_COUNT = 0
    settings.KB_RATE_LIMITS = {"search": "3/m", "suggest": "5/m", "recommend": "2/m", "feedback": "2/m", "case": "1/h"}
    return settings


def a_client() -> Client:
    """A client with an address no other test (or test run) uses."""
    return Client(REMOTE_ADDR=f"fd02::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}")


def break_the_counters() -> None:
    """Drop the counters' table, inside the test's transaction (rolled back afterwards)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {connection.ops.quote_name(RateLimitCounter._meta.db_table)}")


def url_names(resolver: URLResolver, namespace: str = "") -> set[str]:
    names = set()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names |= url_names(pattern, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(namespace + pattern.name)
    return names


# Which routes are limited


def test_every_url_name_in_a_group_exists():
    names = url_names(get_resolver())
    for group in GROUPS.values():
        assert group.urls <= names, f"unknown URL names: {group.urls - names}"


@pytest.mark.urls(__name__)
def test_a_route_moved_to_a_new_path_keeps_its_limit(db, limits):
    assert group_for("POST", "/help/api/v1/recommend") == "recommend"
    assert group_for("POST", "/help/troubleshoot/abc/case/") == "case"
    assert group_for("POST", "/api/v1/recommend") is None  # nothing there any more
    client = a_client()
    statuses = [client.post("/help/api/v1/recommend", "{}", content_type="application/json").status_code
                for _ in range(3)]
    assert statuses[-1] == 429


def test_suggestions_are_limited_as_type_ahead(db, limits):
    assert group_for("GET", "/api/v1/suggest") == "suggest"
    client = a_client()
    statuses = [client.get("/api/v1/suggest", {"q": "sign"[: 2 + i % 3]}).status_code for i in range(6)]
    assert statuses == [200] * 5 + [429]


# Counting


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite's test database is in memory, where concurrent "
                    "writers fail at once instead of waiting: test_concurrent_processes_lose_no_count covers SQLite")
@pytest.mark.django_db(transaction=True)
def test_concurrent_threads_lose_no_count(limits):
    """Eight threads, each with its own database connection, send 200 recommends from one
    client at once: exactly those over the limit of 50 are refused."""
    limits.KB_RATE_LIMITS = {**limits.KB_RATE_LIMITS, "recommend": "50/m"}
    address = f"fd03::{uuid.uuid4().hex[:4]}"
    factory = RequestFactory()

    def send(_: int) -> bool:
        try:
            request = factory.post("/api/v1/recommend", REMOTE_ADDR=address)
            return isinstance(ratelimit.check(request), ratelimit.Limited)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        refused = sum(pool.map(send, range(200)))
    assert refused == 150


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A database of the test's own, empty: SQLite in a file, or PostgreSQL when the suite runs on it."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'site.sqlite3'}"
    if connection.vendor != "postgresql":
        pytest.skip("needs DATABASE_URL on PostgreSQL")
    return request.getfixturevalue("postgres_url")


COUNTING_PROCESS = """
import time, types
from django.test import RequestFactory
from kb import ratelimit
ratelimit.time = types.SimpleNamespace(time=lambda: {clock})
request = RequestFactory().post("/api/v1/recommend", REMOTE_ADDR="fd04::1")
while time.time() < {start}:
    time.sleep(0.005)
print(sum(isinstance(ratelimit.check(request), ratelimit.Limited) for _ in range(60)))
"""


def test_concurrent_processes_lose_no_count(tmp_path, database_url):
    """Four processes on a database set up by `migrate` alone send 60 recommends each from
    one client, all at once: exactly those over the limit of 50 are refused."""
    env = {**os.environ, "DATABASE_URL": database_url, "KB_RATE_LIMIT_ENABLED": "1", "KB_RATE_LIMIT_RECOMMEND": "50/m"}
    manage(env, "migrate", "--noinput")
    code = COUNTING_PROCESS.format(clock=time.time() // 60 * 60 + 30, start=time.time() + 5)
    processes = [
        subprocess.Popen([sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    refused = [int(process.communicate(timeout=120)[0]) for process in processes]
    assert sum(refused) == 4 * 60 - 50, refused


def test_suggestions_count_apart_from_searches(db, limits):
    client = a_client()
    assert [client.get("/api/v1/search", {"q": "x"}).status_code for _ in range(4)][-1] == 429
    assert client.get("/api/v1/suggest", {"q": "si"}).status_code == 200


def test_a_long_client_identity_is_counted_by_its_digest(db, limits, settings):
    settings.KB_PROXY_COUNT = 1
    token = "t" * 500  # what a token-based identity might look like
    factory = RequestFactory()
    decisions = [ratelimit.check(factory.get("/api/v1/search", HTTP_X_FORWARDED_FOR=token)) for _ in range(4)]
    assert decisions[:3] == [None] * 3 and isinstance(decisions[3], ratelimit.Limited)


# When the counters cannot count


@pytest.fixture
def diagnosis(db, write_guide):
    import_content([write_guide("g", {"signing-in.md": ARTICLE})])
    return start_diagnosis("I cannot sign in: AccessDenied", {})


def test_a_case_is_refused_with_a_clear_503_page_when_counters_fail(limits, diagnosis):
    break_the_counters()
    response = a_client().post(f"/troubleshoot/{diagnosis.token}/case/", {"name": "Ada", "email": "ada@example.com"})
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert "We cannot take this right now" in response.content.decode()
    assert "nothing you sent was saved" in response.content.decode()
    assert response["Retry-After"] == "60"
    assert not Case.objects.exists()


def test_votes_fail_closed_with_json_under_the_api_and_reading_fails_open(limits, diagnosis):
    break_the_counters()
    client = a_client()
    response = client.post("/search/opened/token/", {"section": "1"})
    assert response.status_code == 503
    recommended = client.post("/api/v1/recommend", json.dumps({"error_text": "AccessDenied"}),
                              content_type="application/json")
    assert recommended.status_code == 200
    assert client.get("/api/v1/search", {"q": "sign in"}).status_code == 200
    assert client.get("/api/v1/suggest", {"q": "sign"}).status_code == 200


def test_a_fail_closed_api_answer_is_json(limits, diagnosis, monkeypatch):
    monkeypatch.setitem(GROUPS, "recommend", dataclasses.replace(GROUPS["recommend"], fail_closed=True))
    break_the_counters()
    response = a_client().post("/api/v1/recommend", "{}", content_type="application/json")
    assert response.status_code == 503
    assert "temporarily unavailable" in response.json()["error"]


def test_failing_counters_are_logged_once_a_minute_not_per_request(limits, diagnosis, caplog, monkeypatch):
    monkeypatch.setattr(ratelimit, "_last_logged", [-float("inf")])
    break_the_counters()
    client = a_client()
    with caplog.at_level(logging.ERROR, logger="kb.ratelimit"):
        for _ in range(10):
            client.get("/api/v1/search", {"q": "sign in"})
    lines = [record for record in caplog.records if record.name == "kb.ratelimit"]
    assert len(lines) == 1
    assert "rate-limit counters unavailable" in lines[0].getMessage()


def test_healthz_says_degraded_with_the_reason(client, diagnosis):
    assert client.get("/healthz").json()["rate_limits"] == {"status": "ok"}
    break_the_counters()
    response = client.get("/healthz")
    assert response.status_code == 200  # the node still serves: a load balancer keeps it
    body = response.json()
    assert body["status"] == "degraded"
    assert body["rate_limits"]["status"] == "error"
    assert body["rate_limits"]["error"]
    assert body["rate_limits"]["refused"] == ["api", "case", "feedback"]


def test_the_system_check_warns_when_counters_fail(db):
    assert rate_limits_countable(databases=["default"]) == []
    break_the_counters()
    (warning,) = rate_limits_countable(databases=["default"])
    assert warning.id == "kb.W003"
    assert "migrate" in warning.hint


# As an operator sees it: real servers set up with `migrate` and `import_kb` alone


def post_json(url: str, body: dict, address: str) -> int:
    request = urllib.request.Request(url, json.dumps(body).encode(), {
        "Content-Type": "application/json", "X-Forwarded-For": address,
    })
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_server_set_up_with_migrate_and_import_kb_limits_recommends(tmp_path, database_url):
    env = site(tmp_path, database_url, KB_SEMANTIC="0")  # the default limit: 30 a minute
    with node(env, tmp_path / "node.log") as base:
        well_inside_a_minute(room=40)
        address = Visitor().address
        statuses = [post_json(base + "/api/v1/recommend", {"error_text": "AccessDenied"}, address) for _ in range(31)]
    assert statuses == [200] * 30 + [429]


def test_the_first_migrate_does_not_warn_of_the_table_it_is_about_to_create(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}", "DJANGO_DEBUG": "1"}
    migrated = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert migrated.returncode == 0, migrated.stderr
    assert "kb.W003" not in migrated.stdout + migrated.stderr


def test_a_server_whose_counters_fail_says_so_and_refuses_cases(tmp_path, database_url):
    env = site(tmp_path, database_url, KB_SEMANTIC="0")
    manage(env, "shell", "--no-imports", "-c",
           "from django.db import connection; connection.cursor().execute('DROP TABLE IF EXISTS kb_ratelimitcounter')")
    checked = subprocess.run([sys.executable, "manage.py", "check", "--database", "default"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "kb.W003" in checked.stderr and "rate limits cannot be counted" in checked.stderr

    log = tmp_path / "node.log"
    with node(env, log) as base:
        visitor = Visitor()
        _, form, _ = visitor.request(base + "/troubleshoot/")
        status, answer, _ = visitor.request(base + "/troubleshoot/", {
            "error_text": "I cannot sign in: AccessDenied", "csrfmiddlewaretoken": visitor.csrf_token(form)})
        assert status == 200, "recommendations fail open"
        case_url = base + re.search(r'href="(/troubleshoot/[^"/]+/case/)"', answer).group(1)
        _, case_form, _ = visitor.request(case_url)
        status, page, headers = visitor.request(case_url, {
            "name": "Ada", "email": "ada@example.com", "csrfmiddlewaretoken": visitor.csrf_token(case_form)})
        assert status == 503
        assert "We cannot take this right now" in page and headers["Retry-After"] == "60"
        status, health, _ = visitor.request(base + "/healthz")
        assert status == 200
        assert json.loads(health)["status"] == "degraded"
        assert json.loads(health)["rate_limits"]["status"] == "error"
    cases = manage(env, "shell", "--no-imports", "-c", "from kb.models import Case; print(Case.objects.count())")
    assert cases.strip() == "0"
    logged = log.read_text()
    assert "kb.W003" in logged, "the start-up check"
    assert logged.count("rate-limit counters unavailable") == 1, "once a minute, not per request"
