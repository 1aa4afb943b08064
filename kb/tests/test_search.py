"""Section search as people and tools meet it: the results page, the JSON API, suggestions,
the search log and the opened-result beacon, over tiny guides loaded with the real importer.

The whole module runs unchanged on both engines:
    .venv/bin/python -m pytest kb/tests/test_search.py                      # SQLite FTS5
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal .venv/bin/python -m pytest kb/tests/test_search.py
"""

import html
import re
from pathlib import Path

import numpy as np
import pytest
from bs4 import BeautifulSoup
from django.conf import settings
from django.core import signing
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from kb import cache as kb_cache
from kb.importer import import_content
from kb.models import SearchLog, Section
from kb.search import ranking, search
from kb.search.engines import ENGINES, base, get_engine, postgresql, sqlite
from kb.search.snippets import highlight
from kb.tests.test_pages import assert_no_inline_code

TROUBLESHOOT = """\
# Troubleshooting access<a name="troubleshoot_access"></a>

Use this page when AWS refuses a request\\.

## I get "access denied" when I call a service<a name="access-denied"></a>

**Error:** An error occurred \\(AccessDenied\\) when calling the ListBuckets operation: Access Denied

Check that an identity\\-based policy allows the action on the resource\\.

## My temporary credentials stopped working<a name="expired-token"></a>

If a command fails like this, request new temporary security credentials:

```
An error occurred (ExpiredToken) when calling the GetObject operation: The provided token has expired.
```

## The signature does not match<a name="signature"></a>

SignatureDoesNotMatch means that the secret access key or the signing method is wrong\\.
"""

# Hostile content: raw HTML in markdown, and HTML-looking text inside code.
MARKUP = """\
# Markup in content<a name="markup"></a>

## Scripts in pages<a name="scripts"></a>

<script>alert('content')</script>

An image <img src="x" onerror="alert('img')"> must not run when an alert is shown\\.

Inline `<script>alert(3)</script>` and a code block:

```
&lt;b&gt;bold&lt;/b&gt; <b>alert</b> <script>alert(4)</script>
```
"""

ROTATE = """\
# Rotating credentials<a name="rotating"></a>

## Rotate credentials every ninety days<a name="rotate"></a>

Replace long\\-term credentials on a schedule\\.
"""

TROUBLESHOOT_ARTICLE = "/kb/demo/troubleshoot_access/"
SNIPPET_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
RESULT_KEYS = {"guide", "article", "anchor", "title", "article_title", "url", "snippet", "score"}


@pytest.fixture
def load(db):
    """Import guide folders, as a deployment does (the importer also syncs the search index)."""

    def load(*folders: Path) -> None:
        import_content(list(folders))

    return load


@pytest.fixture
def filler(write_guide) -> Path:
    """Ninety unrelated sections, so that words of the test guides are about as rare as in a real corpus."""
    files = {
        f"notes-{n}.md": f"# Notes {n}<a name=\"notes-{n}\"></a>\n\n"
        + "".join(f"## Garden {n}.{k}<a name=\"garden-{k}\"></a>\n\nTomatoes, basil and rain.\n\n" for k in range(30))
        for n in range(3)
    }
    return write_guide("filler", files, title="Filler Guide")


@pytest.fixture
def guides(load, write_guide, filler):
    load(
        write_guide("demo", {"troubleshoot_access.md": TROUBLESHOOT, "markup.md": MARKUP}, title="Demo Guide"),
        write_guide("other", {"rotating.md": ROTATE}, title="Other Guide"),
        filler,
    )


@pytest.fixture
def many(load, write_guide, filler):
    """Four articles of four sections, all about quotas: 12 results shown, one more in each article."""
    files = {
        f"limits-{n}.md": f"# Service limits {n}<a name=\"limits-{n}\"></a>\n\n"
        + "".join(f"## Part {k} of {n}<a name=\"part-{k}\"></a>\n\nThe quota for part {k} of {n}\\.\n\n" for k in range(4))
        for n in range(4)
    }
    load(write_guide("many", files, title="Many Guide"), filler)


def page(client, params, status=200) -> BeautifulSoup:
    response = client.get("/search/", params)
    assert response.status_code == status, params
    return BeautifulSoup(response.content, "html.parser")


def api(client, params, status=200) -> dict:
    response = client.get("/api/v1/search", params)
    assert response.status_code == status, params
    assert response["Content-Type"] == "application/json"
    return response.json()


def result_links(soup: BeautifulSoup) -> list[str]:
    return [a["href"] for a in soup.select(".result-title a")]


def anchors(client, params) -> list[str]:
    return [r["anchor"] for r in api(client, params)["results"]]


# Engines


def test_engine_is_the_one_for_the_connection_and_indexes_every_section(guides):
    engine = get_engine()
    assert engine.vendor == connection.vendor
    assert type(engine) is ENGINES[connection.vendor]
    assert engine.document_count() == Section.objects.count()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's posting lists")
def test_posting_lists_are_vacuumed_once_an_import_commits(transactional_db, write_guide):
    """The posting lists are replaced whole at each import: until VACUUM, lookups step over their old versions.

    VACUUM fails inside a transaction (and robust on_commit would only log it), so a
    vacuum counted after the import proves it ran once the import had committed (counted
    at once from PostgreSQL 15, which keeps statistics in shared memory).
    """

    def vacuums() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = %s", [postgresql.LISTS])
            row = cursor.fetchone()
        return row[0] if row else 0

    before = vacuums()
    import_content([write_guide("demo", {"troubleshoot_access.md": TROUBLESHOOT})])
    try:
        assert vacuums() > before
    finally:  # committed, and not in a model's table, which the test's teardown would empty
        get_engine().delete(list(get_engine().indexed_hashes()))
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {postgresql.LISTS}")


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's FTS5 index")
def test_an_import_leaves_the_full_text_index_merged(load, write_guide):
    """Each import that changes rows adds segments (deleted rows stay in the older ones until a
    merge) that every query reads: the engine merges them once the rows are written."""

    def segments() -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(DISTINCT segid) FROM {sqlite.TABLE}_idx")
            return cursor.fetchone()[0]

    folder = write_guide("demo", {"troubleshoot_access.md": TROUBLESHOOT, "markup.md": MARKUP})
    load(folder)
    (folder / "troubleshoot_access.md").write_text(TROUBLESHOOT.replace("ListBuckets", "DescribeTable"))
    load(folder)

    assert segments() == 1


