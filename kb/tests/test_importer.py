"""The import as a sync (kb/importer/sync.py, sources.py) and `manage.py import_kb`.

Guides are tiny folders written to tmp_path and loaded with the real importer: the table of
contents, add/update/unchanged/remove with ids kept, guides left alone, atomic failure,
warnings with file and line, and the command's output.
"""

import contextlib
import os
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kb.importer import ImportFailed, import_content, render, sources, sync
from kb.importer.sync import PARALLEL_THRESHOLD
from kb.models import Article, Guide, Section

BASE_URL = "https://docs.example.com/guide/"

INDEX = """\
# Guide From Index

## Contents
+ [Intro](intro.md)
   + [Setup](setup.md)
      + [Details](details.md)
   + [Published elsewhere](elsewhere.md)
+ [Troubleshooting](troubleshoot.md)
"""

LINKS = """\
# Links<a name="links"></a>

See [here](#nowhere)\\.

## Part<a name="part"></a>

See [there](b.md#missing) and [fine](b.md#b)\\.

Again [here](#nowhere) and [escaped](#under\\_score)\\.
"""

TWICE = """\
# Twice<a name="twice"></a>

## Description<a name="part"></a>

Text\\.

## Cause<a name="part"></a>
"""


def page(slug: str, *parts: str) -> str:
    """An article titled after its slug, with one anchored section per part."""
    sections = "".join(f'\n## {part.title()}<a name="{slug}-{part}"></a>\n\n{part} text\\.\n' for part in parts)
    return f'# {slug.title()}<a name="{slug}"></a>\n\nAbout {slug}\\.\n{sections}'


def rows(*guides: str) -> dict[str, list[dict]]:
    """Every stored row of the given guides (all guides when none is named), to compare runs."""
    guides = Guide.objects.filter(slug__in=guides) if guides else Guide.objects.all()
    return {
        "guides": list(guides.order_by("pk").values()),
        "articles": list(Article.objects.filter(guide__in=guides).order_by("pk").values()),
        "sections": list(Section.objects.filter(article__guide__in=guides).order_by("pk").values()),
    }


