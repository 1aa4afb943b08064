"""Production behaviour: security headers and settings, conditional GET and the page cache,
rate and size limits, /healthz, static files and the SQLite set-up.

Content is a tiny guide written as markdown and loaded with the real importer; settings
that only the environment decides are checked in a fresh `manage.py` process.
"""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis
from bs4 import BeautifulSoup
from django.conf import settings as django_settings
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection
from django.db.utils import ConnectionHandler
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.templatetags.static import static
from django.test import Client, RequestFactory

from kb import cache, ratelimit
from kb.importer import import_content
from kb.models import Article, Guide, Section
from kb.pagecache import CSRF_PLACEHOLDER, PageVersion, cached_page
from kb.ratelimit import client_address, group_for
from kb.search.engines import get_engine, postgresql, sqlite
from portal.redis_cache import RedisCache

ROOT = Path(__file__).resolve().parents[2]

ARTICLE_V1 = """\
# Signing in<a name="signing-in"></a>

## I cannot sign in<a name="cannot-sign-in"></a>

Reset the password\\.
"""
ARTICLE_V2 = ARTICLE_V1.replace("Reset the password", "Ask an administrator to reset the password")
ARTICLE_V2 += '\n## My MFA device is lost<a name="lost-mfa"></a>\n\nDeactivate it first\\.\n'
NEIGHBOUR = "# Access keys<a name=\"access-keys\"></a>\n\n## I lost my keys<a name=\"lost-keys\"></a>\n\nMake new ones\\.\n"
OTHER = "# Buckets<a name=\"buckets\"></a>\n\n## Access denied on a bucket<a name=\"bucket-denied\"></a>\n\nCheck it\\.\n"

URL = "/kb/g/signing-in/"
OTHER_URL = "/kb/other/buckets/"

CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' https: data:",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "base-uri": "'self'",
    "object-src": "'none'",
}


@pytest.fixture
def guides(db, write_guide):
    """Two guides: "g" (two articles) and "other"; returns the folders to re-import."""
    folders = {
        "g": write_guide("g", {"signing-in.md": ARTICLE_V1, "access-keys.md": NEIGHBOUR}),
        "other": write_guide("other", {"buckets.md": OTHER}, title="Other Guide"),
    }
    import_content(list(folders.values()))
    return folders