def test_index_follows_re_imports(load, write_guide, client):
    folder = write_guide("demo", {"troubleshoot_access.md": TROUBLESHOOT, "markup.md": MARKUP})
    load(folder)
    assert anchors(client, {"q": "ListBuckets"})[0] == "access-denied"  # ranked, and that ranking cached
    (folder / "troubleshoot_access.md").write_text(TROUBLESHOOT.replace("ListBuckets", "DescribeTable"))
    (folder / "markup.md").unlink()
    load(folder)

    assert anchors(client, {"q": "DescribeTable"})[0] == "access-denied"
    assert anchors(client, {"q": "ListBuckets"}) == []
    assert anchors(client, {"q": "scriptable onerror image"}) == [], "removed article still indexed"
    assert get_engine().document_count() == Section.objects.count()


def test_the_same_error_pasted_with_other_ids_is_ranked_once(guides, monkeypatch):
    engine_type = type(get_engine())
    calls = []
    original = engine_type.search

    def counted(self, *args, **kwargs):
        calls.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(engine_type, "search", counted)
    first = search("An error occurred (ExpiredToken) when calling the GetObject operation. Request id 4F2A9C1B7D3E5A60")
    again = search("An error occurred (ExpiredToken) when calling the GetObject operation. Request id 0B8E2D4C6A1F3957")
    assert len(calls) == 1
    assert [r.section.anchor for r in again.results] == [r.section.anchor for r in first.results]
    assert first.results[0].section.anchor == "expired-token"

    # Another worker loads the same weights: it finds the ranking in the shared cache.
    with ranking.using(ranking.Ranker.load(ranking.WEIGHTS_FILE)):
        search("An error occurred (ExpiredToken) when calling the GetObject operation. Request id 9C1B7D3E5A604F2A")
    assert len(calls) == 1

    monkeypatch.setattr(kb_cache, "release", lambda: "the next release")  # a deploy may rank differently
    search("An error occurred (ExpiredToken) when calling the GetObject operation.")
    assert len(calls) == 2


# Finding sections from pasted errors


@pytest.mark.parametrize(
    ("paste", "anchor"),
    [
        ("An error occurred (AccessDenied) when calling the ListBuckets operation: Access Denied "
         "(Request ID: 4442587FB7D0A2F9, host id pZxj0m5nXg2i4bBk8c/Yh1+YqF3aLpQm9eW6tVuR0sE=)", "access-denied"),
        ("Traceback (most recent call last):\n  File \"sync.py\", line 12, in <module>\n"
         "botocore.exceptions.ClientError: An error occurred (ExpiredToken) when calling the GetObject operation: "
         "The provided token has expired.", "expired-token"),
        ("<Error><Code>SignatureDoesNotMatch</Code><RequestId>5F1C8A2E3B4D4C6E</RequestId></Error>", "signature"),
    ],
)
def test_a_pasted_error_finds_the_section_quoting_it_first(client, guides, paste, anchor):
    assert anchors(client, {"q": paste})[0] == anchor


