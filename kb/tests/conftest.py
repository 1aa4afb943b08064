"""Fixtures shared by the kb tests: plain static storage, tiny guides written to disk, and a
real browser for the tests marked `browser`.

Tests build content the way authors do, as markdown files in a guide folder, and load it
with the real importer: `import_content([write_guide("g", {"a.md": "# A..."})])`.
"""

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from kb.cache import new_content_generation


@pytest.fixture(autouse=True)
def plain_static_storage(settings) -> None:
    """Serve static files from the source folders, as nothing is collected for tests.

    The manifest storage (used with DEBUG off, as tests run) needs `collectstatic`
    first; without a STATIC_ROOT, WhiteNoise does not warn that the folder is missing.
    """
    settings.STATIC_ROOT = None
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True, scope="session")
def query_model() -> None:
    """Pastes are embedded by the copy of the model that import_kb builds, as in a deployment.
    It is the development server's copy (KB_MODEL_DIR), built by the first run in a checkout
    (seconds) and shared: tests that build others point KB_MODEL_DIR elsewhere."""
    from kb.search import semantic

    if semantic.available():
        semantic.build_query_model()


@pytest.fixture(autouse=True)
def content_generation_per_test() -> None:
    """Each test's content is new to the page versions workers memoise, as after an import:
    tests roll their rows back, which ends no generation."""
    new_content_generation()


WriteGuide = Callable[..., Path]


@pytest.fixture
def write_guide(tmp_path: Path) -> WriteGuide:
    """Return `write(slug, files, *, title=..., base_url=...) -> Path`.

    It writes `tmp_path/<slug>/` with a guide.toml and each `files` entry (file name ->
    markdown text, `index.md` included), and returns the folder to pass to import_content.
    """

    def write(
        slug: str,
        files: dict[str, str],
        *,
        title: str = "Test Guide",
        base_url: str = "https://docs.example.com/guide/",
    ) -> Path:
        folder = tmp_path / slug
        folder.mkdir()
        # JSON string syntax is valid TOML basic-string syntax, quotes and escapes included.
        (folder / "guide.toml").write_text(f"title = {json.dumps(title)}\nbase_url = {json.dumps(base_url)}\n")
        for name, text in files.items():
            (folder / name).write_text(text)
        return folder

    return write


# Real-browser tests (marker `browser`) ----------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    """One headless Debian Chromium per test module, driven by Playwright's sync API."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with pytest.MonkeyPatch.context() as patch:
        # Playwright's sync API keeps an event loop running in this thread, and Django
        # refuses ORM calls (test set-up, teardown) from such a thread unless allowed.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()


@pytest.fixture
def open_page(browser, live_server):
    """Return `open_page(width=1280, scheme="light", session=None) -> Page`: a page in a
    fresh browser context on the live server, signed in when given a session cookie value."""
    contexts = []

    def open_page(*, width: int = 1280, scheme: str = "light", session: str | None = None):
        context = browser.new_context(
            viewport={"width": width, "height": 800}, color_scheme=scheme, base_url=live_server.url,
        )
        contexts.append(context)
        if session:
            context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield open_page
    for context in contexts:
        context.close()
