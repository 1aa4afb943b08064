"""Markdown rendering for the AWS-documentation dialect: the only place Markdown is configured.

`Renderer.render()` turns one article's source into sanitised HTML split into sections,
each keyed by the author's `<a name>` anchor. It is pure (no database), so the importer can
run it in worker processes and tests can call it directly. Line-level fixes are in
dialect.py, the HTML allowlist in sanitise.py.
"""

from __future__ import annotations

import bisect
import itertools
import re
import string
import xml.etree.ElementTree as etree
from dataclasses import dataclass, field

import markdown
from django.utils.text import Truncator
from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor
from markdown.util import HTML_PLACEHOLDER_RE

from kb.search.entities import VERSION as ENTITIES_VERSION

from .dialect import CLOSES_FENCE, CODE, FENCE, OPENS_FENCE, normalise_indentation, tighten_strong
from .sanitise import plain_text, sanitise

# Part of every article's content hash: bump it when rendering changes so a re-import
# re-renders everything instead of treating old HTML as unchanged. What the importer
# derives from a rendered section (its entities and kind) changes with ENTITIES_VERSION.
RENDER_VERSION = f"5.{ENTITIES_VERSION}"

# Column sizes of the stored section (kb.models.Section): longer values are a content
# error named here, not a database error half-way through the import.
MAX_ANCHOR = 200
MAX_TITLE = 500
# A heading with no text (only an anchor) is listed by its section's first words, or by
# its anchor when the section has none.
UNTITLED_WORDS, UNTITLED_CHARS = 8, 80

# Private-use characters never occur in real content, so they can carry anchor markers
# through Markdown's inline patterns untouched.
MARK = "\ue000"
MARK_END = "\ue001"
MARKER = re.compile(f"{MARK}(\\d+){MARK_END}")
SECTION_BREAK = "<kb-section-break></kb-section-break>"

ANCHOR_TAG = re.compile(r"""<a\s+name\s*=\s*["']([^"']*)["']\s*>\s*</a>""", re.IGNORECASE)
HEADING_LINE = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
# A heading line of anchors and nothing else, anywhere in a source, CRLF line ends included:
# a quick test for whether the line pass could warn about one (it also matches in code
# blocks, which the line pass skips; that only costs a needless lint).
UNTITLED_HEADING = re.compile(
    r"^#{1,6}[ \t]+(?:" + ANCHOR_TAG.pattern + r"[ \t]*)+[ \t#\r]*$", re.IGNORECASE | re.MULTILINE
)
HEADING_TAG = re.compile(r"h[1-6]")
CALLOUTS = {"note", "notes", "important", "warning", "tip", "caution"}


class RenderError(ValueError):
    """The source cannot be rendered; `line` is 1-based where known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


@dataclass
class RenderedSection:
    anchor: str
    title: str
    level: int
    position: int
    html: str
    text: str


@dataclass
class Link:
    """An internal link found in an article, checked once every article is known."""

    article: str  # target article slug; "" for a link within the same article
    anchor: str
    href: str
    line: int = 0


@dataclass
class RenderedArticle:
    title: str
    anchor: str
    sections: list[RenderedSection]
    anchors: list[str]  # every `<a name>` in source order, a repeated one repeated
    links: list[Link] = field(default_factory=list)
    warnings: list[tuple[int, str]] = field(default_factory=list)  # (line, message): Renderer.anchor_warnings()


@dataclass(frozen=True)
class LinkContext:
    """What link rewriting needs to know about the guide being imported."""

    guide: str
    base_url: str
    articles: frozenset[str]
    article_url: str  # URL template containing {guide} and {article}


class DialectPreprocessor(Preprocessor):
    """Normalise indentation and turn `<a name>` anchors into markers the tree step resolves.

    Runs before every other preprocessor, so list index + 1 is still the source line.
    """

    def run(self, lines: list[str]) -> list[str]:
        anchors: list[tuple[str, int]] = []

        def mark(name: str, number: int) -> str:
            anchors.append((name, number))
            return f"{MARK}{len(anchors) - 1}{MARK_END}"

        out = []
        untitled: list[tuple[int, str]] = []
        for number, (line, role) in enumerate(normalise_indentation(lines), 1):
            if role in (OPENS_FENCE, CODE):
                out.append(line)
                continue
            if role == CLOSES_FENCE:
                # The dialect lets text follow a closing fence ("```<a name=...>"): give it its own line.
                fence = FENCE.match(line)
                out.extend([fence.group(0), ""])
                line = fence.group(1) + line[fence.end():]
                if not line.strip():
                    continue
            heading = HEADING_LINE.match(line)
            if heading and ANCHOR_TAG.search(heading.group(2)):
                # Markers go after the title, so the heading text has no stray spaces.
                title = ANCHOR_TAG.sub("", heading.group(2)).strip()
                if not title:
                    untitled.append((number, "heading has no text: listed by its first words, or its anchor"))
                marks = "".join(mark(name, number) for name in ANCHOR_TAG.findall(heading.group(2)))
                line = f"{heading.group(1)} {title}{marks}"
            else:
                line = ANCHOR_TAG.sub(lambda m: mark(m.group(1), number), line)
            out.append(tighten_strong(line))
        self.md.kb_anchors = [name for name, _ in anchors]
        self.md.kb_ids, repeated = _unique_ids(anchors)
        self.md.kb_warnings = sorted(repeated + untitled)
        return out


def page_ids(names: list[str]) -> list[str]:
    """The element ids a page gives its `<a name>` anchors (RenderedArticle.anchors), which
    links may target: a repeated name's later uses get `-2`, `-3`..."""
    return _unique_ids([(name, 0) for name in names])[0]