DOTTED = """\
# Uploads to encrypted buckets<a name="uploads"></a>

## Uploads fail with KMS.NotFoundException<a name="kms-not-found"></a>

The bucket's default encryption names a key that is gone\\. Requests to my-bucket.s3.amazonaws.com
then fail for every object under reports/2024\\.
"""


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's posting lists")
def test_postgresql_scores_are_bm25_of_the_postings_after_a_reimport_changes_the_average(load, write_guide, filler):
    """Each list's weights depend on the average section length: a re-import that changes it
    must leave every score what BM25 over the postings makes it now."""
    demo = write_guide("demo", {"troubleshoot_access.md": TROUBLESHOOT}, title="Demo Guide")
    load(demo, filler)
    long_text = "## Credentials everywhere<a name=\"everywhere\"></a>\n\n" + "Expired credentials and tokens. " * 400
    long = write_guide("long", {"long.md": "# Long<a name=\"long\"></a>\n\n" + long_text}, title="Long Guide")
    load(demo, filler, long)
    engine = get_engine()
    lexemes = [lexeme for found in engine.lexemes(["credentials", "expired", "tokens"]).values() for lexeme in found]
    k1, b = base.K1, base.B
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT p.section_id, sum(p.tf * {k1 + 1} / (p.tf + {k1} * ({1 - b} + {b} * s.length"
            f" / (SELECT avg(length) FROM {postgresql.TABLE})))) FROM {postgresql.POSTINGS} p"
            f" JOIN {postgresql.TABLE} s USING (section_id) WHERE p.lexeme = ANY(%s) GROUP BY p.section_id", [lexemes])
        expected = dict(cursor.fetchall())
    ids, scores = engine._bm25(dict.fromkeys(lexemes, 1.0))
    assert len(expected) >= 2
    assert dict(zip(ids.tolist(), scores.tolist())) == pytest.approx(expected, rel=1e-9)


def fts5_scores(terms: list[str], *, guide: str = "") -> dict[int, float]:
    """What FTS5's own bm25() gives every section matching any of `terms` (quoted as the engine quotes them)."""
    engine = get_engine()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT rowid, -bm25({sqlite.TABLE}, %s, %s, %s) FROM {sqlite.TABLE} WHERE {sqlite.TABLE} MATCH %s"
            + (" AND guide = %s" if guide else ""),
            [engine.TITLE_WEIGHT, engine.CONTEXT_WEIGHT, engine.BODY_WEIGHT, " OR ".join(map(sqlite.quote, terms))]
            + ([guide] if guide else []))
        return dict(cursor.fetchall())


def assert_fts5_scores(terms: list[str], phrases: list[str], *, guide: str = "") -> None:
    found = get_engine().search(terms, phrases, guide=guide, limit=1000)
    expected = fts5_scores(get_engine().informative(terms)[0] + phrases, guide=guide)
    assert len(expected) >= 2
    assert {c.section_id: c.score for c in found} == pytest.approx(expected, rel=1e-9)
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's posting lists")
@pytest.mark.parametrize("guide", ["", "demo"])
def test_sqlite_scores_are_fts5_bm25_of_the_whole_query_after_a_reimport_changes_the_average(
        load, write_guide, filler, guide):
    """The terms are scored from posting lists and the rest by FTS5: together they must give
    each section FTS5's own score for the query, after a re-import changes the average length.
    Two terms with one stem count twice, and a term FTS5 cuts in two is a phrase, as in FTS5."""
    demo = write_guide("demo", {"troubleshoot_access.md": TROUBLESHOOT}, title="Demo Guide")
    load(demo, filler)
    long_text = "## Credentials everywhere<a name=\"everywhere\"></a>\n\n" + "Expired credentials and tokens. " * 400
    long = write_guide("long", {"long.md": "# Long<a name=\"long\"></a>\n\n" + long_text}, title="Long Guide")
    load(demo, filler, long)
    terms, phrases = ["credentials", "credential", "expired", "token", "identity-based", "basil"], ["temporary security"]
    assert get_engine().tokens(["identity-based", "credentials"]) == {"identity-based": ("ident", "base"),
                                                                      "credentials": ("credenti",)}

    with CaptureQueriesContext(connection) as queries:
        get_engine().search(terms, phrases, guide=guide)

    assert_fts5_scores(terms, phrases, guide=guide)
    # FTS5 scores the phrase and the term it cuts in two; the single words come from their lists.
    matched = [q["sql"] for q in queries if "bm25(" in q["sql"]]
    assert len(matched) == 1 and matched[0].endswith("MATCH '\"identity-based\" OR \"temporary security\"'")


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's posting lists")
def test_sqlite_scores_follow_an_import_that_only_removes_sections(load, write_guide, filler):
    demo = write_guide("demo", {"troubleshoot_access.md": TROUBLESHOOT, "rotating.md": ROTATE}, title="Demo Guide")
    load(demo, filler)
    gone = set(Section.objects.filter(article__slug="troubleshoot_access").values_list("pk", flat=True))
    (demo / "troubleshoot_access.md").unlink()
    load(demo, filler)

    found = get_engine().search(["credentials", "rotate", "expired"], [], limit=1000)

    assert gone and found and not {c.section_id for c in found} & gone
    assert_fts5_scores(["credentials", "rotate", "basil"], [])


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's posting lists")
def test_posting_lists_are_built_again_when_the_index_or_the_weights_change_behind_them(guides, monkeypatch):
    """An import by another release writes the index alone; a new release may weigh columns otherwise."""
    terms = ["credentials", "access", "denied"]
    engine = get_engine()
    last = engine.search(terms, [])[-1].section_id
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT rowid, title, context, body, guide, hash FROM {sqlite.TABLE} WHERE rowid = %s", [last])
        row = dict(zip(["id", "title", "context", "body", "guide", "hash"], cursor.fetchone()))
    # Rewritten as an older release's import would: the row, then a merge, but not the lists.
    engine.delete([last])
    engine.insert([{**row, "body": row["body"] + " Access denied: credentials, credentials, credentials."}])
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {sqlite.TABLE}({sqlite.TABLE}) VALUES ('optimize')")

    assert engine.sync() == base.SyncResult(indexed=0, removed=0)
    assert_fts5_scores(terms, [])

    monkeypatch.setattr(sqlite.SQLiteEngine, "TITLE_WEIGHT", 9.0)
    get_engine().sync()
    assert_fts5_scores(terms, [])


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's posting lists")
def test_an_index_from_before_the_posting_lists_gets_them_at_the_next_sync(guides):
    terms = ["credentials", "access", "denied"]
    before = get_engine().search(terms, [])
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {sqlite.LISTS}")
        cursor.execute(f"DROP TABLE {sqlite.BUILT}")
    assert not get_engine().exists()

    assert get_engine().sync() == base.SyncResult(indexed=0, removed=0)
    assert before and get_engine().search(terms, []) == before


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's round trips")
def test_a_postgresql_search_of_known_words_reads_only_their_lists_and_phrases(guides, monkeypatch):
    """Each round trip to the server is a share of a pasted error's budget: the words' lexemes
    come with their counts, so once a process has seen the words a search needs only two
    statements (the posting lists, then the phrase matches), and the same results."""
    monkeypatch.setattr(base, "_frequencies", {})
    monkeypatch.setattr(postgresql, "_lexemes", {})
    terms, phrases = ["temporary", "credentials", "expired", "token"], ["provided token has expired"]
    first = get_engine().search(terms, phrases)
    with CaptureQueriesContext(connection) as warm:
        again = get_engine().search(terms, phrases)
    assert first and again == first
    assert len(warm) == 2, [q["sql"] for q in warm]


@pytest.mark.parametrize("ids", [[7, 3, 7, 5, 3, 7], [7, 3_000_000_000, 7, 5, 3_000_000_000, 7]])
def test_posting_weights_are_summed_per_section_however_far_apart_the_ids(ids):
    weights = [0.5, 1.0, 0.25, 2.0, 0.125, 4.0]
    expected: dict[int, float] = {}
    for section, weight in zip(ids, weights):
        expected[section] = expected.get(section, 0.0) + weight
    sections, sums = base.sum_by_section(np.array(ids, dtype=np.int64), np.array(weights))
    assert sections.tolist() == sorted(expected)
    assert dict(zip(sections.tolist(), sums.tolist())) == pytest.approx(expected)


def test_the_engine_filters_by_guide_itself(guides):
    """Only the guide's sections, the rest of the corpus notwithstanding (ROTATE and TROUBLESHOOT share words)."""
    found = get_engine().search(["credentials", "access"], [], guide="other")
    in_other = set(Section.objects.filter(article__guide__slug="other").values_list("pk", flat=True))
    assert found and {c.section_id for c in found} <= in_other
    assert {c.section_id for c in get_engine().search(["credentials", "access"], [])} - in_other


def test_a_search_filtered_to_a_guide_finds_what_an_import_added_to_it(load, write_guide):
    folder = write_guide("demo", {"troubleshoot_access.md": TROUBLESHOOT})
    load(folder)
    assert get_engine().search(["rotate"], [], guide="demo") == []
    (folder / "rotating.md").write_text(ROTATE)
    load(folder)

    added = set(Section.objects.filter(article__slug="rotating").values_list("pk", flat=True))
    assert {c.section_id for c in get_engine().search(["rotate"], [], guide="demo")} & added


@pytest.mark.parametrize("word", ["notfoundexception", "amazonaws", "reports"])
def test_words_joined_by_dots_or_slashes_are_found_by_each_word(load, write_guide, filler, word):
    # PostgreSQL's parser would keep KMS.NotFoundException, the host and the path whole.
    load(write_guide("dotted", {"uploads.md": DOTTED}, title="Dotted Guide"), filler)
    section = Section.objects.get(anchor="kms-not-found")
    assert section.pk in [c.section_id for c in get_engine().search([word], [])]


# Escaping


def test_html_in_content_and_query_is_escaped_and_only_mark_is_markup(client, guides):
    query = "<script>alert(1)</script>"
    response = client.get("/search/", {"q": query})
    assert response.status_code == 200
    text = response.content.decode()
    for dangerous in ("<script>alert", "onerror", "<img src=\"x\"", "<b>", "&lt;b&gt;bold"):
        assert dangerous not in text, dangerous
    assert_no_inline_code(text)

    soup = BeautifulSoup(text, "html.parser")
    assert soup.find("textarea", attrs={"name": "q"}).get_text() == query  # echoed as text
    snippet = soup.select_one(".snippet")
    assert {tag.name for tag in snippet.find_all(True)} == {"mark"}
    assert "<mark>alert</mark>" in str(snippet)
    assert "&lt;b&gt;bold" in snippet.get_text(), "code text shows as typed, entities and all"

    results = api(client, {"q": query})["results"]
    assert results and all(set(SNIPPET_TAG.findall(r["snippet"])) <= {"<mark>", "</mark>"} for r in results)
    scripts = next(r for r in results if r["anchor"] == "scripts")
    assert "<mark>script</mark>" in scripts["snippet"].lower()
    # Escape-then-mark loses nothing: without the marks, the snippet unescapes to the section text.
    plain = html.unescape(re.sub(r"</?mark>", "", scripts["snippet"])).strip("… ")
    assert plain in Section.objects.get(anchor="scripts").text


def test_a_snippet_is_the_passage_with_the_most_query_words_each_marked():
    passage = "Check the bucket policy and the KMS key policy of the bucket's default encryption."
    text = "A bucket stores objects. " + "Unrelated words about regions. " * 40 + passage + " More text." * 20
    snippet = str(highlight(text, ["bucket", "kms", "encryption"]))
    assert snippet.startswith("… ") and "stores objects" not in snippet, "the passage naming every word, not the first mention"
    assert snippet.count("<mark>") == 4
    assert "<mark>KMS</mark>" in snippet and "<mark>encryption</mark>" in snippet
    assert html.unescape(re.sub(r"</?mark>", "", snippet)).strip("… ") in text

    # A word's match starts where the word does, even at the passage's first character.
    snippet = str(highlight("x" * 50 + "policy" + "-" * 24 + "policy", ["policy"]))
    assert snippet.count("<mark>") == 1 and snippet.endswith("-<mark>policy</mark>")

    # A huge reference table still gets a short snippet with its words marked.
    table = "| Name | Value |\n" + "| bucket | yes |\n" * 20_000
    snippet = str(highlight(table, ["bucket"]))
    assert snippet.count("<mark>bucket</mark>") >= 5 and len(snippet) < 1_000
    # So is a section that is one long unbroken string after its match.
    blob = "Error: bucket " + "QUJD" * 5_000
    snippet = str(highlight(blob, ["bucket"]))
    assert "<mark>bucket</mark>" in snippet and len(snippet) < 400 and snippet.endswith(" …")


# Hostile queries

ENDPOINTS = ["/search/", "/api/v1/search", "/api/v1/suggest"]
SYNTAX = [
    '"', "'", '"""', "-", "--", ":", "*", ":*", "*:*", "(", ")", "((", "^", "{}", "{title body}:", "NEAR", "NEAR(",
    "AND OR NOT", "OR", "NOT", "title:foo", "body:", "!", "&", "|", "<->", "\\", "%", "_", "?", "' OR 1=1 --", ";",
]


@pytest.mark.parametrize("query", SYNTAX)
def test_query_syntax_characters_are_data(client, guides, query):
    for url in ENDPOINTS:
        assert client.get(url, {"q": query}).status_code == 200, url


@pytest.mark.parametrize(
    "query",
    [
        '"ExpiredToken', "ExpiredToken*", "-ExpiredToken", "title:ExpiredToken", "body:expired token",
        "NEAR(expired token)", "expired NEAR token", "expired AND OR NOT token", "^expired", "{title body}: expired",
        "expired & token | !provided", "expired <-> token", "expired:* token:A", "(expired) (token",
        "'expired' \"token\"", "expired\\ token", "expired{} token^2",
    ],
)
def test_queries_with_syntax_characters_still_find(client, guides, query):
    assert "expired-token" in anchors(client, {"q": query})[:3]
    assert "expired-token" in " ".join(result_links(page(client, {"q": query})))


@pytest.mark.parametrize(
    "query",
    [
        "ExpiredToken when\x07 calling\x1b the\r\n\tGetObject operation\x7f",
        pytest.param(
            "ExpiredToken\x00 when calling the GetObject operation",
            id="nul",
        ),
        "権限がありません ExpiredToken 🔥",
        "ＥｘｐｉｒｅｄＴｏｋｅｎ",
        "expired to\u0301ken",
    ],
)
def test_control_characters_and_unicode_are_searched(client, guides, query):
    assert "expired-token" in anchors(client, {"q": query})
    assert TROUBLESHOOT_ARTICLE + "#expired-token" in result_links(page(client, {"q": query}))


@pytest.mark.parametrize("raw", ["%F0%9F%94%A5%F0%9F%94%A5", "%E6%A8%A9%E9%99%90", "%E2%80%AERTL", "%FF%FE", "%ED%A0%80"])
def test_odd_encodings_are_searched(client, guides, raw):
    # Emoji, CJK, a right-to-left override, invalid UTF-8 and an encoded surrogate, as sent on the wire.
    for url in ENDPOINTS:
        assert client.get(f"{url}?q={raw}").status_code == 200, url


@pytest.mark.parametrize(
    "url",
    [
        "/search/",
        "/api/v1/search",
        "/api/v1/suggest",
    ],
)
def test_nul_is_a_space_and_never_a_500(client, guides, url):
    response = client.get(url, {"q": "My temporary\x00credentials"})
    assert response.status_code == 200
    if url == "/api/v1/search":
        assert "expired-token" in anchors(client, {"q": "My temporary\x00credentials"})


def test_control_characters_are_not_echoed_into_the_page(client, guides):
    response = client.get("/search/", {"q": "expired\x00token\x01\x1b[31m"})
    html = response.content.decode()
    assert not any(ch in html for ch in "\x00\x01\x1b")
    assert BeautifulSoup(html, "html.parser").select_one("#search-q").get_text() == "expired token  [31m"


def test_a_paste_of_20000_characters_is_searched(client, guides):
    head = "botocore.exceptions.ClientError: An error occurred (ExpiredToken) when calling the GetObject operation\n"
    frame = '  File "/srv/app/.venv/lib/python3.11/site-packages/botocore/client.py", line 1021, in _make_api_call\n'
    paste = (head + frame * 300)[:20_000]
    assert len(paste) == 20_000
    assert anchors(client, {"q": paste})[0] == "expired-token"
    soup = page(client, {"q": paste})
    assert result_links(soup)[0] == TROUBLESHOOT_ARTICLE + "#expired-token"
    # Every search box takes a paste that long, and no longer.
    home = BeautifulSoup(client.get("/").content, "html.parser")
    boxes = soup.find_all(attrs={"name": "q"}) + home.find_all(attrs={"name": "q"})
    assert len(boxes) >= 2 and {box["maxlength"] for box in boxes} == {"20000"}


def test_a_paste_over_20000_characters_gets_a_clear_400(client, guides):
    paste = "ExpiredToken " * 1600
    soup = page(client, {"q": paste}, status=400)
    assert "at most 20000 characters" in soup.find(attrs={"role": "alert"}).get_text()
    body = api(client, {"q": paste}, status=400)
    assert "at most 20000 characters" in body["fields"]["q"][0]["message"]


@pytest.mark.parametrize("query", ["", "   ", "?!.;", "*** <ACCOUNT>"])
def test_queries_without_words_show_no_results_and_no_error(client, guides, query):
    soup = page(client, {"q": query})
    assert not soup.select(".result")
    assert soup.find("textarea", attrs={"name": "q"})


@pytest.mark.parametrize("params", [{"page": "abc"}, {"page": "-1"}, {"page": "99999"}, {"page": "1e3"}])
def test_bad_page_numbers_show_a_page(client, many, params):
    assert result_links(page(client, {"q": "quota", **params}))


# The JSON API


def test_api_returns_sections_in_the_documented_shape(client, guides):
    body = api(client, {"q": "An error occurred (ExpiredToken) when calling the GetObject operation"})
    assert "ExpiredToken" in body["query"]["understood"]
    assert body["query"]["codes"] == ["ExpiredToken"] and body["query"]["operations"] == ["GetObject"]
    first = body["results"][0]
    assert set(first) == RESULT_KEYS
    expected = {
        "guide": "demo", "article": "troubleshoot_access", "anchor": "expired-token",
        "title": "My temporary credentials stopped working", "article_title": "Troubleshooting access",
        "url": TROUBLESHOOT_ARTICLE + "#expired-token",
    }
    assert {key: first[key] for key in expected} == expected
    assert isinstance(first["score"], float) and "<mark>" in first["snippet"]
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_api_and_page_return_the_same_results(client, many):
    urls = [r["url"] for r in api(client, {"q": "quota part"})["results"]]
    assert urls == result_links(page(client, {"q": "quota part"}))


def test_api_filters_by_guide(client, guides):
    assert {r["guide"] for r in api(client, {"q": "credentials"})["results"]} == {"demo", "other"}
    assert {r["guide"] for r in api(client, {"q": "credentials", "guide": "other"})["results"]} == {"other"}
    body = api(client, {"q": "credentials", "guide": "no-such-guide"}, status=400)
    assert body["fields"]["guide"][0]["message"] == "There is no guide called no-such-guide."


def test_the_page_says_why_a_guide_filter_is_refused(client, guides):
    for guide, message in [("no-such-guide", "There is no guide called no-such-guide."), ("a b", "valid")]:
        soup = page(client, {"q": "credentials", "guide": guide}, status=400)
        assert message in soup.select_one(".search-page-form .form-error").get_text()
        assert soup.select_one("#search-q").get_text() == "credentials"


@pytest.mark.parametrize(("limit", "count"), [(None, 10), ("1", 1), ("11", 11), ("50", 12)])
def test_api_limit_bounds_the_results(client, many, limit, count):
    params = {"q": "quota"} | ({"limit": limit} if limit else {})
    assert len(api(client, params)["results"]) == count


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": "quota", "limit": "abc"}, "limit"),
        ({"q": "quota", "limit": "0"}, "limit"),
        ({"q": "quota", "limit": "-3"}, "limit"),
        ({"q": "quota", "limit": "1000"}, "limit"),
        ({"q": "quota", "guide": "../etc"}, "guide"),
        ({"q": "quota", "guide": "<script>"}, "guide"),
        ({"q": "quota", "guide": "a b"}, "guide"),
        ({}, "q"),
        ({"q": ""}, "q"),
    ],
)
def test_api_rejects_bad_parameters_with_a_json_400(client, many, params, field):
    body = api(client, params, status=400)
    assert body["error"] and body["fields"][field][0]["message"]


