"""Fixtures shared by the kb tests: plain static storage, and tiny guides written to disk.

Tests build content the way authors do, as markdown files in a guide folder, and load it
with the real importer: `import_content([write_guide("g", {"a.md": "# A..."})])`.
"""

import json
from collections.abc import Callable
from pathlib import Path

import pytest

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