def _unique_ids(anchors: list[tuple[str, int]]) -> tuple[list[str], list[tuple[int, str]]]:
    """The id each (name, line) anchor gets, and a warning for each repeated name.

    A repeat gets the first free `-N` suffix, so ids and section anchors stay unique and
    links to the name land on its first use.
    """
    taken = {name for name, _ in anchors}
    seen: set[str] = set()
    ids, warnings = [], []
    for name, line in anchors:
        if name not in seen:
            seen.add(name)
            ids.append(name)
            continue
        unique = next(f"{name}-{n}" for n in itertools.count(2) if f"{name}-{n}" not in taken)
        taken.add(unique)
        ids.append(unique)
        warnings.append((line, f"anchor {name!r} is already used above; this one is #{unique}"))
    return ids, warnings


class DialectTreeprocessor(Treeprocessor):
    """Set heading ids, rewrite links, mark callouts, and split the tree into sections."""

    def __init__(self, md: markdown.Markdown, context_holder: dict):
        super().__init__(md)
        self.context_holder = context_holder

    def run(self, root: etree.Element) -> None:
        context: LinkContext = self.context_holder["context"]
        self.md.kb_root = root
        for parent in root.iter():
            self._resolve_markers(parent)
        for element in root.iter("a"):
            self._rewrite_link(element, context)
        for element in root.iter("p"):
            self._mark_callout(element)
        self._split_sections(root)

    def _resolve_markers(self, element: etree.Element) -> None:
        """Put each marker's anchor on its element as an id (a span when the element has one)."""
        ids: list[str] = self.md.kb_ids

        def take(text: str | None, owner: etree.Element) -> str | None:
            if not text or MARK not in text:
                return text
            for index in MARKER.findall(text):
                if owner.get("id") is None:
                    owner.set("id", ids[int(index)])
                else:
                    etree.SubElement(owner, "span").set("id", ids[int(index)])
            return MARKER.sub("", text)

        element.text = take(element.text, element)
        for child in element:
            child.tail = take(child.tail, element)

    def _split_sections(self, root: etree.Element) -> None:
        """Mark where each section starts: at every top-level anchored heading, and at the
        title even when its author gave it no anchor."""
        children = list(root)
        first_h1 = next((child for child in children if child.tag == "h1"), None)
        self.md.kb_headings = [
            child for child in children
            if HEADING_TAG.fullmatch(child.tag) and (child.get("id") is not None or child is first_h1)
        ]
        starts = set(self.md.kb_headings)
        for index in range(len(children) - 1, -1, -1):
            if children[index] in starts:
                root.insert(index, etree.Element("kb-section-break"))

    def _rewrite_link(self, element: etree.Element, context: LinkContext) -> None:
        """Point `x.md#a` at the portal when x is in the guide, else at its published page."""
        href = (element.get("href") or "").strip()
        if not href or href.startswith("mailto:"):
            return
        if re.match(r"^[a-z][a-z0-9+.-]*:", href, re.IGNORECASE) or href.startswith("//"):
            _mark_external(element)
            return
        path, _, anchor = href.partition("#")
        if not path:
            self.md.kb_links.append(Link("", anchor, href))
            return
        slug = path[:-3] if path.endswith(".md") and "/" not in path else None
        if slug is not None and slug in context.articles:
            self.md.kb_links.append(Link(slug, anchor, href))
            url = context.article_url.format(guide=context.guide, article=slug)
            element.set("data-kb-article", slug)
            element.set("href", f"{url}#{anchor}" if anchor else url)
            return
        if context.base_url:
            published = re.sub(r"\.md$", ".html", path)
            element.set("href", context.base_url + published + (f"#{anchor}" if anchor else ""))
            _mark_external(element)
        elif slug is not None:
            # Not imported and published nowhere: reported as a link to a missing article.
            self.md.kb_links.append(Link(slug, anchor, href))

    def _mark_callout(self, paragraph: etree.Element) -> None:
        first = paragraph[0] if len(paragraph) else None
        if (
            first is not None
            and not (paragraph.text or "").strip()
            and first.tag == "strong"
            and (first.text or "").strip().rstrip(":").lower() in CALLOUTS
        ):
            kind = (first.text or "").strip().rstrip(":").lower().rstrip("s")
            paragraph.set("class", f"callout callout-{kind}")


