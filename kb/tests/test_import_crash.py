"""`manage.py import_kb` killed with SIGKILL at random points (kb/importer/sync.py).

The command runs as a subprocess against its own file-based database (an SQLite file in a
temporary folder, or a dedicated PostgreSQL database when the suite runs on PostgreSQL),
switching a generated content tree between two versions. After every kill the database
holds one version completely (the one before, or the new one if the commit happened),
the full-text index matches the sections, no process of the killed import is left, and
every few kills the next import completes and holds the new version. Some runs embed, and
are killed while embedding. `bench/import_kills.py` runs a bigger profile.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from kb.importer.sync import PARALLEL_THRESHOLD
from kb.search import semantic
from kb.search.engines import postgresql, sqlite

VERSIONS = ("a", "b")
WORDS = ("instance role policy bucket key request signed token region endpoint console permission "
         "denied throttled quota limit network subnet route gateway certificate rotation secret").split()


@dataclass(frozen=True)
class Profile:
    kills: int = 20
    seed: int = 20261206
    guides: int = 2
    articles: int = 52  # per guide: each version renders over 100 files, in worker processes
    sections: int = 4  # per article
    complete_every: int = 5  # a completed import after this many kills
    embed_every: int = 4  # every so many kills, one lands while sections are embedded
    finish_embedding: bool = False  # then embed every section (minutes on a busy machine)


def write_tree(root: Path, version: str, profile: Profile) -> Path:
    """Guides as authors write them. Version b drops every tenth article, adds others, and
    changes every section: its words beyond what is embedded, and one section's first words."""
    tree = root / version
    for g in range(profile.guides):
        folder = tree / f"guide-{g}"
        folder.mkdir(parents=True)
        (folder / "guide.toml").write_text(f'title = "Guide {g}"\nbase_url = "https://docs.example.com/{g}/"\n')
        slugs = [f"article-{n}" for n in range(profile.articles)]
        if version == "b":
            slugs = [s for n, s in enumerate(slugs) if n % 10] + [f"extra-{n}" for n in range(profile.articles // 10)]
        for slug in slugs:
            rng = random.Random(f"{profile.seed}/{g}/{slug}")  # the same words in both versions
            (folder / f"{slug}.md").write_text(_article(slug, version, profile.sections, rng))
    return tree


def _article(slug: str, version: str, sections: int, rng: random.Random) -> str:
    def words(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    parts = [f'# {slug.replace("-", " ").title()}<a name="{slug}"></a>\n\n{words(30)}\\.\n']
    for s in range(sections):
        lead = f"Version {version} " if s == 1 else ""
        parts.append(
            f'\n## Section {s} of {slug}<a name="{slug}-{s}"></a>\n\n{lead}{words(140)}\\.\n\n'
            f"+ {words(8)}\n+ {words(8)}\n\n```\naws s3 ls s3://bucket-{s}\n```\n\nEdition {version}\\.\n"
        )
    return "".join(parts)


class Database:
    """The import's own database, read with the plain driver (the suite's connection is the test database)."""

    def __init__(self, scratch: Path) -> None:
        self.vendor = connection.vendor
        if self.vendor == "sqlite":
            self.path = scratch / "kill.sqlite3"
            self.url = f"sqlite:///{self.path}"
            return
        params = settings.DATABASES["default"]
        self.name = f"{params['NAME']}_kill_{uuid.uuid4().hex[:8]}"
        self.server = {"host": params["HOST"] or "127.0.0.1", "port": params["PORT"] or 5432,
                       "user": params["USER"], "password": params["PASSWORD"] or None}
        password = f":{params['PASSWORD']}" if params["PASSWORD"] else ""
        self.url = f"postgres://{params['USER']}{password}@{self.server['host']}:{self.server['port']}/{self.name}"
        self._admin(f'CREATE DATABASE "{self.name}"')

    def _admin(self, sql: str, params: list | None = None) -> list[tuple]:
        import psycopg

        with psycopg.connect(dbname="postgres", autocommit=True, **self.server) as admin:
            cursor = admin.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def drop(self) -> None:
        if self.vendor == "postgresql":
            self._admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [self.name])
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}"')

    def sessions(self) -> int:
        """Connections to this database: the checks close theirs (0 on SQLite)."""
        if self.vendor == "sqlite":
            return 0
        return self._admin("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [self.name])[0][0]

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        if self.vendor == "sqlite":
            with contextlib.closing(sqlite3.connect(self.path)) as db, db:
                return db.execute(sql, params or ()).fetchall()
        import psycopg

        with psycopg.connect(dbname=self.name, autocommit=True, **self.server) as db:
            return db.execute(sql, params).fetchall()


def _digest(rows: list[tuple]) -> str:
    return hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()


SECTIONS_SQL = """
SELECT g.slug, a.slug, s.anchor, s.title, s.level, s.position, s.html, s.text, s.kind
FROM kb_section s JOIN kb_article a ON a.id = s.article_id JOIN kb_guide g ON g.id = a.guide_id
"""


def content(db: Database) -> str:
    """A digest of everything pages show, by stable keys (ids of new rows differ between runs)."""
    return _digest([
        *db.query("SELECT slug, title, base_url FROM kb_guide"),
        *db.query("SELECT g.slug, a.slug, a.title, a.content_hash, a.position, coalesce(p.slug, '') FROM kb_article a"
                  " JOIN kb_guide g ON g.id = a.guide_id LEFT JOIN kb_article p ON p.id = a.parent_id"),
        *db.query(SECTIONS_SQL),
        *db.query("SELECT a.slug, s.anchor, e.value, e.zone FROM kb_sectionentity e JOIN kb_section s"
                  " ON s.id = e.section_id JOIN kb_article a ON a.id = s.article_id"),
    ])


def index_problems(db: Database) -> list[str]:
    """How the full-text index differs from the sections (an empty list when it matches)."""
    sections = dict(db.query("SELECT s.id, a.content_hash FROM kb_section s JOIN kb_article a ON a.id = s.article_id"))
    if db.vendor == "sqlite":
        indexed = dict(db.query(f"SELECT rowid, hash FROM {sqlite.TABLE}"))
        # The indexed text itself, and FTS5's own check that its index matches that text.
        text = db.query(f"SELECT count(*) FROM {sqlite.TABLE} f JOIN kb_section s ON s.id = f.rowid"
                        " WHERE f.title IS NOT s.title OR f.body IS NOT s.text")[0][0]
        db.query(f"INSERT INTO {sqlite.TABLE}({sqlite.TABLE}) VALUES ('integrity-check')")
        built = db.query(f"SELECT signature FROM {sqlite.BUILT}")
        if not built or not built[0][0].endswith(" " + db.query(sqlite.INDEX_STATE_SQL)[0][0]):
            return ["posting lists not built from the index as it is"]
    else:
        indexed = dict(db.query(f"SELECT section_id, hash FROM {postgresql.TABLE}"))
        # The indexed document against the one the section's text makes now (cut into words as the engine does).
        texts = db.query("SELECT s.id, s.title, a.title, s.text FROM kb_section s JOIN kb_article a ON a.id = s.article_id")
        columns = [[row[0] for row in texts], *([postgresql.words_only(row[i]) for row in texts] for i in (1, 2, 3))]
        text = db.query(
            f"SELECT count(*) FROM {postgresql.TABLE} x JOIN unnest(%s::bigint[], %s::text[], %s::text[], %s::text[])"
            " AS s(id, title, context, body) ON s.id = x.section_id WHERE x.document IS DISTINCT FROM"
            " setweight(to_tsvector('english', s.title), 'A') || setweight(to_tsvector('english', s.context), 'B')"
            " || setweight(to_tsvector('english', s.body), 'D')", columns)[0][0]
        posted = {row[0] for row in db.query(f"SELECT DISTINCT section_id FROM {postgresql.POSTINGS}")}
        if posted != set(indexed):
            return [f"postings for {len(posted - set(indexed))} unindexed and without {len(set(indexed) - posted)} indexed sections"]
        listed = db.query(
            f"SELECT count(*) FROM ({postgresql.LIST_ROWS}) p FULL JOIN {postgresql.LISTS} l USING (lexeme)"
            " WHERE (p.sections, p.ids, p.weights) IS DISTINCT FROM (l.sections, l.ids, l.weights)")[0][0]
        if listed:
            return [f"{listed} lexemes whose posting list is not their postings'"]
    problems = []
    if indexed != sections:
        problems.append(f"{len(set(sections) - set(indexed))} sections unindexed, "
                        f"{len(set(indexed) - set(sections))} indexed rows without a section, "
                        f"{sum(indexed[k] != v for k, v in sections.items() if k in indexed)} stale")
    if text:
        problems.append(f"{text} indexed rows whose text is not their section's")
    return problems


def _orphans(group: int) -> list[str]:
    """Live processes (not zombies) left in a process group."""
    left = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            left.append(stat.parent.name)
    return left


@dataclass
class Importer:
    """Runs `import_kb` as a subprocess, to completion or killed after a delay."""

    db: Database
    scratch: Path
    started: list[int] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {**os.environ, "DATABASE_URL": self.db.url, "KB_CACHE_DIR": str(self.scratch / "cache"),
                "DJANGO_SETTINGS_MODULE": "portal.settings", "PYTHONUNBUFFERED": "1"}

    def manage(self, *args: str) -> subprocess.Popen:
        with (self.scratch / "stderr").open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=self.env(),
                stdout=subprocess.PIPE, stderr=stderr, start_new_session=True, text=True,
            )
        self.started.append(process.pid)
        return process

    def complete(self, *args: str) -> float:
        started = time.perf_counter()
        process = self.manage(*args)
        process.communicate(timeout=300)
        assert process.returncode == 0, (self.scratch / "stderr").read_text()
        return time.perf_counter() - started

    def kill_after(self, delay: float, *args: str, committed: bool = False) -> bool:
        """Start, kill after `delay` seconds (counted from the commit, which the command's
        summary line follows, with `committed`); False when the run had already finished."""
        process = self.manage("import_kb", *args)
        if committed:
            process.stdout.readline()
        try:
            process.communicate(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.communicate()
            return True
        assert process.returncode == 0, (self.scratch / "stderr").read_text()
        return False

    def leftovers(self, pid: int, grace: float = 5.0) -> tuple[list[str], int]:
        """Processes of a killed run, and database sessions, still there after `grace` seconds."""
        deadline = time.monotonic() + grace
        while (_orphans(pid) or self.db.sessions()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return _orphans(pid), self.db.sessions()

    def stop_all(self) -> None:
        for pid in self.started:
            for orphan in _orphans(pid):
                os.kill(int(orphan), signal.SIGKILL)


@contextlib.contextmanager
def migrated(scratch: Path) -> Iterator[Importer]:
    """An Importer on a new, migrated database, dropped afterwards with any process left."""
    db = Database(scratch)
    runner = Importer(db, scratch)
    try:
        runner.complete("migrate", "--noinput", "-v0")
        yield runner
    finally:
        runner.stop_all()
        db.drop()


@pytest.fixture
def importer(tmp_path: Path) -> Iterator[Importer]:
    with migrated(tmp_path) as runner:
        yield runner


def kill_repeatedly(runner: Importer, profile: Profile, log=print) -> int:
    """The whole check; returns how many kills landed after the text import had committed."""
    rng = random.Random(profile.seed)
    trees = {version: write_tree(runner.scratch / "content", version, profile) for version in VERSIONS}
    assert min(len(list(tree.rglob("*.md"))) for tree in trees.values()) >= PARALLEL_THRESHOLD  # workers are killed too
    digests, durations = {}, {}
    for version in ("b", "a"):  # each version's content, and how long an import of the whole change takes
        durations[version] = runner.complete("import_kb", str(trees[version]), "--no-embed")
        digests[version] = content(runner.db)
        assert not index_problems(runner.db)
    embedding = semantic.available()
    log(f"{runner.db.vendor}: whole imports take {durations['a']:.1f} and {durations['b']:.1f} s;"
        f" semantic embedding {'on' if embedding else 'off'}")
    served, kills, committed = "a", 0, 0
    while kills < profile.kills:
        target = "b" if served == "a" else "a"
        embed = embedding and kills % profile.embed_every == profile.embed_every - 1
        # Killed while sections are embedded (the model loads first), or anywhere in the text import.
        delay = rng.uniform(0.0, durations[target] / (2 if embed else 1))
        args = [str(trees[target])] + ([] if embed else ["--no-embed"])
        killed = runner.kill_after(delay, *args, committed=embed)
        pid = runner.started[-1]
        now = content(runner.db)
        assert now in (digests[served], digests[target]), f"kill {kills + 1} after {delay:.2f} s left mixed content"
        assert not index_problems(runner.db), f"kill {kills + 1} after {delay:.2f} s: {index_problems(runner.db)}"
        if not killed:
            assert now == digests[target]
            served = target
            continue
        kills += 1
        committed += now == digests[target]
        processes, sessions = runner.leftovers(pid)
        assert not processes, f"kill {kills} after {delay:.2f} s left processes {processes}"
        assert not sessions, f"kill {kills} after {delay:.2f} s left {sessions} database session(s)"
        served = target if now == digests[target] else served
        if kills % profile.complete_every == 0 or kills == profile.kills:
            target = "b" if served == "a" else "a"
            runner.complete("import_kb", str(trees[target]), "--no-embed")
            assert content(runner.db) == digests[target] and not index_problems(runner.db)
            served = target
    if embedding and profile.finish_embedding:  # embedding runs killed half-way are finished by the next
        runner.complete("import_kb", str(trees[served]))
        sections, embedded = runner.db.query("SELECT (SELECT count(*) FROM kb_section),"
                                             " (SELECT count(*) FROM kb_sectionembedding)")[0]
        assert embedded == sections
    log(f"{kills} kills, {committed} after the commit")
    return committed


@pytest.mark.kills
def test_an_import_killed_at_any_point_leaves_one_whole_version_and_the_next_completes(importer):
    kill_repeatedly(importer, Profile())
