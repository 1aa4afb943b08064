"""Finding guides on disk: which folders are guides, their guide.toml, and their files."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from kb.guided.activities import Activity, ActivityError
from django.conf import settings

from kb.guided.activities import parse as parse_activities

from .render import RENDER_VERSION

INDEX = "index.md"
MAX_SLUG = 200  # kb.models.Article.slug
GUIDE_FILE = "guide.toml"
# Where each [[activities]] table starts, so an error in one names its line (tomllib gives none).
ACTIVITIES_TABLE = re.compile(r"^[ \t]*\[\[[ \t]*activities[ \t]*\]\]", re.MULTILINE)


class SourceError(Exception):
    """A content file that cannot be used; the message names the file (and line)."""


@dataclass
class ArticleSource:
    slug: str
    path: Path
    text: str
    content_hash: str


@dataclass
class GuideSource:
    slug: str
    path: Path
    title: str
    base_url: str
    index_text: str | None
    activities: list[Activity] = field(default_factory=list)  # guide.toml's [[activities]]
    articles: list[ArticleSource] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # files that could not be read, with the reason


def _hash(text: str) -> str:
    return hashlib.sha256(f"{RENDER_VERSION}\0{text}".encode()).hexdigest()


def _markdown_files(folder: Path) -> list[Path]:
    # Hidden files (editor swap files, macOS "._" resource forks) are not content.
    return sorted(p for p in folder.glob("*.md") if not p.name.startswith("."))


def _has_markdown(folder: Path) -> bool:
    return bool(_markdown_files(folder))


def _is_guide(folder: Path) -> bool:
    if _present(folder / GUIDE_FILE) or _present(folder / INDEX):
        return True
    subfolders_with_markdown = any(p.is_dir() and _has_markdown(p) for p in folder.iterdir())
    return _has_markdown(folder) and not subfolders_with_markdown


def find_guide_folders(paths: list[Path]) -> list[Path]:
    """Expand each PATH into guide folders: a guide itself, or a folder of guides."""
    folders: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise SourceError(f"{path}: not a folder")
        if _is_guide(path):
            folders.append(path)
        else:
            subfolders = (p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
            folders.extend(sorted(p for p in subfolders if _is_guide(p)))
    slugs: dict[str, Path] = {}
    for folder in folders:
        if folder.name in slugs and slugs[folder.name].resolve() != folder.resolve():
            raise SourceError(f"{folder}: guide slug {folder.name!r} is also used by {slugs[folder.name]}")
        slugs[folder.name] = folder
    return list(dict.fromkeys(slugs.values()))


def _read_text(path: Path) -> str:
    """The file's text; SourceError naming the file (and line) when it is not a readable
    regular file of UTF-8 within KB_MAX_FILE_BYTES."""
    limit = settings.KB_MAX_FILE_BYTES
    try:
        # Non-blocking, so a FIFO that nobody writes to is reported instead of hanging the import.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:  # no permission, a symlink loop, a socket, a dangling link
        raise SourceError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            what = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise SourceError(f"{path}: cannot read ({what})")
        if info.st_size > limit:
            raise SourceError(f"{path}: {_size(info.st_size)} is more than the {_size(limit)} allowed (KB_MAX_FILE_BYTES)")
        with open(fd, "rb", closefd=False) as file:
            data = file.read(limit + 1)  # it may have grown since fstat
    finally:
        os.close(fd)
    if len(data) > limit:
        raise SourceError(f"{path}: more than the {_size(limit)} allowed (KB_MAX_FILE_BYTES)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SourceError(f"{path}:{line}: not valid UTF-8 ({exc.reason})") from None


def _size(n: int) -> str:
    return f"{n:,} bytes" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


def _present(path: Path) -> bool:
    """Whether the folder has an entry of that name, even one that cannot be read (which
    reading then reports, rather than the import silently going without it)."""
    return os.path.lexists(path)


def _read_guide_toml(path: Path) -> dict:
    text = _read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"at line (\d+)", str(exc))  # tomllib gives the line only in its message
        where = f"{path}:{line.group(1)}" if line else str(path)
        raise SourceError(f"{where}: invalid TOML: {exc}") from None
    for key in ("title", "base_url"):
        if key in data and not isinstance(data[key], str):
            raise SourceError(f"{path}: {key} must be a string")
    base_url = data.get("base_url", "")
    if base_url and not base_url.startswith(("http://", "https://")):
        raise SourceError(f"{path}: base_url must be an http(s) URL, got {base_url!r}")
    if base_url and not base_url.endswith("/"):
        data["base_url"] = base_url + "/"
    try:
        data["activities"] = parse_activities(data.get("activities", []))
    except ActivityError as exc:
        tables = [text.count("\n", 0, m.start()) + 1 for m in ACTIVITIES_TABLE.finditer(text)]
        # Only when every entry is a [[activities]] table do the headers line up with the entries.
        known = exc.index is not None and len(tables) == len(data["activities"])
        raise SourceError(f"{path}:{tables[exc.index]}: {exc}" if known else f"{path}: {exc}") from None
    return data


def load_guide(folder: Path) -> GuideSource:
    """Read a guide folder. Unreadable files go to `errors` rather than stopping the read,
    so one run can name every bad file."""
    errors: list[str] = []
    if len(folder.name) > MAX_SLUG:
        errors.append(f"{folder}: folder name is longer than {MAX_SLUG} characters (it is the guide's URL)")
    meta: dict = {}
    if _present(folder / GUIDE_FILE):
        try:
            meta = _read_guide_toml(folder / GUIDE_FILE)
        except SourceError as exc:
            errors.append(str(exc))
    index_text = None
    if _present(folder / INDEX):
        try:
            index_text = _read_text(folder / INDEX)
        except SourceError as exc:
            errors.append(str(exc))
    guide = GuideSource(
        slug=folder.name,
        path=folder,
        title=meta.get("title", ""),
        base_url=meta.get("base_url", ""),
        index_text=index_text,
        activities=meta.get("activities", []),
        errors=errors,
    )
    for path in _markdown_files(folder):
        if path.name == INDEX:
            continue
        try:
            text = _read_text(path)
        except SourceError as exc:
            errors.append(str(exc))
            continue
        if len(path.stem) > MAX_SLUG:
            errors.append(f"{path}: file name is longer than {MAX_SLUG} characters (it is the article's URL)")
            continue
        guide.articles.append(ArticleSource(path.stem, path, text, _hash(text)))
    return guide