def _mark_external(link: etree.Element) -> None:
    link.set("class", "external")
    link.set("rel", "external noopener noreferrer")


class DialectExtension(Extension):
    def __init__(self, context_holder: dict):
        super().__init__()
        self.context_holder = context_holder

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        self.md = md
        md.registerExtension(self)
        self.reset()
        # Every ASCII punctuation character can be backslash-escaped, as in CommonMark.
        md.ESCAPED_CHARS = sorted(set(md.ESCAPED_CHARS) | set(string.punctuation))
        md.preprocessors.register(DialectPreprocessor(md), "kb_dialect", 35)
        # Below Markdown's own "unescape" (priority 0) so text holds real characters.
        md.treeprocessors.register(DialectTreeprocessor(md, self.context_holder), "kb_dialect", -10)

    def reset(self) -> None:
        """Forget the previous article (Markdown.reset() calls this); an empty source runs no processor."""
        self.md.kb_anchors = []
        self.md.kb_ids = []
        self.md.kb_links = []
        self.md.kb_headings = []
        self.md.kb_warnings = []
        self.md.kb_root = etree.Element("div")  # an empty document


class Renderer:
    """A reusable Markdown pipeline; one per process, reset between articles."""

    def __init__(self) -> None:
        self._context_holder: dict = {}
        self._md = markdown.Markdown(
            extensions=[
                "tables",
                "sane_lists",
                "pymdownx.superfences",
                "pymdownx.highlight",
                DialectExtension(self._context_holder),
            ],
            extension_configs={"pymdownx.highlight": {"use_pygments": False}},
            output_format="html",
        )

    def render(self, source: str, context: LinkContext) -> RenderedArticle:
        """Sanitised sections, anchors, internal links and warnings of one article.

        Raises RenderError when the source has no title heading.
        """
        md = self._md
        body = self._convert(source, context)
        headings = md.kb_headings
        if not headings or headings[0].tag != "h1":
            raise RenderError("article has no '# Title' heading before its first section", _first_line(source))
        preamble, *chunks = body.split(SECTION_BREAK)
        # Content before the title (rules, notices) belongs to the article's top.
        chunks[0] = preamble + chunks[0]
        sections = []
        for position, (heading, chunk) in enumerate(zip(headings, chunks)):
            clean = sanitise(chunk, ids=md.kb_ids)
            text = plain_text(clean)
            sections.append(
                RenderedSection(
                    anchor=heading.get("id", ""),
                    title=self._text_of(heading) or _first_words(text) or heading.get("id", ""),
                    level=int(heading.tag[1]),
                    position=position,
                    html=clean,
                    text=text,
                )
            )
        _check_lengths(source, sections)
        _number_links(source, md.kb_links)
        return RenderedArticle(
            title=sections[0].title,
            anchor=sections[0].anchor,
            sections=sections,
            anchors=md.kb_anchors,
            links=md.kb_links,
            warnings=md.kb_warnings,
        )

    def anchor_warnings(self, source: str) -> list[tuple[int, str]]:
        """The warnings render() gives, which come from the source alone (repeated anchors),
        for much less work: only the line pass runs, not Markdown."""
        self._md.reset()
        self._md.preprocessors["kb_dialect"].run(source.split("\n"))
        return self._md.kb_warnings

    def render_toc(self, source: str, context: LinkContext) -> tuple[str, list[dict]]:
        """The title (its H1, or "") and table-of-contents tree of a guide's index.md.

        Each node is {"title", "slug", "href", "children"}; `slug` is set when the entry
        is an imported article, otherwise `href` points at the published page.
        """
        self._convert(source, context)
        title = next((self._text_of(h) for h in self._md.kb_headings if h.tag == "h1"), "")
        return title, [node for ul in self._md.kb_root.findall("ul") for node in self._toc_nodes(ul)]

    def _convert(self, source: str, context: LinkContext) -> str:
        self._context_holder["context"] = context
        self._md.reset()
        try:
            return self._md.convert(source)
        except RecursionError as exc:
            raise RenderError("markdown nests too deeply to render") from exc

    def _toc_nodes(self, ul: etree.Element) -> list[dict]:
        nodes = []
        for item in ul.findall("li"):
            link = item.find("a")
            if link is None:
                link = item.find("p/a")
            children = [node for sub in item.findall("ul") for node in self._toc_nodes(sub)]
            if link is None:
                nodes.extend(children)
                continue
            nodes.append({
                "title": self._text_of(link),
                "slug": link.get("data-kb-article", ""),
                "href": link.get("href", ""),
                "children": children,
            })
        return nodes

    def _text_of(self, element: etree.Element) -> str:
        """Plain text of a heading or link; Markdown keeps inline HTML and entities aside."""
        stash = self._md.htmlStash.rawHtmlBlocks
        text = HTML_PLACEHOLDER_RE.sub(lambda m: str(stash[int(m.group(1))]), "".join(element.itertext()))
        return plain_text(sanitise(text))


