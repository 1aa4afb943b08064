"""Untrusted HTML made safe to store and show, and its plain text for search.

Content is untrusted input: nh3 (a maintained allowlist sanitiser) keeps the tags and
attributes articles need and drops scripts, event handlers and `javascript:` URLs. Ids
are the importer's (from the author's `<a name>` anchors) or none: raw HTML in the
markdown must not reuse the page's own ids.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from html.parser import HTMLParser

import nh3

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


def sanitise(fragment: str, ids: Collection[str] = ()) -> str:
    """Clean untrusted HTML: no scripts, event handlers or javascript: URLs survive, and no
    id but those in `ids` (the ones the importer assigned)."""
    kept = frozenset(ids)

    def keep_assigned_ids(element: str, attribute: str, value: str) -> str | None:
        return value if attribute != "id" or value in kept else None

    return nh3.clean(
        fragment,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=keep_assigned_ids,
        url_schemes={"http", "https", "mailto"},
        link_rel=None,
        strip_comments=True,
    )


def plain_text(fragment: str) -> str:
    """Plain text of sanitised HTML, blocks on their own lines so words never run together."""
    parser = _TextExtractor()
    parser.feed(fragment)
    parser.close()
    text = re.sub(r"[ \t\r\f\v]+", " ", "".join(parser.parts))
    return re.sub(r" ?\n\s*", "\n", text).strip()


class _TextExtractor(HTMLParser):
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