# The results page


def test_results_link_straight_to_sections(client, guides):
    soup = page(client, {"q": "access denied"})
    links = result_links(soup)
    assert links[0] == TROUBLESHOOT_ARTICLE + "#access-denied"
    sections = {s.get_absolute_url(): s for s in Section.objects.select_related("article__guide")}
    for result in soup.select(".result"):
        link = result.select_one(".result-title a")
        assert re.fullmatch(r"/kb/[\w-]+/[\w-]+/#[\w-]+", link["href"])
        section = sections[link["href"]]
        assert link.get_text(strip=True) == section.title
        assert int(link["data-section"]) == section.pk
        assert section.article.title in result.select_one(".result-meta").get_text()
    assert soup.select_one(".snippet mark")


def test_results_page_shows_count_at_most_three_per_article_and_pages(client, many):
    first, second = page(client, {"q": "quota"}), page(client, {"q": "quota", "page": "2"})
    assert first.find(id="results-heading").get_text(strip=True) == "12 results"
    links = result_links(first)
    assert len(links) == 10 and len(result_links(second)) == 2
    per_article = {}
    for link in links + result_links(second):
        article = link.split("#")[0]
        per_article[article] = per_article.get(article, 0) + 1
    assert sorted(per_article.values()) == [3] * 4
    more = first.select(".more a")
    assert more and all(a.get_text(strip=True) == "1 more in this article" for a in more)
    assert {a["href"] for a in more} <= set(per_article)

    nav = first.find("nav", class_="pagination")
    assert "Page 1 of 2" in nav.get_text()
    assert "page=2" in nav.find("a", rel="next")["href"] and not nav.find("a", rel="prev")
    assert not set(result_links(second)) & set(links)
    assert second.find("ol", class_="result-list")["start"] == "11"


