"""The whole reference corpus (../shared/corpus, ~2,650 articles) imported once for the module.

It checks the dialect at scale: zero import errors, every heading anchor an id, no stray
backslash escapes, one article per file. Skipped when the corpus is absent; KB_CORPUS_DIR
points elsewhere. The repository's parent holds `shared/` both here and on CI.
"""

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kb.guided.recommend import recommend
from kb.importer import ImportFailed, ImportReport, import_content
from kb.models import Article, Guide
from kb.search import search, sync_index
from kb.search.training import load_judged, metrics

CORPUS = Path(os.environ.get("KB_CORPUS_DIR") or Path(__file__).resolve().parents[3] / "shared" / "corpus")

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not CORPUS.is_dir(), reason=f"reference corpus not found at {CORPUS} (set KB_CORPUS_DIR)"),
]

HEADING_ANCHOR = re.compile(r'<a name="([^"]+)"></a>')
FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+).+?\1")
APPLEDOUBLE = CORPUS / "iam-user-guide" / "._reference_policies_condition-keys.md"
EVAL = CORPUS.parent / "eval" / "errors-dev.jsonl"
QRELS = CORPUS.parent / "eval" / "qrels-dev.jsonl"
# Floors a little under what bench/relevance.py measures without the semantic stage (the
# corpus is not embedded here), with the shipped weights: S@3 0.525, H@3 0.733, nDCG@5 0.435
# on SQLite; the plain FTS5 baseline is 0.367, 0.583, 0.324. Relevance cannot silently regress.
RELEVANCE_FLOORS = {"S@3": 0.45, "H@3": 0.65, "nDCG@5": 0.38}


@pytest.fixture(scope="module")
def corpus(django_db_setup, django_db_blocker) -> ImportReport:
    """Import the corpus once (about 20 s), committed for the module's tests, then removed."""
    with django_db_blocker.unblock():
        try:
            report = import_content([CORPUS])
        except ImportFailed as failure:
            pytest.fail(f"{len(failure.errors)} import error(s):\n" + "\n".join(failure.errors[:20]))
        yield report
        Guide.objects.filter(slug__in=report.guides).delete()
        sync_index()  # drop the corpus from the search index too, or later tests would rank against it


def guide_folders() -> list[Path]:
    return sorted(path for path in CORPUS.iterdir() if path.is_dir())


def article_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.md") if p.name != "index.md" and not p.name.startswith("."))


def prose_lines(source: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code."""
    lines, fence = [], None
    for number, line in enumerate(source.splitlines(), 1):
        opening = FENCE.match(line)
        if fence:
            fence = None if line.strip().startswith(fence) else fence
        elif opening:
            fence = opening.group(1)
        else:
            lines.append((number, line))
    return lines


class ProseText(HTMLParser):
    """The text of an HTML fragment outside <code> and <pre>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth, self.parts = 0, []

    def handle_starttag(self, tag, attrs):
        self.depth += tag in ("code", "pre")

    def handle_endtag(self, tag):
        self.depth -= tag in ("code", "pre")

    def handle_data(self, data):
        if not self.depth:
            self.parts.append(data)

    @classmethod
    def of(cls, fragment: str) -> str:
        parser = cls()
        parser.feed(fragment)
        return "".join(parser.parts)


def stored_articles() -> dict[tuple[str, str], str]:
    """(guide, article) -> the article's stored HTML, all sections in order."""
    html: dict[tuple[str, str], list[str]] = {}
    for article in Article.objects.select_related("guide").prefetch_related("sections"):
        html[article.guide.slug, article.slug] = [section.html for section in article.sections.all()]
    return {key: "".join(parts) for key, parts in html.items()}


@pytest.mark.django_db
def test_every_guide_imports_with_one_article_per_file(corpus):
    folders = guide_folders()
    assert corpus.guides == [folder.name for folder in folders]
    for folder in folders:
        expected = sorted(path.stem for path in article_files(folder))
        assert sorted(Article.objects.filter(guide__slug=folder.name).values_list("slug", flat=True)) == expected
    assert len(corpus.added) == sum(len(article_files(folder)) for folder in folders)


@pytest.mark.django_db
def test_each_contents_has_an_entry_per_index_link(corpus):
    def count(nodes: list[dict]) -> int:
        return sum(1 + count(node["children"]) for node in nodes)

    for guide in Guide.objects.filter(slug__in=corpus.guides):
        assert count(guide.toc) == (CORPUS / guide.slug / "index.md").read_text().count("]("), guide.slug
    assert Article.objects.filter(guide__slug__in=corpus.guides, parent__isnull=False).exists()


@pytest.mark.django_db
def test_the_macos_resource_fork_is_skipped_not_an_error(corpus):
    if not APPLEDOUBLE.exists():
        pytest.skip(f"{APPLEDOUBLE.name} is not in this copy of the corpus")
    assert not Article.objects.filter(slug__startswith="._").exists()
    assert not [warning for warning in corpus.warnings if APPLEDOUBLE.name in warning]


@pytest.mark.django_db
def test_every_heading_anchor_is_an_id_and_no_anchor_tag_is_left(corpus):
    stored = stored_articles()
    missing, leftover = [], []
    for folder in guide_folders():
        for path in article_files(folder):
            html = stored[folder.name, path.stem]
            if "<a name" in html or "&lt;a name" in html:
                leftover.append(str(path))
            for number, line in prose_lines(path.read_text()):
                if line.startswith("#"):
                    missing += [f"{path}:{number}: #{name}" for name in HEADING_ANCHOR.findall(line)
                                if f'id="{name}"' not in html]
    assert missing == [], f"{len(missing)} heading anchor(s) without an id, e.g.\n" + "\n".join(missing[:20])
    assert leftover == []


@pytest.mark.django_db
def test_no_stray_backslash_escapes_outside_code(corpus):
    """A backslash in rendered prose must come from a `\\\\` the author wrote outside code."""
    stored = stored_articles()
    stray = []
    for folder in guide_folders():
        for path in article_files(folder):
            prose = "\n".join(CODE_SPAN.sub("", line) for _, line in prose_lines(path.read_text()))
            rendered, written = ProseText.of(stored[folder.name, path.stem]).count("\\"), prose.count("\\\\")
            if rendered > written:
                stray.append(f"{path}: {rendered} backslash(es) in the text, {written} written as a double backslash")
    assert stray == [], "\n".join(stray[:20])


@pytest.mark.skipif(not QRELS.is_file(), reason=f"judged error set not found at {QRELS}")
@pytest.mark.parametrize("path", ["search", "recommend"])
def test_relevance_on_the_judged_errors_stays_above_its_floor(corpus, path, monkeypatch):
    monkeypatch.setenv("KB_SEMANTIC", "0")
    cases = load_judged(EVAL, QRELS)
    rank = {
        "search": lambda text: [result.section for result in search(text, limit=10).results],
        "recommend": lambda text: [item.section for item in recommend(text, limit=10).items],
    }[path]
    ranking = {case.id: [(s.article.guide.slug, s.article.slug, s.anchor) for s in rank(case.text)] for case in cases}
    figures = metrics(cases, ranking)
    below = {name: round(figures[name], 3) for name, floor in RELEVANCE_FLOORS.items() if figures[name] < floor}
    assert not below, f"{path} relevance fell below its floor: {below}"
