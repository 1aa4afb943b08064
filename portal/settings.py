"""Settings for the knowledge-base portal, read from the environment.

One module for every deployment: the environment decides debug mode, hosts, HTTPS, the
database (`DATABASE_URL`, SQLite by default) and the cache (`REDIS_URL`). Bad values
fail loudly at start-up rather than half-working. README.md lists every variable.
"""

import os
import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.mailurl import email_settings

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}") from None


def env_rate(name: str, default: str) -> str:
    """A rate limit as "N/s", "N/m", "N/h" or "N/d" (N requests per period); "off" disables it."""
    value = os.environ.get(name, default).strip().lower()
    if value != "off" and not re.fullmatch(r"[1-9][0-9]*/[smhd]", value):
        raise ImproperlyConfigured(f"{name} must look like 30/m (or be off), got {value!r}")
    return value


DEBUG = env_bool("DJANGO_DEBUG")
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-for-debug-mode"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "kb",
]

# The header middleware sits above WhiteNoise, so that static files, redirects and the
# 413/429 answers get the same headers as pages.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "kb.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before the limits: they count a request that carries an API token per token.
    "kb.api.auth.ApiTokenMiddleware",
    "kb.middleware.RequestLimitsMiddleware",
    "kb.middleware.JsonApiErrorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

# HTTPS: a site served over TLS (by gunicorn or, usually, a proxy in front) sets
# DJANGO_HTTPS=1. The proxy must set X-Forwarded-Proto and overwrite a client's own.
if env_bool("DJANGO_HTTPS"):
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # One year, the lifetime browsers' preload lists ask for. Start lower (e.g. 3600)
    # on a new host name if going back to plain HTTP must stay possible.
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
X_FRAME_OPTIONS = "DENY"
# Only the origin, never the path: search URLs carry pasted error text (which may hold
# secrets and run to 20,000 characters, too long for a header behind most servers).
SECURE_REFERRER_POLICY = "strict-origin"

ROOT_URLCONF = "portal.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "kb.context_processors.limits",
            ],
        },
    },
]

WSGI_APPLICATION = "portal.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DJANGO_CONN_MAX_AGE", 60),
        # Checking a kept connection costs PostgreSQL a round trip on every request, a third
        # of a cached page view. Without it, after a database restart each worker fails
        # one request and then reconnects; turn it on where the database fails over often.
        conn_health_checks=env_bool("DJANGO_CONN_HEALTH_CHECKS"),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers and one writer work at once; IMMEDIATE takes the write lock at
    # BEGIN so a transaction never fails half-way with "database is locked", and the
    # timeout (seconds) is how long a writer waits for the lock.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

# Caches. "default" holds rendered pages under keys that include their content version
# (kb/pagecache.py), so no node ever serves a stale page whatever the backend, and "local"
# keeps each worker's most viewed ones at hand. Rate-limit counters are in the database
# (kb/ratecounter.py says why).
_local = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "OPTIONS": {"MAX_ENTRIES": 1000}}
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    # Several nodes: one Redis for pages and sessions.
    _redis = {"BACKEND": "portal.redis_cache.RedisCache", "LOCATION": REDIS_URL}
    CACHES = {
        "default": {**_redis, "KEY_PREFIX": "kb", "TIMEOUT": 24 * 3600},
        "local": _local,
    }
    # Sessions read from Redis and survive its restart (they are written to the database too).
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    # One machine: pages in files that every gunicorn worker shares and a restart keeps.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": Path(os.environ.get("KB_CACHE_DIR") or BASE_DIR / ".cache"),
            "TIMEOUT": 24 * 3600,
            "OPTIONS": {"MAX_ENTRIES": 20000},
        },
        "local": _local,
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "admin:login"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
}

# A 20,000-character paste, percent-encoded in a form or \u-escaped in JSON, is up to
# 240,000 bytes; 256 KiB holds it with the rest of the form. Bigger bodies get a 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024

# App settings (read at call time through django.conf.settings).
KB_CONTENT_DIR = Path(os.environ.get("KB_CONTENT_DIR") or BASE_DIR / "content")
# The largest markdown or guide.toml file the importer reads (the corpus's largest is 0.3 MB):
# a bigger one is an error naming it, before it is read into memory.
KB_MAX_FILE_BYTES = env_int("KB_MAX_FILE_BYTES", 5 * 1024 * 1024)
# Where the semantic stage keeps the model file it builds for queries (kb/search/semantic.py).
KB_MODEL_DIR = Path(os.environ.get("KB_MODEL_DIR") or BASE_DIR / ".cache" / "models")
# Judged cases (errors-dev.jsonl, qrels-dev.jsonl) that `manage.py train_ranker` fits the ranker on.
KB_EVAL_DIR = Path(os.environ.get("KB_EVAL_DIR") or BASE_DIR.parent / "shared" / "eval")

# Requests per client and period on the expensive and writing endpoints (kb/ratelimit.py
# maps URL names to these groups), sized for people, counted in the database.
KB_RATE_LIMITS = {
    "search": env_rate("KB_RATE_LIMIT_SEARCH", "60/m"),
    # Type-ahead: search.js asks at most every 150 ms while someone types, about 10 times a query.
    "suggest": env_rate("KB_RATE_LIMIT_SUGGEST", "120/m"),
    "recommend": env_rate("KB_RATE_LIMIT_RECOMMEND", "30/m"),
    "feedback": env_rate("KB_RATE_LIMIT_FEEDBACK", "60/m"),
    "case": env_rate("KB_RATE_LIMIT_CASE", "10/h"),
    "api": env_rate("KB_RATE_LIMIT_API", "120/m"),
}
KB_RATE_LIMIT_ENABLED = env_bool("KB_RATE_LIMIT_ENABLED", True)
# How often a process reads the content generation from the shared cache (kb/cache.py):
# an import reaches every node's pages within this time. 0 reads it on every page view.
KB_CONTENT_CHECK_MS = env_int("KB_CONTENT_CHECK_MS", 1000)
# How many proxies in front append to X-Forwarded-For: the client is the address the
# outermost of them saw. 0 (no proxy) uses the connection's address and ignores the header.
KB_PROXY_COUNT = env_int("KB_PROXY_COUNT", 0)
# A guided run still open this many hours after it started counts as abandoned in the
# desk's insights (the person neither said it was fixed nor asked the desk).
KB_ABANDONED_HOURS = env_int("KB_ABANDONED_HOURS", 24)
# Sent on every response; no inline script or style anywhere (kb/tests/test_pages.py).
KB_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'self'; object-src 'none'"
)

# Mail (kb/notify): EMAIL_URL names the server (portal/mailurl.py); without it every message
# is printed to the log (console backend), as in development. Tests use Django's locmem outbox.
globals().update(email_settings(os.environ.get("EMAIL_URL") or "console://"))
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "help-desk@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Where the desk hears of new cases and of people's answers (comma-separated; none: not mailed).
KB_DESK_EMAIL = env_list("KB_DESK_EMAIL")
# The site's address as people reach it, for links in mail and webhooks.
KB_SITE_URL = os.environ.get("KB_SITE_URL", "http://127.0.0.1:8000")
# Attempt mail and webhooks right after the change commits (in the request); 0 leaves all of
# it to `manage.py deliver`, run every minute or so, which also retries failures.
KB_DELIVER_AFTER_COMMIT = env_bool("KB_DELIVER_AFTER_COMMIT", True)
KB_WEBHOOK_TIMEOUT = env_int("KB_WEBHOOK_TIMEOUT", 5)