def _check_lengths(source: str, sections: list[RenderedSection]) -> None:
    for section in sections:
        problem = (f"anchor is longer than {MAX_ANCHOR} characters" if len(section.anchor) > MAX_ANCHOR
                   else f"heading is longer than {MAX_TITLE} characters" if len(section.title) > MAX_TITLE else "")
        if problem:
            needle = section.anchor or section.title[:40]
            index = source.find(needle)
            raise RenderError(problem, source.count("\n", 0, index) + 1 if index >= 0 else None)


def _first_words(text: str) -> str:
    return Truncator(Truncator(text).words(UNTITLED_WORDS)).chars(UNTITLED_CHARS)


def _first_line(source: str) -> int:
    for number, line in enumerate(source.splitlines(), 1):
        if line.strip():
            return number
    return 1


def _number_links(source: str, links: list[Link]) -> None:
    """Set each link's source line, for pointing authors at a broken one.

    Links come in document order, so each is looked for after the previous one and a link
    repeated on many lines gets each line; one found only earlier (a reference definition
    used again) gets its first mention.
    """
    line_starts = [0, *(match.end() for match in re.finditer("\n", source))]
    cursor = 0
    for link in links:
        index = _find_href(source, link.href, cursor)
        if index >= 0:
            cursor = index + 1
        else:
            index = _find_href(source, link.href, 0)
        if index >= 0:
            link.line = bisect.bisect_right(line_starts, index)


def _find_href(source: str, href: str, start: int) -> int:
    """Where `(href` is written, allowing for the backslash escapes rendering removed (`a\\_b`)."""
    index = source.find(f"({href}", start)
    if index < 0:
        escaped = "".join(f"\\\\?{re.escape(c)}" if c in string.punctuation else re.escape(c) for c in href)
        found = re.compile(escaped).search(source, start)
        index = found.start() if found else -1
    return index
