"""gunicorn settings for the portal: `gunicorn -c gunicorn.conf.py portal.wsgi`.

Every value can be changed from the environment (names in README.md); anything else with
GUNICORN_CMD_ARGS. Reference: https://gunicorn.org/reference/settings/
"""

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# Behind nginx or a load balancer on the same host, 127.0.0.1; nodes behind a load
# balancer elsewhere set GUNICORN_BIND=0.0.0.0:8000.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")

# Sync workers: requests are short and CPU-bound, so about two per core keeps the
# cores busy while others wait on the database. WEB_CONCURRENCY is gunicorn's own name.
workers = _int("WEB_CONCURRENCY", 2 * multiprocessing.cpu_count() + 1)
threads = _int("GUNICORN_THREADS", 1)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Off by default: a recycled worker loses its page cache (local memory on one machine).
# Set it (e.g. 100000) if a leak ever shows; workers then restart after that many requests.
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10
# Load Django once in the master: workers fork with it ready, and a broken setting stops
# the start instead of every worker crashing in turn.
preload_app = True

# A pasted error in GET /search/?q= can run to 20,000 characters, percent-encoded to
# about 60 KB: more than the 8 KB line limit. 0 lifts it (gunicorn caps lines at 1 MB);
# a proxy in front should allow the same (nginx: large_client_header_buffers 4 64k).
limit_request_line = 0

# The control socket lives at one path per user, so a second server on the same machine
# (a second node, a benchmark) would take it over: only on request.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

# Workers' heartbeat files in memory, not on a disk that may stall (containers).
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
BUILD_TIMEOUT = 120  # seconds for on_starting's build of the query model

# The path without the query string: search queries are pasted errors that may hold
# secrets (they are stored redacted, and must not leak through the access log instead).
access_log_format = '%(h)s %({x-forwarded-for}i)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'


def on_starting(server) -> None:
    """Before the socket is bound: build the query copy of the embedding model if this node
    has none (kb/search/semantic.py), in a process of its own, whose 0.5 GB is given back
    (about 1 s when it is built; a few seconds when not). A failure is logged, and pastes
    are embedded by the package's model."""
    try:
        done = subprocess.run([sys.executable, str(Path(__file__).with_name("manage.py")), "build_query_model"],
                              capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        server.log.warning("build_query_model: no answer in %d s", BUILD_TIMEOUT)
        return
    for line in (done.stdout + done.stderr).splitlines():
        (server.log.info if done.returncode == 0 else server.log.warning)("build_query_model: %s", line)


def when_ready(server) -> None:
    """Run the system checks that need the database (kb/checks.py: search engine, rate-limit
    counters) once, in the master, before any worker starts, and log what they find: a
    server whose rate limits cannot count says so at start-up."""
    from django.apps import apps

    if not apps.ready:  # preload_app off: Django loads in the workers, which serve unchecked
        return
    from django.core import checks
    from django.db import connections

    try:
        for message in checks.run_checks(databases=list(connections)):
            (server.log.error if message.is_serious() else server.log.warning)("system check: %s", message)
    finally:
        connections.close_all()  # workers fork from here: none may share the master's connections
