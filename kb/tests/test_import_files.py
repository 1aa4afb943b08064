"""Files the importer cannot use (kb/importer/sources.py): each is an error naming it, and
nothing is written.

Tests run as root, which reads any file whatever its mode, so `chmod 000` proves nothing
with root's user id: the permission case reads with nobody's effective user id. The other
entries fail for every user: a symlink loop, a FIFO (which would block a plain open for
ever), a socket (open fails with ENXIO), a folder named like an article, a file larger
than KB_MAX_FILE_BYTES (sparse, so the test writes no 50 MB) and one that is not UTF-8.
"""

import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from kb.importer import ImportFailed, import_content
from kb.models import Article, Guide, Section, SectionEntity

from .test_importer import page


def symlink_loop(path: Path) -> None:
    other = path.with_name(f".{path.name}.loop")  # hidden: not content itself
    other.symlink_to(path.name)
    path.symlink_to(other.name)


def fifo(path: Path) -> None:
    os.mkfifo(path)


def unix_socket(path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()  # the entry stays on disk; opening it fails


def sparse(size: int) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with path.open("wb") as file:
            file.truncate(size)
    return write


def latin1(path: Path) -> None:
    path.write_bytes(page("bad").encode() + b"\nCaf\xe9 au lait\n")


FIFTY_MB = 50 * 1024 * 1024
ENTRIES = {
    "symlink loop": (symlink_loop, ": cannot read (Too many levels of symbolic links)"),
    "FIFO": (fifo, ": cannot read (not a regular file)"),
    "socket": (unix_socket, ": cannot read (No such device or address)"),
    "folder": (lambda path: path.mkdir(), ": cannot read (a folder)"),
    "50 MB file": (sparse(FIFTY_MB), ": 50.0 MB is more than the 5.0 MB allowed (KB_MAX_FILE_BYTES)"),
    "not UTF-8": (latin1, ":5: not valid UTF-8 (invalid continuation byte)"),
}


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (Guide, Article, Section, SectionEntity)}


def served() -> list[tuple]:
    return list(Section.objects.order_by("pk").values_list("pk", "article__slug", "anchor", "html"))


@pytest.mark.parametrize("name", ["bad.md", "index.md", "guide.toml"])
@pytest.mark.parametrize("kind", ENTRIES)
def test_an_unusable_file_is_named_and_nothing_is_written(db, write_guide, kind, name):
    folder = write_guide("g", {"a.md": page("a", "part"), "b.md": page("b")})
    import_content([folder])
    before, rows = counts(), served()
    (folder / "a.md").write_text(page("a", "changed"))
    (folder / name).unlink(missing_ok=True)
    make, message = ENTRIES[kind]
    make(folder / name)

    with pytest.raises(ImportFailed) as failure:
        import_content([folder])
    assert failure.value.errors == [f"{folder / name}{message}"]
    assert (counts(), served()) == (before, rows)


def test_the_size_limit_is_read_at_call_time(db, write_guide, settings):
    folder = write_guide("g", {"a.md": page("a") + "x" * 200 + "\n"})
    size = (folder / "a.md").stat().st_size
    settings.KB_MAX_FILE_BYTES = 200
    with pytest.raises(ImportFailed) as failure:
        import_content([folder])
    assert failure.value.errors == [f"{folder / 'a.md'}: {size:,} bytes is more than the 200 bytes allowed (KB_MAX_FILE_BYTES)"]
    settings.KB_MAX_FILE_BYTES = size
    assert import_content([folder]).added == ["g/a"]


NOBODY = 65534


@pytest.mark.skipif(os.geteuid() != 0, reason="reads as nobody, which needs root")
def test_a_file_without_read_permission_is_named(db, write_guide):
    """As an operator's unprivileged account sees a `chmod 000` file: read with nobody's
    effective user id (root's would read it), then root's again."""
    with tempfile.TemporaryDirectory() as scratch:
        os.chmod(scratch, 0o755)
        folder = Path(scratch) / "g"
        folder.mkdir()
        (folder / "a.md").write_text(page("a"))
        (folder / "secret.md").write_text(page("secret"))
        (folder / "secret.md").chmod(0o000)
        os.seteuid(NOBODY)
        try:
            with pytest.raises(ImportFailed) as failure:
                import_content([folder])
        finally:
            os.seteuid(0)
    assert failure.value.errors == [f"{folder / 'secret.md'}: cannot read (Permission denied)"]
    assert not Guide.objects.exists()
