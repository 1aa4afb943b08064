"""Markdown rendering for the AWS-documentation dialect: the only place Markdown is configured.

`render_article()` turns one article's source into sanitised HTML split into sections,
each keyed by the author's `<a name>` anchor. It is pure (no database), so the importer can
run it in worker processes and tests can call it directly.
"""

from __future__ import annotations

import html
import re
import string
import xml.etree.ElementTree as etree
from dataclasses import dataclass, field
from html.parser import HTMLParser

import markdown
import nh3
from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor

# Part of every article's content hash: bump it when rendering changes so a re-import
# re-renders everything instead of treating old HTML as unchanged.
RENDER_VERSION = "1"

# Private-use characters never occur in real content, so they can carry anchor markers
# through Markdown's inline patterns untouched.
HEADING_MARK = "\ue000"
INLINE_MARK = "\ue001"
MARK_END = "\ue002"
MARKER = re.compile(f"([{HEADING_MARK}{INLINE_MARK}])(\\d+){MARK_END}")
SECTION_BREAK = "<kb-section-break></kb-section-break>"

ANCHOR_TAG = re.compile(r"""<a\s+name\s*=\s*["']([^"']*)["']\s*>\s*</a>""", re.IGNORECASE)
HEADING_LINE = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
LIST_MARKER = re.compile(r"^( *)([+*-]|\d+[.)])( +|$)")
FENCE = re.compile(r"^( *)(`{3,}|~{3,})")
HEADING_TAG = re.compile(r"h[1-6]")
CALLOUTS = {"note", "notes", "important", "warning", "tip", "caution"}

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre",
    "s", "samp", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "ul", "var",
}
ALLOWED_ATTRIBUTES = {
    "*": {"id", "class", "title"},
    "a": {"href", "rel"},
    "img": {"src", "alt", "width", "height"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan", "scope"},
    "ol": {"start"},
}


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
    anchors: set[str]
    links: list[Link] = field(default_factory=list)
    warnings: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class LinkContext:
    """What link rewriting needs to know about the guide being imported."""

    guide: str
    base_url: str
    articles: frozenset[str]
    article_url: str  # URL template containing {guide} and {article}


def normalise_indentation(lines: list[str]) -> list[str]:
    """Re-indent list content to Python-Markdown's four spaces per level.

    The dialect nests lists with 2 or 3 spaces and indents fenced code inside list items
    by 2; Python-Markdown needs 4 for both. Code inside fences keeps its relative indent.
    """
    out: list[str] = []
    open_items: list[int] = []  # indent of each open list item's marker
    fence: str | None = None
    shift = 0
    previous_blank = True
    for line in lines:
        if fence is not None:
            if shift >= 0:
                out.append(" " * shift + line if line.strip() else line)
            else:
                strip = min(-shift, len(line) - len(line.lstrip(" ")))
                out.append(line[strip:])
            if line.strip().startswith(fence) and not line.strip()[len(fence):].strip():
                fence = None
            continue
        if not line.strip():
            out.append(line)
            previous_blank = True
            continue
        indent = len(line) - len(line.lstrip(" "))
        marker = LIST_MARKER.match(line)
        if marker or (open_items and indent > 0):
            while open_items and open_items[-1] >= indent:
                open_items.pop()
            new_indent = 4 * len(open_items)
            if marker:
                open_items.append(indent)
        else:
            if indent == 0 and previous_blank:
                open_items = []
            new_indent = indent
        opening = FENCE.match(line)
        if opening:
            fence = opening.group(2)
            shift = new_indent - indent
        out.append(" " * new_indent + line[indent:])
        previous_blank = False
    return out


class DialectPreprocessor(Preprocessor):
    """Normalise indentation and turn `<a name>` anchors into markers the tree step resolves."""

    def run(self, lines: list[str]) -> list[str]:
        anchors: list[str] = []
        self.md.kb_anchors = anchors

        def mark(kind: str, name: str) -> str:
            anchors.append(name)
            return f"{kind}{len(anchors) - 1}{MARK_END}"

        out = []
        in_fence = None
        for line in normalise_indentation(lines):
            opening = FENCE.match(line)
            if in_fence:
                if line.strip().startswith(in_fence):
                    in_fence = None
                out.append(line)
                continue
            if opening:
                in_fence = opening.group(2)
                out.append(line)
                continue
            heading = HEADING_LINE.match(line)
            if heading and ANCHOR_TAG.search(heading.group(2)):
                names = ANCHOR_TAG.findall(heading.group(2))
                title = ANCHOR_TAG.sub("", heading.group(2)).strip()
                line = f"{heading.group(1)} {title}{mark(HEADING_MARK, names[0])}"
                for extra in names[1:]:
                    line += mark(INLINE_MARK, extra)
            else:
                line = ANCHOR_TAG.sub(lambda m: mark(INLINE_MARK, m.group(1)), line)
            out.append(line)
        return out


class DialectTreeprocessor(Treeprocessor):
    """Set heading ids, rewrite links, mark callouts, and split the tree into sections."""

    def __init__(self, md: markdown.Markdown, context_holder: dict):
        super().__init__(md)
        self.context_holder = context_holder

    def run(self, root: etree.Element) -> None:
        context: LinkContext = self.context_holder["context"]
        anchors: list[str] = self.md.kb_anchors
        self.md.kb_links = []
        self.md.kb_headings = []
        self.md.kb_root = root
        for parent in root.iter():
            self._resolve_markers(parent, anchors)
        for element in root.iter("a"):
            self._rewrite_link(element, context)
        for element in root.iter("p"):
            self._mark_callout(element)
        # Section breaks go before each top-level anchored heading.
        # A section starts at each top-level anchored heading, and at the title even
        # when its author gave it no anchor.
        children = list(root)
        first_h1 = next((child for child in children if child.tag == "h1"), None)
        for index in range(len(children) - 1, -1, -1):
            child = children[index]
            if HEADING_TAG.fullmatch(child.tag) and (child.get("id") is not None or child is first_h1):
                self.md.kb_headings.insert(0, child)
                if index > 0:
                    root.insert(index, etree.Element("kb-section-break"))

    def _resolve_markers(self, element: etree.Element, anchors: list[str]) -> None:
        def take(text: str | None, owner: etree.Element) -> str | None:
            if not text or (HEADING_MARK not in text and INLINE_MARK not in text):
                return text
            for kind, index, in MARKER.findall(text):
                name = anchors[int(index)]
                if kind == HEADING_MARK and HEADING_TAG.fullmatch(owner.tag):
                    owner.set("id", name)
                elif owner.get("id") is None:
                    owner.set("id", name)
                else:
                    span = etree.SubElement(owner, "span")
                    span.set("id", name)
            return MARKER.sub("", text)

        element.text = take(element.text, element)
        for child in element:
            child.tail = take(child.tail, element)

    def _rewrite_link(self, element: etree.Element, context: LinkContext) -> None:
        href = (element.get("href") or "").strip()
        if not href or href.startswith(("mailto:",)):
            return
        if re.match(r"^[a-z][a-z0-9+.-]*:", href, re.IGNORECASE) or href.startswith("//"):
            element.set("class", "external")
            element.set("rel", "external noopener noreferrer")
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
        published = re.sub(r"\.md$", ".html", path)
        element.set("href", context.base_url + published + (f"#{anchor}" if anchor else ""))
        element.set("class", "external")
        element.set("rel", "external noopener noreferrer")

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


class DialectExtension(Extension):
    def __init__(self, context_holder: dict):
        super().__init__()
        self.context_holder = context_holder

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        # Every ASCII punctuation character can be backslash-escaped, as in CommonMark.
        md.ESCAPED_CHARS = sorted(set(md.ESCAPED_CHARS) | set(string.punctuation))
        md.preprocessors.register(DialectPreprocessor(md), "kb_dialect", 35)
        # Below Markdown's own "unescape" (priority 0) so text holds real characters.
        md.treeprocessors.register(DialectTreeprocessor(md, self.context_holder), "kb_dialect", -10)


class TextExtractor(HTMLParser):
    """Plain text of sanitised HTML, with blocks separated so words never run together."""

    BLOCKS = {"p", "li", "pre", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "br",
              "div", "dt", "dd", "blockquote", "table", "ul", "ol"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    @classmethod
    def text_of(cls, fragment: str) -> str:
        parser = cls()
        parser.feed(fragment)
        parser.close()
        text = "".join(parser.parts)
        return re.sub(r"[ \t\r\f\v]*\n\s*", "\n", re.sub(r"[ \t\r\f\v]+", " ", text)).strip()


def sanitise(fragment: str) -> str:
    """Clean untrusted HTML: no scripts, event handlers or javascript: URLs survive."""
    return nh3.clean(
        fragment,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel=None,
        strip_comments=True,
    )


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
        self._context_holder["context"] = context
        md = self._md
        md.reset()
        try:
            body = md.convert(source)
        except RecursionError as exc:
            raise RenderError("markdown nests too deeply to render") from exc
        headings = md.kb_headings
        if not headings or headings[0].tag != "h1":
            raise RenderError("article has no '# Title' heading before its first section", _first_line(source))
        chunks = body.split(SECTION_BREAK)
        sections: list[RenderedSection] = []
        warnings: list[tuple[int, str]] = []
        seen: set[str] = set()
        offset = 0 if chunks[0].lstrip().startswith("<h") else 1
        if offset:
            # Content before the first anchored heading belongs to the article's top.
            chunks[1] = chunks[0] + chunks[1]
        for position, (heading, chunk) in enumerate(zip(headings, chunks[offset:])):
            anchor = heading.get("id", "")
            if anchor in seen:
                # Keep the section addressable; links to the anchor land on its first use.
                unique = next(f"{anchor}-{n}" for n in range(2, 1000) if f"{anchor}-{n}" not in seen)
                warnings.append((_line_of(source, f'"{anchor}"', after=sections[-1].title),
                                 f"anchor {anchor!r} is used by two headings; the second is #{unique}"))
                chunk = chunk.replace(f'id="{anchor}"', f'id="{unique}"', 1)
                anchor = unique
            seen.add(anchor)
            clean = sanitise(chunk)
            sections.append(
                RenderedSection(
                    anchor=anchor,
                    title=_heading_text(heading),
                    level=int(heading.tag[1]),
                    position=position,
                    html=clean,
                    text=TextExtractor.text_of(clean),
                )
            )
        for link in md.kb_links:
            link.line = _line_of(source, f"({link.href}")
        return RenderedArticle(
            title=sections[0].title,
            anchor=sections[0].anchor,
            sections=sections,
            anchors=set(md.kb_anchors),
            links=md.kb_links,
            warnings=warnings,
        )


    def render_toc(self, source: str, context: LinkContext) -> tuple[str, list[dict]]:
        """The title and table-of-contents tree of a guide's index.md.

        Each node is {"title", "slug", "href", "children"}; `slug` is set when the entry
        is an imported article, otherwise `href` points at the published page.
        """
        article = self.render(source, context)
        return article.title, [node for ul in self._md.kb_root.findall("ul") for node in _toc_nodes(ul)]


def _toc_nodes(ul: etree.Element) -> list[dict]:
    nodes = []
    for item in ul.findall("li"):
        link = item.find("a")
        if link is None:
            link = item.find("p/a")
        children = [node for sub in item.findall("ul") for node in _toc_nodes(sub)]
        if link is None:
            nodes.extend(children)
            continue
        nodes.append({
            "title": html.unescape(_heading_text(link)),
            "slug": link.get("data-kb-article", ""),
            "href": link.get("href", ""),
            "children": children,
        })
    return nodes


def _heading_text(heading: etree.Element) -> str:
    text = "".join(heading.itertext())
    return html.unescape(re.sub(r"\x02wzxhzdk:\d+\x03", "", text)).strip()


def _first_line(source: str) -> int:
    for number, line in enumerate(source.splitlines(), 1):
        if line.strip():
            return number
    return 1


def _line_of(source: str, needle: str, after: str = "") -> int:
    """1-based line of the first mention of `needle` (past `after`), for pointing authors at a problem."""
    start = max(source.find(after), 0) if after else 0
    index = source.find(needle, start) if needle else -1
    return source.count("\n", 0, index) + 1 if index >= 0 else 0
