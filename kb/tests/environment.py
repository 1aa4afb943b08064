"""Loaded with `-p` before Django is configured: tests run with production-like settings
(DEBUG off), so they need the environment a deployment would provide."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production-" + "x" * 32)
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("KB_RATE_LIMIT_ENABLED", "0")  # every test client is 127.0.0.1; tests of limits turn them on
# Pages cached by tests go to a folder of their own, never the development server's `.cache/`
# (nor one a developer's KB_CACHE_DIR names); the processes tests start inherit it.
os.environ["KB_CACHE_DIR"] = tempfile.mkdtemp(prefix="kb-test-cache-")
atexit.register(shutil.rmtree, os.environ["KB_CACHE_DIR"], ignore_errors=True)