def run_command(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_kb", *map(str, args), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# The table of contents


def test_index_gives_the_guide_title_and_the_contents_tree(db, write_guide):
    slugs = ["intro", "setup", "details", "troubleshoot", "unlisted"]
    folder = write_guide("g", {"index.md": INDEX, **{f"{slug}.md": page(slug) for slug in slugs}})
    (folder / "guide.toml").write_text(f'base_url = "{BASE_URL}"\n')  # no title: the H1 gives it
    import_content([folder])

    guide = Guide.objects.get(slug="g")
    assert guide.title == "Guide From Index"
    assert list(Article.objects.order_by("position").values_list("slug", "position", "parent__slug")) == [
        ("intro", 0, None), ("setup", 1, "intro"), ("details", 2, "setup"),
        ("troubleshoot", 3, None), ("unlisted", 4, None),
    ]
    elsewhere = {"title": "Published elsewhere", "slug": "", "href": f"{BASE_URL}elsewhere.html", "children": []}
    details = {"title": "Details", "slug": "details", "href": "/kb/g/details/", "children": []}
    assert guide.toc == [
        {"title": "Intro", "slug": "intro", "href": "/kb/g/intro/", "children": [
            {"title": "Setup", "slug": "setup", "href": "/kb/g/setup/", "children": [details]}, elsewhere,
        ]},
        {"title": "Troubleshooting", "slug": "troubleshoot", "href": "/kb/g/troubleshoot/", "children": []},
    ]


def test_guide_toml_title_wins_and_without_index_articles_go_by_name(db, write_guide):
    import_content([write_guide("g", {"b.md": page("b"), "a.md": page("a")}, title="From TOML")])
    assert Guide.objects.get().title == "From TOML"
    assert list(Article.objects.values_list("slug", "position", "parent")) == [("a", 0, None), ("b", 1, None)]


def test_an_index_without_a_title_heading_still_gives_the_contents(db, write_guide):
    folder = write_guide("g", {"index.md": "+ [B](b.md)\n+ [A](a.md)\n", "a.md": page("a"), "b.md": page("b")})
    (folder / "guide.toml").write_text("")
    import_content([folder])
    assert Guide.objects.get().title == "g"
    assert list(Article.objects.order_by("position").values_list("slug", flat=True)) == ["b", "a"]


def test_a_new_contents_moves_articles_in_place(db, write_guide):
    folder = write_guide("g", {"index.md": INDEX, **{f"{s}.md": page(s) for s in ("intro", "setup", "details")}})
    import_content([folder])
    ids = dict(Article.objects.values_list("slug", "pk"))
    (folder / "index.md").write_text("+ [Details](details.md)\n   + [Intro](intro.md)\n+ [Setup](setup.md)\n")
    report = import_content([folder])
    assert report.unchanged == ["g/details", "g/intro", "g/setup"]
    assert list(Article.objects.order_by("position").values_list("slug", "pk", "parent__slug")) == [
        ("details", ids["details"], None), ("intro", ids["intro"], "details"), ("setup", ids["setup"], None)
    ]


# Sync


def test_reimport_adds_updates_removes_and_keeps_ids(db, write_guide):
    folder = write_guide("g", {"a.md": page("a", "one"), "b.md": page("b", "keep", "edit", "drop"), "c.md": page("c")})
    import_content([folder])
    articles = dict(Article.objects.values_list("slug", "pk"))
    sections = dict(Section.objects.values_list("anchor", "pk"))

    (folder / "b.md").write_text(page("b", "keep", "edit", "new").replace("edit text", "edited text"))
    (folder / "c.md").unlink()
    (folder / "d.md").write_text(page("d"))
    report = import_content([folder])

    assert (report.added, report.updated, report.unchanged, report.removed) == (["g/d"], ["g/b"], ["g/a"], ["g/c"])
    now_articles = dict(Article.objects.values_list("slug", "pk"))
    assert {slug: now_articles[slug] for slug in ("a", "b")} == {slug: articles[slug] for slug in ("a", "b")}
    assert set(now_articles) == {"a", "b", "d"}
    now_sections = dict(Section.objects.values_list("anchor", "pk"))
    kept = ["a", "a-one", "b", "b-keep", "b-edit"]
    assert {anchor: now_sections[anchor] for anchor in kept} == {anchor: sections[anchor] for anchor in kept}
    assert "b-drop" not in now_sections and "c" not in now_sections
    assert "b-new" in now_sections and "d" in now_sections
    assert "edited text" in Section.objects.get(anchor="b-edit").text


def test_an_unchanged_reimport_writes_nothing(db, write_guide):
    # TWICE repeats an anchor: it is rendered again for its warning, but still not written.
    folder = write_guide("g", {"index.md": INDEX, "intro.md": page("intro", "one"), "twice.md": TWICE})
    import_content([folder])
    before = rows()
    with CaptureQueriesContext(connection) as queries:
        report = import_content([folder])
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert writes == []
    assert report.unchanged == ["g/intro", "g/twice"] and not report.changed
    assert rows() == before  # imported_at included


def test_importing_one_guide_leaves_the_others_untouched(db, write_guide):
    one = write_guide("one", {"a.md": page("a")})
    two = write_guide("two", {"a.md": page("a"), "b.md": page("b")})
    import_content([one, two])
    before = rows("two")
    (one / "a.md").write_text(page("a", "more"))
    (two / "b.md").unlink()  # not applied: guide "two" is not being imported
    report = import_content([one])
    assert report.guides == ["one"] and report.updated == ["one/a"] and report.removed == []
    assert rows("two") == before


def test_a_new_article_rerenders_links_to_it_without_updating_the_linking_one(db, write_guide):
    folder = write_guide("g", {"a.md": '# A<a name="a"></a>\n\nSee [B](b.md#b-part)\\.\n'})
    import_content([folder])
    first = Article.objects.get(slug="a")
    assert f'href="{BASE_URL}b.html#b-part"' in first.sections.get().html

    (folder / "b.md").write_text(page("b", "part"))
    report = import_content([folder])
    assert (report.added, report.unchanged) == (["g/b"], ["g/a"])
    again = Article.objects.get(slug="a")
    assert (again.pk, again.imported_at) == (first.pk, first.imported_at)
    assert 'href="/kb/g/b/#b-part"' in again.sections.get().html


def test_hidden_files_are_not_articles(db, write_guide):
    folder = write_guide("g", {"a.md": page("a"), ".draft.md": "not a title"})
    (folder / "._a.md").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X\xff\xfe")  # an AppleDouble file
    report = import_content([folder])
    assert report.added == ["g/a"]


def test_a_folder_of_guides_imports_each_and_its_readme_is_no_article(db, write_guide):
    write_guide("one", {"a.md": page("a")})
    folder = write_guide("two", {"b.md": page("b")})
    (folder.parent / "README.md").write_text("# About these guides\n")
    report = import_content([folder.parent])
    assert report.guides == ["one", "two"]
    assert sorted(Article.objects.values_list("guide__slug", "slug")) == [("one", "a"), ("two", "b")]


def test_no_path_means_kb_content_dir(db, write_guide, settings):
    settings.KB_CONTENT_DIR = write_guide("g", {"a.md": page("a")}).parent
    assert import_content().added == ["g/a"]


def test_many_files_render_in_worker_processes_and_errors_still_name_the_file(db, write_guide):
    files = {f"a{n:03}.md": page(f"a{n:03}", "part") for n in range(PARALLEL_THRESHOLD)}
    folder = write_guide("g", {**files, "bad.md": "No title here\\.\n"})
    with pytest.raises(ImportFailed) as failure:
        import_content([folder])
    assert failure.value.errors == [f"{folder / 'bad.md'}:1: article has no '# Title' heading before its first section"]
    assert not Guide.objects.exists()

    (folder / "bad.md").unlink()
    progress = []
    import_content([folder], progress=lambda done, total: progress.append((done, total)))
    assert progress[-1] == (PARALLEL_THRESHOLD, PARALLEL_THRESHOLD)
    assert Section.objects.filter(anchor__endswith="-part").count() == PARALLEL_THRESHOLD


def _children_files() -> set[str]:
    """What the direct children of this process have open (Linux /proc)."""
    children = [int(pid) for tasks in Path("/proc/self/task").glob("*/children") for pid in tasks.read_text().split()]
    opened = set()
    for pid in children:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            with contextlib.suppress(OSError):  # the worker or the descriptor ended meanwhile
                opened.add(os.readlink(fd))
    return opened


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the workers' open files from Linux /proc")
def test_render_workers_are_fresh_processes_not_forks_of_the_importer(db, write_guide, tmp_path):
    """A forked worker starts as a copy of the importing process: its threads' held locks
    and its open files and database connection. A file the importer holds open stands for
    them: the workers must not have it."""
    folder = write_guide("g", {f"a{n:03}.md": page(f"a{n:03}") for n in range(PARALLEL_THRESHOLD)})
    held = tmp_path / "held-by-the-importer"
    seen: set[str] = set()
    with held.open("w"):
        import_content([folder], progress=lambda done, total: seen.update(_children_files()))
    assert seen, "no worker process was seen"
    assert str(held) not in seen


# Atomic failure

BAD_FILES = {
    "invalid UTF-8": ("bad.md", b'# Bad<a name="bad"></a>\n\nCaf\xe9\n', ":3: not valid UTF-8"),
    "no title heading": ("bad.md", 'Intro\\.\n\n## Part<a name="part"></a>\n', ":1: article has no '# Title' heading"),
    "invalid guide.toml": ("guide.toml", 'title = "unterminated\n', ":1: invalid TOML: Illegal character"),
    "heading too long": ("bad.md", '# Bad<a name="bad"></a>\n\n## ' + "x" * 501 + '<a name="long"></a>\n',
                         ":3: heading is longer than 500 characters"),
    "anchor too long": ("bad.md", '# Bad<a name="bad"></a>\n\n## Long<a name="' + "a" * 201 + '"></a>\n',
                        ":3: anchor is longer than 200 characters"),
    "file name too long": ("b" * 201 + ".md", '# Bad<a name="bad"></a>\n', ": file name is longer than 200"),
    "guide title too long": ("guide.toml", 'title = "' + "t" * 301 + '"\n', ": the guide's title is longer than 300"),
    "activity key not a slug": ("guide.toml", '[[activities]]\nkey = "Sign In"\nlabel = "signing in"\n',
                                ":1: activity 1: key must be a slug"),
    "activity key repeated": ("guide.toml", '[[activities]]\nkey = "a"\nlabel = "A"\n\n[[activities]]\nkey = "a"\n'
                              'label = "B"\n', ":5: activity 2: key 'a' is declared twice"),
    "activity without a label": ("guide.toml", '[[activities]]\nkey = "a"\nwords = "x"\n',
                                 ":1: activity 1: label must be a string of 1 to 100 characters"),
    "activity label too long": ("guide.toml", '[[activities]]\nkey = "a"\nlabel = "' + "l" * 101 + '"\n',
                                ":1: activity 1: label must be a string of 1 to 100 characters"),
    "activity words not a string": ("guide.toml", '[[activities]]\nkey = "a"\nlabel = "A"\nwords = ["x"]\n',
                                    ":1: activity 1: words must be a string"),
    "activity field misspelt": ("guide.toml", '[[activities]]\nkey = "a"\nlabel = "A"\nword = "x"\n',
                                ":1: activity 1: unknown field 'word'"),
    "activities not tables": ("guide.toml", 'activities = "console"\n', ": activities must be an array of tables"),
}


@pytest.mark.parametrize(
    ("limit", "field"),
    [(render.MAX_ANCHOR, Section._meta.get_field("anchor")), (render.MAX_TITLE, Section._meta.get_field("title")),
     (sources.MAX_SLUG, Article._meta.get_field("slug")), (sources.MAX_SLUG, Guide._meta.get_field("slug")),
     (sync.MAX_GUIDE_TITLE, Guide._meta.get_field("title"))],
    ids=["anchor", "heading", "file name", "folder name", "guide title"],
)
def test_length_checks_are_the_columns_sizes(limit, field):
    """The importer refuses what its columns cannot hold, as a content error naming the line."""
    assert limit == field.max_length


@pytest.mark.parametrize("kind", BAD_FILES)
def test_a_bad_file_aborts_the_run_and_the_database_is_as_before(db, write_guide, kind):
    folder = write_guide("g", {"a.md": page("a"), "b.md": page("b")})
    import_content([folder])
    before = rows()
    (folder / "a.md").write_text(page("a", "changed"))
    name, content, message = BAD_FILES[kind]
    (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())

    with pytest.raises(ImportFailed) as failure:
        import_content([folder])
    (error,) = failure.value.errors
    assert error.startswith(f"{folder / name}{message}")
    assert rows() == before


def test_one_run_names_every_bad_file(db, write_guide):
    one = write_guide("one", {"a.md": page("a")})
    (one / "guide.toml").write_text("title = 3\n")
    two = write_guide("two", {"good.md": page("good"), "notitle.md": "Just text\\.\n"})
    (two / "latin1.md").write_bytes(b"# Caf\xe9\n")
    with pytest.raises(ImportFailed) as failure:
        import_content([one, two])
    assert failure.value.errors == [
        f"{one / 'guide.toml'}: title must be a string",
        f"{two / 'latin1.md'}:1: not valid UTF-8 (invalid continuation byte)",
        f"{two / 'notitle.md'}:1: article has no '# Title' heading before its first section",
    ]


# The guide's own activities (guide.toml's [[activities]])

ACTIVITIES = """
[[activities]]
key = "console"
label = "signing in to  the console"
words = "Sign console password"

[[activities]]
key = "mfa"
label = "signing in with an MFA device"
words = "mfa device"
"""


def test_a_guides_activities_are_checked_and_stored_and_an_unchanged_reimport_writes_nothing(db, write_guide):
    folder = write_guide("g", {"a.md": page("a")})
    with (folder / "guide.toml").open("a") as toml:
        toml.write(ACTIVITIES)
    import_content([folder])
    assert Guide.objects.get().activities == [  # labels' spaces and words' case normalised
        {"key": "console", "label": "signing in to the console", "words": "sign console password"},
        {"key": "mfa", "label": "signing in with an MFA device", "words": "mfa device"},
    ]
    before = rows()
    with CaptureQueriesContext(connection) as queries:
        import_content([folder])
    assert not [q for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert rows() == before


def test_a_reimport_keeps_a_guides_activities_in_sync(db, write_guide):
    folder = write_guide("g", {"a.md": page("a")})
    toml = folder / "guide.toml"
    original = toml.read_text()
    toml.write_text(original + ACTIVITIES)
    import_content([folder])
    article = Article.objects.get()

    toml.write_text(original + '[[activities]]\nkey = "console"\nlabel = "signing in to the console"\n'
                    'words = "console password"\n')  # one changed, one removed
    import_content([folder])
    assert Guide.objects.get().activities == [
        {"key": "console", "label": "signing in to the console", "words": "console password"},
    ]
    toml.write_text(original)  # none declared any more
    report = import_content([folder])
    assert Guide.objects.get().activities == []
    assert report.unchanged == ["g/a"] and Article.objects.get().imported_at == article.imported_at


def test_activities_without_tables_give_no_line(db, write_guide):
    folder = write_guide("g", {"a.md": page("a")})
    (folder / "guide.toml").write_text('activities = [{key = "a", label = "A"}, {key = "B", label = "B"}]\n')
    with pytest.raises(ImportFailed) as failure:
        import_content([folder])
    assert failure.value.errors == [
        f"{folder / 'guide.toml'}: activity 2: key must be a slug of at most 50 lower-case letters, digits and "
        "hyphens, got 'B'"
    ]
    assert not Guide.objects.exists()


# Warnings


def test_broken_links_are_warnings_with_file_and_line(db, write_guide):
    folder = write_guide("g", {"a.md": LINKS, "b.md": page("b")})
    report = import_content([folder])
    path = folder / "a.md"
    assert report.warnings == [
        f"{path}:3: broken link to #nowhere: no such anchor",
        f"{path}:7: broken link to b.md#missing: no such anchor",
        f"{path}:9: broken link to #nowhere: no such anchor",
        f"{path}:9: broken link to #under_score: no such anchor",
    ]


def test_a_link_to_a_missing_article_is_a_warning_when_the_guide_is_published_nowhere(db, write_guide):
    folder = write_guide("g", {"a.md": '# A<a name="a"></a>\n\nSee [it](nowhere.md#part)\\.\n'})
    (folder / "guide.toml").write_text('title = "Unpublished"\n')
    report = import_content([folder])
    assert report.warnings == [f"{folder / 'a.md'}:3: broken link to nowhere.md: no such article in the guide"]


def test_a_repeated_heading_anchor_is_a_warning_at_its_line_on_every_run(db, write_guide):
    folder = write_guide("g", {"twice.md": TWICE, "links.md": LINKS.replace("b.md", "twice.md")})
    first = import_content([folder])
    expected = f"{folder / 'twice.md'}:7: anchor 'part' is already used above; this one is #part-2"
    assert expected in first.warnings
    assert import_content([folder]).warnings == first.warnings



def test_a_heading_without_text_is_listed_by_its_first_words_with_a_warning_on_every_run(db, write_guide):
    source = ('# Live patching<a name="live"></a>\n\n### <a name="policy"></a>\n\n'
              "**Policy requirements** To download packages, EC2 needs access to these buckets\\.\n")
    folder = write_guide("g", {"live.md": source})
    first = import_content([folder])
    section = Section.objects.get(anchor="policy")
    assert section.title == "Policy requirements To download packages, EC2 needs access…"
    expected = f"{folder / 'live.md'}:3: heading has no text: listed by its first words, or its anchor"
    assert expected in first.warnings
    assert import_content([folder]).warnings == first.warnings
    (folder / "live.md").write_bytes(source.replace("\n", "\r\n").encode())  # the same, saved on Windows
    assert expected in import_content([folder]).warnings
    assert expected in import_content([folder]).warnings


def test_a_link_to_the_id_a_repeated_anchor_was_given_is_not_broken(db, write_guide, client):
    source = '# Links<a name="links"></a>\n\nSee [the cause](twice.md#part-2) and [none](twice.md#part-3)\\.\n'
    folder = write_guide("g", {"twice.md": TWICE, "links.md": source})
    report = import_content([folder])
    broken = [w for w in report.warnings if "broken link" in w]
    assert broken == [f"{folder / 'links.md'}:3: broken link to twice.md#part-3: no such anchor"]
    assert import_content([folder]).warnings == report.warnings  # unchanged articles are checked the same way
    page = client.get("/kb/g/twice/").content.decode()
    assert 'id="part-2"' in page


# The command


def test_command_prints_the_summary_and_warnings(db, write_guide):
    folder = write_guide("g", {"a.md": LINKS, "b.md": page("b")})
    out, err = run_command(folder)
    summary, embedded, query_model = out.splitlines()
    assert summary == "1 guide(s): 2 added, 0 updated, 0 unchanged, 0 removed, 4 warning(s)"
    assert embedded == "3 of 3 section(s) embedded"
    assert query_model.startswith("query model: ") and Path(query_model.removeprefix("query model: ")).is_file()
    assert f"warning: {folder / 'a.md'}:3: broken link to #nowhere: no such anchor\n" in err
    assert Article.objects.count() == 2


def test_command_check_reports_without_writing(db, write_guide):
    folder = write_guide("g", {"a.md": page("a"), "b.md": page("b")})
    out, _ = run_command(folder, "--check")
    assert out == (
        "check: 1 guide(s): 2 would be added, 0 would be updated, 0 unchanged, 0 would be removed, 0 warning(s)\n"
    )
    assert not Guide.objects.exists()

    run_command(folder)
    before = rows()
    (folder / "a.md").write_text(page("a", "changed"))
    out, _ = run_command(folder, "--check")
    assert "1 would be updated, 1 unchanged" in out
    assert rows() == before


def test_a_failing_command_names_the_files_and_writes_nothing(db, write_guide):
    folder = write_guide("g", {"a.md": page("a"), "notitle.md": "Just text\\.\n"})
    (folder / "latin1.md").write_bytes(b"# Caf\xe9\n")
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was written: 2 bad file"):
        call_command("import_kb", str(folder), stdout=StringIO(), stderr=err)
    assert err.getvalue().splitlines() == [
        f"error: {folder / 'latin1.md'}:1: not valid UTF-8 (invalid continuation byte)",
        f"error: {folder / 'notitle.md'}:1: article has no '# Title' heading before its first section",
    ]
    assert not Guide.objects.exists()