def test_results_page_filters_by_guide(client, guides):
    every = result_links(page(client, {"q": "credentials"}))
    assert any(link.startswith("/kb/other/") for link in every) and any(link.startswith("/kb/demo/") for link in every)
    soup = page(client, {"q": "credentials", "guide": "other"})
    assert result_links(soup) and all(link.startswith("/kb/other/") for link in result_links(soup))
    assert soup.find("select", attrs={"name": "guide"}).find("option", selected=True)["value"] == "other"


def test_no_results_suggests_a_spelling_from_the_topics(client, guides):
    soup = page(client, {"q": "temporery credentails"})
    assert not soup.select(".result")
    suggestion = soup.select_one(".did-you-mean a")
    assert suggestion.get_text(strip=True) == "temporary credentials"
    assert suggestion["href"].startswith("?q=temporary%20credentials&")
    assert result_links(page(client, {"q": "temporary credentials"}))[0] == TROUBLESHOOT_ARTICLE + "#expired-token"


def test_a_misspelt_word_gets_a_suggestion_beside_the_results_it_found(client, guides):
    soup = page(client, {"q": "temporary credentails"})
    assert soup.select(".result")
    assert soup.select_one(".did-you-mean a").get_text(strip=True) == "temporary credentials"
    assert not page(client, {"q": "temporary credentials"}).select(".did-you-mean")
    assert not page(client, {"q": "temporary credential"}).select(".did-you-mean"), "a known word, not in a title"


