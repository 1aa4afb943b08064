"""Several app processes sharing one database and one cache, as deployed.

Two gunicorn nodes on PostgreSQL and Redis: what one node writes the other shows, a
session and a rate limit hold across both, and a re-import changes cached pages on both.
One gunicorn with two workers on SQLite: a rate limit holds across its workers.
Each test builds its own database from tiny markdown guides with the real commands
(`migrate`, `import_kb`), and drops it afterwards.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import dj_database_url
import psycopg
import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
CONTENT_CHECK_SECONDS = settings.KB_CONTENT_CHECK_MS / 1000
ON_POSTGRES_AND_REDIS = connection.vendor == "postgresql" and bool(os.environ.get("REDIS_URL"))

ARTICLE = """\
# Signing in<a name="signing-in"></a>

## I cannot sign in<a name="cannot-sign-in"></a>

Reset the password\\.
"""
URL = "/kb/nodes/signing-in/"


class Visitor:
    """A browser: cookies kept across requests and across nodes (cookies ignore the port,
    as they would behind a load balancer), and a client address of its own."""

    def __init__(self) -> None:
        self.address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def request(self, url: str, data: dict | None = None, headers: dict | None = None) -> tuple[int, str, dict]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(url, body, {"X-Forwarded-For": self.address, **(headers or {})})
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read().decode(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), dict(error.headers)

    def csrf_token(self, page: str) -> str:
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@contextmanager
def node(env: dict, log: Path, workers: int = 1) -> Iterator[str]:
    """A gunicorn with the repository's config on a free port; yields its base URL."""
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "portal.wsgi"],
            cwd=ROOT, env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(workers)},
            stdout=output, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # it answers; the test looks at what
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def site(tmp_path: Path, database_url: str, **settings: str) -> dict:
    """A database with one tiny guide imported (and so indexed); returns the nodes' environment."""
    content = tmp_path / "content" / "nodes"
    content.mkdir(parents=True)
    (content / "guide.toml").write_text('title = "Nodes"\nbase_url = "https://docs.example.com/"\n')
    (content / "signing-in.md").write_text(ARTICLE)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "two-nodes-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "KB_CONTENT_DIR": str(content.parent),
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        "KB_PROXY_COUNT": "1",  # each Visitor sends its own address, so runs never share counters
        "KB_RATE_LIMIT_ENABLED": "1",
        **settings,
    }
    manage(env, "collectstatic", "--noinput")
    manage(env, "migrate", "--noinput")
    manage(env, "import_kb")  # which syncs the search index too
    return env


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A database of its own on the suite's PostgreSQL server, dropped afterwards."""
    parts = dj_database_url.parse(os.environ["DATABASE_URL"])
    name = f"kb_two_nodes_{uuid.uuid4().hex[:12]}"
    server = dict(host=parts["HOST"], port=parts["PORT"] or 5432, user=parts["USER"], password=parts["PASSWORD"])
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://{parts['USER']}@{parts['HOST']}:{server['port']}/{name}"
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def well_inside_a_minute(room: float = 20) -> None:
    """Wait, if need be, for a new clock minute: limits count per minute, so a burst that
    crosses into the next is (rightly) counted afresh there."""
    left = 60 - time.time() % 60
    if left < room:
        time.sleep(left + 1)


@pytest.mark.skipif(not ON_POSTGRES_AND_REDIS, reason="needs DATABASE_URL on PostgreSQL and REDIS_URL")
def test_two_nodes_share_data_sessions_limits_and_invalidation(tmp_path, postgres_url):
    env = site(tmp_path, postgres_url, KB_RATE_LIMIT_SEARCH="4/m")
    staff_password = uuid.uuid4().hex
    manage({**env, "DJANGO_SUPERUSER_PASSWORD": staff_password},
           "createsuperuser", "--noinput", "--username", "desk", "--email", "desk@example.com")
    with node(env, tmp_path / "a.log") as a, node(env, tmp_path / "b.log") as b:
        # A feedback vote through B, and a search logged through A ...
        visitor = Visitor()
        status, page, _ = visitor.request(b + URL)
        section = re.search(r'name="section" value="(\d+)"', page).group(1)
        vote = {"section": section, "vote": "not_this", "csrfmiddlewaretoken": visitor.csrf_token(page)}
        assert visitor.request(b + "/feedback/", vote)[0] == 200
        word = "zq" + uuid.uuid4().hex[:8]
        assert visitor.request(a + "/search/?" + urllib.parse.urlencode({"q": f"cannot sign in {word}"}))[0] == 200

        # ... are what staff see from either node, signed in once through A.
        staff = Visitor()
        _, login, _ = staff.request(a + "/admin/login/")
        credentials = {"username": "desk", "password": staff_password, "csrfmiddlewaretoken": staff.csrf_token(login)}
        assert staff.request(a + "/admin/login/?next=/admin/", credentials)[0] == 200
        status, logs, _ = staff.request(b + "/admin/kb/searchlog/?q=" + word)
        assert status == 200 and word in logs, "session and search log shared"
        status, feedback, _ = staff.request(a + "/admin/kb/feedback/")
        assert status == 200 and "Not this" in feedback

        # One client's searches count together on both nodes.
        well_inside_a_minute()
        searcher = Visitor()
        statuses = [searcher.request(base + "/api/v1/search?q=password")[0] for base in (a, b, a, b, a, b)]
        assert statuses == [200, 200, 200, 200, 429, 429]

        # A re-import (here by the operator's command) changes the cached page on both nodes.
        reader = Visitor()
        before = {base: reader.request(base + URL) for base in (a, b)}
        assert before[a][2]["ETag"] == before[b][2]["ETag"]
        (Path(env["KB_CONTENT_DIR"]) / "nodes" / "signing-in.md").write_text(
            ARTICLE.replace("Reset the password", "Ask the help desk for a new password")
        )
        manage(env, "import_kb")
        time.sleep(CONTENT_CHECK_SECONDS)  # each process reads the content generation this often
        for base in (a, b):
            status, page, headers = reader.request(base + URL, headers={"If-None-Match": before[base][2]["ETag"]})
            assert status == 200, base
            assert "Ask the help desk for a new password" in page
            assert headers["ETag"] != before[base][2]["ETag"]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite deployment: one node, several workers")
def test_sqlite_rate_limit_holds_across_workers_and_writes_never_fail(tmp_path):
    env = site(tmp_path, f"sqlite:///{tmp_path / 'site.sqlite3'}", KB_RATE_LIMIT_SEARCH="10/m")
    with node(env, tmp_path / "node.log", workers=2) as base:
        client = Visitor()
        well_inside_a_minute()
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda i: client.request(f"{base}/search/?q=sign+in+{i}")[0], range(24)))
    assert sorted(statuses) == [200] * 10 + [429] * 14, statuses
    count = manage(env, "shell", "--no-imports", "-c", "from kb.models import SearchLog; print(SearchLog.objects.count())")
    assert json.loads(count) == 10, "every search that was served was logged"