@pytest.fixture
def limits(guides, settings, monkeypatch):
    """Rate limits on, small, for a client address no other test (or test run) uses.

    The limiter's clock stands still in the middle of a minute: windows are fixed, so a
    test that crossed a minute boundary would see its counts start again.
    """
    middle_of_a_minute = time.time() // 60 * 60 + 30
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: middle_of_a_minute))
    settings.KB_RATE_LIMIT_ENABLED = True
    settings.KB_PROXY_COUNT = 0
    settings.KB_RATE_LIMITS = {"search": "3/m", "suggest": "3/m", "recommend": "2/m", "feedback": "2/m", "case": "1/h"}
    return Client(REMOTE_ADDR=f"fd00::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}")


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run manage.py in a fresh process with production-like environment variables added."""
    environment = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "s3cr3t-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "DJANGO_ALLOWED_HOSTS": "kb.example.com",
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


# Headers and settings


@pytest.mark.parametrize("url", ["/", URL, "/topics/", "/kb/g/", "/kb/g/nothing-here/", "/healthz", "/search/?q=x"])
def test_every_response_carries_the_security_headers(client, guides, url):
    response = client.get(url)
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "strict-origin"
    directives = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert directives == CSP
    assert "unsafe-inline" not in response["Content-Security-Policy"]


def test_limit_answers_carry_the_security_headers_too(limits):
    for _ in range(4):
        response = limits.get("/api/v1/search", {"q": "x"})
    assert response.status_code == 429
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", DJANGO_HTTPS="1",
                    EMAIL_URL="smtp://mail.example.com:587?tls=1", KB_SITE_URL="https://kb.example.com")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_mail_would_not_go_out():
    result = manage("check", "--deploy", DJANGO_HTTPS="1", EMAIL_URL="", KB_SITE_URL="")
    assert "kb.W001" in result.stderr and "EMAIL_URL is not set" in result.stderr
    assert "kb.W002" in result.stderr


@pytest.mark.parametrize("value", ["smtp://", "pop3://mail.example.com", "smtp://mail.example.com?tls=maybe",
                                   "smtps://mail.example.com?tls=1", "smtp://mail.example.com:99999"])
def test_a_bad_email_url_stops_start_up_naming_it(value):
    result = manage("check", EMAIL_URL=value)
    assert result.returncode != 0 and "EMAIL_URL" in result.stderr


def test_without_https_check_deploy_names_what_https_turns_on():
    result = manage("check", "--deploy")
    for warning in ("W004", "W008", "W012", "W016"):  # HSTS, redirect, secure session and CSRF cookies
        assert f"security.{warning}" in result.stderr


def test_https_turns_on_redirect_hsts_and_secure_cookies():
    code = (
        "from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS,"
        " s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER)"
    )
    result = manage("shell", "--no-imports", "-c", code, DJANGO_HTTPS="1")
    assert result.stdout.split() == ["True", "31536000", "True", "True", "('HTTP_X_FORWARDED_PROTO',", "'https')"]


def test_redis_url_moves_caches_and_sessions_to_redis():
    code = (
        "from django.conf import settings as s; from django.core.cache import caches;"
        " from django.core.cache.backends.redis import RedisCache;"
        " print(isinstance(caches['default'], RedisCache), caches['default']._servers, s.SESSION_ENGINE)"
    )
    result = manage("shell", "--no-imports", "-c", code, REDIS_URL="redis://127.0.0.1:6379/9")
    assert result.stdout.split() == ["True", "['redis://127.0.0.1:6379/9']",
                                     "django.contrib.sessions.backends.cached_db"]


def test_redis_cache_reuses_one_client_for_every_operation():
    cache = RedisCache("redis://127.0.0.1:6379/9", {"KEY_PREFIX": f"test-{uuid.uuid4().hex}"})
    try:
        cache.set("answer", 42)
    except redis.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    assert cache.get("answer") == 42
    assert cache._cache.get_client("answer") is cache._cache.get_client("other", write=True)
    cache.delete("answer")


@pytest.mark.parametrize("name, value", [("KB_RATE_LIMIT_SEARCH", "lots"), ("KB_PROXY_COUNT", "one")])
def test_bad_settings_stop_the_start(name, value):
    result = manage("check", **{name: value})
    assert result.returncode != 0
    assert name in result.stderr


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite only")
def test_sqlite_connections_use_wal_a_busy_timeout_and_immediate_writes(db, tmp_path):
    # The suite's own SQLite database lives in memory, where WAL does not apply: open a file.
    handler = ConnectionHandler({"default": {**django_settings.DATABASES["default"], "NAME": tmp_path / "wal.sqlite3"}})
    fresh = handler["default"]
    try:
        with fresh.cursor() as cursor:
            pragmas = {}
            for name in ("journal_mode", "busy_timeout", "synchronous"):
                cursor.execute(f"PRAGMA {name}")
                pragmas[name] = cursor.fetchone()[0]
    finally:
        fresh.close()
    assert pragmas == {"journal_mode": "wal", "busy_timeout": 20000, "synchronous": 1}
    assert fresh.transaction_mode == "IMMEDIATE"


def test_static_files_are_hashed_compressed_and_cached_for_a_year(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}}
    call_command("collectstatic", "--noinput", verbosity=0)
    url = static("kb/site.css")
    assert url != "/static/kb/site.css", "hashed name"
    response = Client().get(url, HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    cache_control = response["Cache-Control"]
    assert "immutable" in cache_control
    assert int(cache_control.split("max-age=")[1].split(",")[0]) >= 365 * 24 * 3600


# Conditional GET and the page cache


@pytest.mark.parametrize("url", [URL, "/topics/", "/", "/kb/g/"])
def test_repeat_visit_gets_304_by_etag_or_date(client, guides, url):
    first = client.get(url)
    assert first.status_code == 200
    assert first["Cache-Control"] == "no-cache"
    etag, modified = first["ETag"], first["Last-Modified"]

    by_etag = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert by_etag.status_code == 304
    assert by_etag.content == b""
    assert by_etag["ETag"] == etag
    assert client.get(url, HTTP_IF_MODIFIED_SINCE=modified).status_code == 304
    assert client.get(url, HTTP_IF_NONE_MATCH='"something-else"').status_code == 200


def test_cached_page_costs_no_query(client, guides, django_assert_num_queries):
    first = client.get(URL)
    with django_assert_num_queries(0):  # the version is memoised, the page itself cached
        again = client.get(URL)
    assert len(again.content) == len(first.content)  # the same page but for a fresh CSRF token


def test_a_change_made_elsewhere_is_seen_within_the_check_interval(client, guides, settings, monkeypatch):
    """Another node's import ends the generation in the shared cache; this worker reads it
    at most every KB_CONTENT_CHECK_MS, then forgets what it memoised."""
    settings.KB_CONTENT_CHECK_MS = 1000
    clock = [1000.0]
    monkeypatch.setattr(cache.time, "monotonic", lambda: clock[0])
    cache.new_content_generation()
    etag = client.get(URL)["ETag"]
    Article.objects.filter(slug="signing-in").update(content_hash="changed-by-another-node")
    caches["default"].set(cache.GENERATION_KEY, "a generation another node started")
    clock[0] += 0.9
    assert client.get(URL)["ETag"] == etag, "memoised, and the generation not read again yet"
    clock[0] += 0.2
    assert client.get(URL)["ETag"] != etag


def test_a_guide_deleted_in_the_admin_is_gone_at_once(client, guides):
    assert client.get(URL).status_code == 200
    Guide.objects.get(slug="g").delete()
    assert client.get(URL).status_code == 404


def test_reimport_changes_the_changed_guide_pages_and_keeps_the_others(client, guides):
    before = {url: client.get(url) for url in (URL, "/kb/g/access-keys/", "/topics/", OTHER_URL)}
    (guides["g"] / "signing-in.md").write_text(ARTICLE_V2)
    report = import_content([guides["g"]])
    assert report.updated == ["g/signing-in"]

    after = {url: client.get(url) for url in before}
    assert "Ask an administrator" in after[URL].content.decode()
    assert "Ask an administrator" not in before[URL].content.decode()
    assert after[URL]["ETag"] != before[URL]["ETag"]
    assert client.get(URL, HTTP_IF_NONE_MATCH=before[URL]["ETag"]).status_code == 200
    # A neighbour prints the changed article's title in its pager, so the whole guide moves on.
    assert after["/kb/g/access-keys/"]["ETag"] != before["/kb/g/access-keys/"]["ETag"]
    assert "My MFA device is lost" in after["/topics/"].content.decode()
    # Another guide's page keeps its version, and its cached copy.
    assert after[OTHER_URL]["ETag"] == before[OTHER_URL]["ETag"]


def test_unchanged_reimport_keeps_every_etag(client, guides):
    before = client.get(URL)["ETag"]
    import_content(list(guides.values()))
    assert client.get(URL)["ETag"] == before


def test_page_that_used_the_visitors_own_data_is_never_cached(db):
    renders = []

    def page(request):
        renders.append(request)
        return HttpResponse(get_token(request) if request.GET.get("form") else "the same for everyone")

    version = PageVersion(f"test:{uuid.uuid4()}", (), None)
    view = cached_page(lambda: version)(page)
    with_token = [view(RequestFactory().get("/", {"form": "1"})).content for _ in range(2)]
    assert with_token[0] != with_token[1]
    assert len(renders) == 2
    plain = [view(RequestFactory().get("/")).content for _ in range(2)]
    assert plain[0] == plain[1] == b"the same for everyone"
    assert len(renders) == 3, "the second plain request came from the cache"


def test_cached_article_forms_carry_each_visitors_own_working_token(guides):
    section = Section.objects.get(anchor="cannot-sign-in")
    for _ in range(2):  # the second visitor gets the copy the first one's visit cached
        visitor = Client(enforce_csrf_checks=True)
        page = BeautifulSoup(visitor.get(URL).content, "html.parser")
        tokens = {field["value"] for field in page.find_all("input", attrs={"name": "csrfmiddlewaretoken"})}
        assert len(tokens) == 1
        assert CSRF_PLACEHOLDER not in tokens
        vote = {"section": section.pk, "vote": "helped", "csrfmiddlewaretoken": tokens.pop()}
        assert visitor.post("/feedback/", vote).status_code == 200


def test_staff_links_never_reach_the_public_copy(client, guides, django_user_model):
    staff = django_user_model.objects.create_user("desk", password="x", is_staff=True)
    staff_client = Client()
    staff_client.force_login(staff)
    assert "Help desk" in staff_client.get(URL).content.decode()
    assert "Help desk" not in client.get(URL).content.decode()
    assert "Help desk" in staff_client.get(URL).content.decode()


def test_missing_article_is_still_a_404(client, guides):
    assert client.get("/kb/g/nothing-here/").status_code == 404
    assert client.get("/kb/nothing/").status_code == 404


# Rate limits


@pytest.mark.parametrize("method, path, group", [
    ("GET", "/search/", "search"),
    ("GET", "/api/v1/search", "search"),
    ("POST", "/api/v1/recommend", "recommend"),
    ("POST", "/troubleshoot/", "recommend"),
    ("POST", "/troubleshoot/abc123/feedback/", "feedback"),
    ("POST", "/feedback/", "feedback"),
    ("POST", "/kb/g/signing-in/feedback", None),
    ("POST", "/search/opened/token/", "feedback"),
    ("POST", "/troubleshoot/abc123/case/", "case"),
    ("GET", "/troubleshoot/", None),
    ("GET", "/kb/g/signing-in/", None),
    ("GET", "/api/v1/suggest", "suggest"),
    ("GET", "/api/v1/nope", None),
])
def test_limited_endpoints(method, path, group):
    assert group_for(method, path) == group


def test_api_over_the_limit_gets_429_json_with_retry_after(limits):
    statuses = [limits.get("/api/v1/search", {"q": "access denied"}).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    response = limits.get("/api/v1/search", {"q": "access denied"})
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response.json()["retry_after"] == int(response["Retry-After"])
    assert "too many requests" in response.json()["error"]


def test_pages_over_the_limit_get_a_friendly_429_page(limits):
    for _ in range(3):
        limits.get("/search/", {"q": "access denied"})
    response = limits.get("/search/", {"q": "access denied"})  # the same group as the API
    assert response.status_code == 429
    assert response["Content-Type"].startswith("text/html")
    assert "Too many requests" in response.content.decode()
    assert response["Retry-After"]


def test_writes_are_limited_before_csrf_or_routing(limits):
    for _ in range(2):
        limits.post("/api/v1/recommend", "{}", content_type="application/json")
    assert limits.post("/api/v1/recommend", "{}", content_type="application/json").status_code == 429
    assert limits.post("/troubleshoot/abc/case/").status_code != 429
    assert limits.post("/troubleshoot/abc/case/").status_code == 429


def test_limits_are_per_client_and_reading_is_never_limited(limits, guides):
    for _ in range(4):
        limits.get("/api/v1/search", {"q": "x"})
    assert limits.get("/api/v1/search", {"q": "x"}).status_code == 429
    assert limits.get(URL).status_code == 200
    other = Client(REMOTE_ADDR=f"fd01::{uuid.uuid4().hex[:4]}")
    assert other.get("/api/v1/search", {"q": "x"}).status_code == 200


def test_limits_can_be_switched_off(limits, settings):
    settings.KB_RATE_LIMITS = {**settings.KB_RATE_LIMITS, "search": "off"}
    assert {limits.get("/api/v1/search", {"q": "x"}).status_code for _ in range(5)} == {200}


def test_client_address_trusts_forwarded_for_only_behind_proxies(settings, rf):
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7, 10.0.0.2")
    settings.KB_PROXY_COUNT = 0
    assert client_address(request) == "10.0.0.1"
    settings.KB_PROXY_COUNT = 1
    assert client_address(request) == "10.0.0.2"
    settings.KB_PROXY_COUNT = 2
    assert client_address(request) == "203.0.113.7"
    settings.KB_PROXY_COUNT = 5  # fewer entries than proxies: the header is not to be trusted
    assert client_address(request) == "10.0.0.1"


# Size limits


def test_body_over_the_limit_is_413_json_for_the_api(client):
    body = '{"error_text": "' + "x" * (300 * 1024) + '"}'
    response = client.post("/api/v1/recommend", body, content_type="application/json")
    assert response.status_code == 413
    assert "256 KB" in response.json()["error"]


def test_body_over_the_limit_is_a_413_page_elsewhere(client):
    response = client.post("/troubleshoot/", {"error_text": "x" * (300 * 1024)})
    assert response.status_code == 413
    assert "more text than we can take" in response.content.decode()


def test_a_chunked_body_is_refused_with_411_not_read_as_empty(client):
    body = json.dumps({"error_text": "AccessDenied"})
    response = client.post("/api/v1/recommend", body, content_type="application/json", HTTP_TRANSFER_ENCODING="chunked")
    assert response.status_code == 411
    assert "Content-Length" in response.json()["error"]


def test_largest_paste_fits_even_fully_escaped(client):
    # 20,000 characters outside the Basic Multilingual Plane: 12 bytes each percent-encoded.
    response = client.post("/search/opened/token/", {"section": "x", "error_text": "\U0001F600" * 20000})
    assert response.status_code == 400  # the view's own answer: the body was accepted


# Errors under /api/ are JSON, whatever answers them


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [("get", "/api/v1/recommend", 405), ("post", "/api/v1/search", 403), ("get", "/api/v1/nope", 404)],
    ids=["wrong-method", "csrf", "unknown-endpoint"],
)
def test_api_errors_django_answers_are_json_too(db, method, url, status):
    response = getattr(Client(enforce_csrf_checks=True), method)(url)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]
    if status == 405:
        assert response["Allow"] == "POST"


def test_a_form_refused_by_csrf_gets_the_sites_page(db):
    response = Client(enforce_csrf_checks=True).post("/troubleshoot/", {"error_text": "AccessDenied"})
    assert response.status_code == 403
    assert "That form could not be accepted" in response.content.decode()


# /healthz


def test_healthz_is_200_with_database_and_index(client, guides, django_assert_max_num_queries):
    # Three reads, and the counters' probe: one statement (in a savepoint here, inside the test's
    # transaction) and, at most once a minute, the deletion of finished windows.
    with django_assert_max_num_queries(7):
        response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["status"] == "ok"
    assert body["search_index"] == {"status": "ok", "documents": 6}  # sections in the two guides
    assert body["cache"] == {"default": "ok"}
    assert body["rate_limits"] == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_is_503_when_the_search_index_is_missing(client, db):
    if get_engine().exists():  # left by another test's committed data; dropped inside this test's transaction
        tables = {"sqlite": [sqlite.TABLE], "postgresql": [postgresql.TABLE, postgresql.POSTINGS]}[connection.vendor]
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"DROP TABLE {table}")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["search_index"] == {"status": "missing"}
    assert response.json()["database"]["status"] == "ok"