@pytest.fixture
def redis_down(settings) -> None:
    """The shared cache is a Redis that refuses connections (a closed port), as when it is down."""
    closed = {"BACKEND": "portal.redis_cache.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}
    settings.CACHES = {**settings.CACHES, "default": closed, "ratelimit": closed}
    settings.KB_RATE_LIMIT_ENABLED = False  # limits have their own failure rule (test_production.py)


def test_with_redis_down_a_misspelt_search_still_answers_with_its_suggestion(client, guides, redis_down):
    assert result_links(page(client, {"q": "temporary credentials"}))
    soup = page(client, {"q": "temporery credentails"})
    assert soup.select_one(".did-you-mean a").get_text(strip=True) == "temporary credentials"


def test_a_pasted_error_gets_no_spelling_suggestion(client, guides):
    soup = page(client, {"q": "An error occurred (ExpiredTokn) when calling the GetObject operation"})
    assert soup.select(".result") and not soup.select(".did-you-mean")


def test_no_results_lists_the_troubleshooting_topics(client, guides):
    soup = page(client, {"q": "zzyzx"})
    assert soup.select_one(".empty-state")
    topics = soup.find("h2", string="Troubleshooting topics").find_parent("section")
    assert TROUBLESHOOT_ARTICLE + "#expired-token" in [a["href"] for a in topics.find_all("a")]


def test_empty_search_page_lists_the_troubleshooting_topics(client, guides):
    soup = page(client, {})
    topics = soup.find("h2", string="Troubleshooting topics").find_parent("section")
    assert TROUBLESHOOT_ARTICLE + "#expired-token" in [a["href"] for a in topics.find_all("a")]
    assert "/kb/other/rotating/#rotate" not in [a["href"] for a in topics.find_all("a")]


# Suggestions as you type


@pytest.mark.parametrize(
    "typed",
    [
        "tempor",
        "TEMPORARY CRED",
        pytest.param("temp cred"),
    ],
)
def test_suggestions_are_matching_section_titles(client, guides, typed):
    suggestions = client.get("/api/v1/suggest", {"q": typed}).json()["suggestions"]
    assert suggestions == [{
        "title": "My temporary credentials stopped working", "article_title": "Troubleshooting access",
        "url": TROUBLESHOOT_ARTICLE + "#expired-token",
    }]


@pytest.mark.parametrize("typed", ["", "t", "zzyzx"])
def test_suggestions_need_two_characters_that_match(client, guides, typed):
    assert client.get("/api/v1/suggest", {"q": typed}).json() == {"suggestions": []}


# The search log

SECRETS = [
    pytest.param("aws_access_key_id=AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", id="access-key-id"),
    pytest.param("credential ASIAY34FZKBOKMUTVV7A/20240305/us-east-1/sts", "ASIAY34FZKBOKMUTVV7A", id="temporary-key-id"),
    pytest.param("secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                 id="secret-key"),
    pytest.param("X-Amz-Security-Token: " + "FwoGZXIvYXdzEBYaDNn2cLmI8EXAMPLEsYnlYZg4dT7g2QKdWIjVv4hR9vJ3" * 3,
                 "FwoGZXIvYXdzEBYaDNn2cLmI8EXAMPLE", id="session-token"),
    pytest.param("postgres://app:s3cr3tPw@db.example.com:5432/app", "s3cr3tPw", id="url-password"),
    pytest.param(
        "postgres://app:s3cr3t!Pw@db.example.com:5432/app", "s3cr3t", id="url-password-punctuated",
    ),
]


@pytest.mark.parametrize(("pasted", "secret"), SECRETS)
def test_searches_are_logged_with_secrets_redacted(client, guides, pasted, secret):
    query = f"ExpiredToken when calling the GetObject operation with {pasted}"
    soup = page(client, {"q": query})
    log = SearchLog.objects.get()
    assert log.channel == SearchLog.Channel.WEB
    assert secret not in log.query and secret.lower() not in log.understood.lower()
    assert "[REDACTED]" in log.query
    assert log.query.startswith("ExpiredToken when calling the GetObject operation with ")
    assert "ExpiredToken" in log.understood and "GetObject" in log.understood
    assert log.result_count == int(soup.find(id="results-heading").get_text().split()[0]) > 0


def test_api_searches_are_logged_and_paging_is_not_a_new_search(client, many):
    body = api(client, {"q": "quota", "limit": "3", "guide": "many"})
    log = SearchLog.objects.get()
    assert (log.channel, log.query, log.guide, log.result_count) == ("api", "quota", "many", len(body["results"]))
    page(client, {"q": "quota"})
    page(client, {"q": "quota", "page": "2"})
    assert SearchLog.objects.count() == 2


def test_no_results_are_logged_too(client, guides):
    page(client, {"q": "zzyzx"})
    assert SearchLog.objects.get().result_count == 0


@pytest.fixture
def csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)


def opened_beacon(csrf_client) -> tuple[str, int, str, str]:
    """Search as a browser does; return the beacon URL, first result's id and URL, and the CSRF token."""
    soup = page(csrf_client, {"q": "ExpiredToken"})
    link = soup.select_one(".result-title a")
    beacon = soup.find(attrs={"data-opened": True})["data-opened"]
    return beacon, int(link["data-section"]), link["href"], csrf_client.cookies["csrftoken"].value


def test_opened_result_is_recorded(csrf_client, guides):
    beacon, section, url, token = opened_beacon(csrf_client)
    response = csrf_client.post(beacon, {"section": section, "csrfmiddlewaretoken": token})
    assert response.status_code == 204
    log = SearchLog.objects.get()
    assert (log.opened_section_id, log.opened_url) == (section, url)


def test_opened_beacon_needs_the_csrf_token(csrf_client, guides):
    beacon, section, _, _ = opened_beacon(csrf_client)
    assert csrf_client.post(beacon, {"section": section}).status_code == 403
    assert SearchLog.objects.get().opened_section is None


@pytest.mark.parametrize(
    "forge",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: signing.dumps(SearchLog.objects.get().pk),  # signed, but not for this purpose
        lambda token: "not-a-token",
    ],
    ids=["tampered", "other-salt", "garbage"],
)
def test_forged_beacon_token_is_404(csrf_client, guides, forge):
    beacon, section, _, csrf = opened_beacon(csrf_client)
    token = beacon.rstrip("/").rsplit("/", 1)[1]
    response = csrf_client.post(f"/search/opened/{forge(token)}/", {"section": section, "csrfmiddlewaretoken": csrf})
    assert response.status_code == 404
    assert SearchLog.objects.get().opened_section is None


@pytest.mark.parametrize("section", ["", "abc", "1.5", "1e3"])
def test_bad_section_id_is_400(csrf_client, guides, section):
    beacon, _, _, csrf = opened_beacon(csrf_client)
    response = csrf_client.post(beacon, {"section": section, "csrfmiddlewaretoken": csrf})
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.parametrize("section", ["0", "-1", "99999999999999999999999"])
def test_unknown_section_id_is_404_and_not_recorded(csrf_client, guides, section):
    beacon, _, _, csrf = opened_beacon(csrf_client)
    assert csrf_client.post(beacon, {"section": section, "csrfmiddlewaretoken": csrf}).status_code == 404
    assert SearchLog.objects.get().opened_section is None


def test_a_section_the_search_did_not_show_is_404_and_not_recorded(csrf_client, guides):
    beacon, _, _, csrf = opened_beacon(csrf_client)
    shown = {int(a["data-section"]) for a in page(csrf_client, {"q": "ExpiredToken"}).select(".result-title a")}
    not_shown = Section.objects.exclude(pk__in=shown).first().pk
    assert csrf_client.post(beacon, {"section": not_shown, "csrfmiddlewaretoken": csrf}).status_code == 404
    assert not SearchLog.objects.filter(opened_section__isnull=False).exists()


# The seven topics of the shipped seed article, each from a question and from a pasted error

SEED = Path(settings.BASE_DIR) / "content" / "iam-user-guide"  # the repo's copy, not whatever KB_CONTENT_DIR is


def miss(reason: str):
    return pytest.mark.xfail(strict=True, reason=f"not in the top 3: {reason}")


@pytest.mark.parametrize(
    ("topic", "query"),
    [
        ("access-keys", "I didn't save my secret access key when I created it, where can I find it again?"),
        ("access-keys", "An error occurred (LimitExceeded) when calling the CreateAccessKey operation: "
                        "Cannot exceed quota for AccessKeysPerUser: 2"),
        ("lost-root-creds", "how do I get back into an old AWS account when I no longer have the email address "
                            "it was registered with"),
        ("lost-root-creds", "Password recovery: we sent an email to p***@o***.com with a link to reset the "
                            "password of your root user"),
        ("cant-sign-in", "aws console keeps asking me for a verification code and the email never comes"),
        ("cant-sign-in", "Root user sign in - Email address verification: enter the verification code we sent to your "
                         "email address"),
        pytest.param("cant-sign-in", "Your authentication information is incorrect. Please try again.",
                     marks=miss("the console's sign-in error shares no word with the section (it says "
                                "'password', 'sign in', never 'authentication' or 'incorrect')")),
        ("access-denied-service", "why do I get access denied from an AWS API even though my IAM user has a "
                                  "policy attached"),
        ("access-denied-service", "An error occurred (AccessDenied) when calling the SendMessage operation: Access "
                                  "to the resource https://sqs.us-east-1.amazonaws.com/123456789012/orders is denied."),
        ("access-denied-temp-creds", "access denied with temporary credentials from sts assume-role but the role "
                                     "has the permissions"),
        ("access-denied-temp-creds", "botocore.exceptions.ClientError: An error occurred (ExpiredTokenException) "
                                     "when calling the Scan operation: The security token included in the request "
                                     "is expired"),
        ("policy-variables-dont-work", "${aws:username} in my IAM policy resource is not being replaced with the "
                                       "user name"),
        ("policy-variables-dont-work", "Variable unsupported in version: To include variables in your policy, use "
                                       "the policy version 2012-10-17 or later."),
        ("eventual-consistency", "I just created an IAM role and my script that uses it right away fails, but a few "
                                 "seconds later the same call works. Is there a delay before changes take effect?"),
        ("eventual-consistency", "Error: creating EC2 Instance: InvalidParameterValue: Value (app-profile) for "
                                 "parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"),
        pytest.param("eventual-consistency", "I just attached a policy to a role but it still gets access denied "
                     "for a minute or so", marks=miss("'access denied' pulls both access-denied sections and the "
                                                      "intro above it; nothing rewards 'just', 'still', 'minute'")),
        pytest.param("eventual-consistency", "An error occurred (InvalidParameterValueException) when calling the "
                     "CreateFunction operation: The role defined for the function cannot be assumed by Lambda.",
                     marks=miss("Lambda's classic error for a role that is seconds old; only 'role' is shared")),
    ],
)
def test_seed_topics_are_found_from_questions_and_errors(load, topic, query):
    load(SEED)
    top = [r.section.anchor for r in search(query, guide="iam-user-guide").results[:3]]
    assert f"troubleshoot_general_{topic}" in top


@pytest.fixture
def large(load, write_guide):
    """1,230 sections, the size of index from which engines prune common terms; 'access' is in 39% of them."""
    files = {
        f"part-{n}.md": f"# Part {n}<a name=\"part-{n}\"></a>\n\n" + "".join(
            f"## Item {n}.{k}<a name=\"item-{k}\"></a>\n\n{'Access' if k % 5 < 2 else 'Garden'} notes\\.\n\n"
            for k in range(40)
        )
        for n in range(30)
    }
    load(write_guide("large", files))


@pytest.mark.parametrize("query", ["AccessDenied", "credentials", "password"])
def test_a_one_word_query_finds_the_seed_sections(load, query):
    load(SEED)
    found = search(query, guide="iam-user-guide")
    assert found.count
    words = found.query.terms  # "AccessDenied" is also searched as "access" and "denied"
    assert all(any(w in (r.section.title + r.section.text).lower() for w in words) for r in found.results[:3])


def test_a_one_word_query_finds_sections_however_common_the_word(large):
    found = search("access")
    assert found.count >= 10
    assert all("Access notes" in r.section.text for r in found.results)


def test_a_long_paste_is_matched_on_its_rarest_words_wherever_they_are(load, write_guide):
    common = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec"
    files = {
        f"page-{n}.md": f"# Page {n}<a name=\"page-{n}\"></a>\n\n## Notes {n}<a name=\"notes\"></a>\n\n{common}\\.\n\n"
        for n in range(6)
    }
    files["page-0.md"] += "## Quota<a name=\"quota\"></a>\n\nThe PoliciesPerRole quota\\.\n"
    load(write_guide("words", files))
    found = search(f"{common} romeo sierra: Cannot exceed quota for PoliciesPerRole")
    assert found.query.terms.index("policiesperrole") > 16
    assert "quota" in [r.section.anchor for r in found.results]
