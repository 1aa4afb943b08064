"""Highlighted snippets: escape first, then mark, so no content or query HTML ever runs."""

from __future__ import annotations

import re
from collections import Counter

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WINDOW = 220  # characters shown around the best match (about 32 words)
LEAD = 30  # characters of context kept before the first match in the window
PLAIN_LENGTH = 240  # characters shown when nothing matches
# The window is looked for in a section's first characters: a reference table of 100,000
# characters took 15 ms to scan for a paste's terms, a page of results with it 20 ms.
SCAN_CHARS = 20_000
WORD_CHARS = 40  # past the window, a snippet runs on to the end of its last word if it ends this soon


def _stem(term: str) -> str:
    # Engines stem ("policies" -> "polici"), so match on a prefix rather than the whole word.
    return term if len(term) <= 4 else term[: max(4, len(term) - 2)]


def _matcher(terms: list[str]) -> re.Pattern | None:
    stems = sorted({_stem(t.lower()) for t in terms if t}, key=len, reverse=True)
    if not stems:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(s) for s in stems) + r")\w*", re.UNICODE)


def highlight(text: str, terms: list[str], *, window: int = WINDOW) -> SafeString:
    """The window of `text` with the most distinct query terms, each match in <mark>."""
    matcher = _matcher(terms)
    hits = _matches(matcher, text, 0, SCAN_CHARS) if matcher else []
    if not hits:
        cut = text[:PLAIN_LENGTH]
        return mark_safe(escape(cut) + (" …" if len(text) > PLAIN_LENGTH else ""))  # escaped just above
    # The window (in characters) holding the most distinct hits, sliding over the hits.
    keys = [text[start:end][:5].lower() for start, end in hits]
    best, best_score, last = 0, -1, 0
    inside: Counter[str] = Counter()
    for first in range(len(hits)):
        while last < len(hits) and hits[last][1] <= hits[first][0] + window:
            inside[keys[last]] += 1
            last += 1
        if len(inside) > best_score:
            best, best_score = first, len(inside)
        inside[keys[first]] -= 1
        if not inside[keys[first]]:
            del inside[keys[first]]
    start = hits[best][0]
    begin = max(0, start - LEAD)
    space = text.find(" ", begin, start)
    begin = space + 1 if begin and space >= 0 else begin  # start at a word
    # End at a word, unless none ends soon (a key, a blob of base64): the snippet stays a snippet.
    end = text.find(" ", begin + window, begin + window + WORD_CHARS)
    end = min(len(text), begin + window) if end < 0 else end
    pieces = ["… " if begin > 0 else ""]
    cursor = begin
    for hit_start, hit_end in _matches(matcher, text, begin, end):
        pieces.append(escape(text[cursor:hit_start]))
        pieces.append(f"<mark>{escape(text[hit_start:hit_end])}</mark>")
        cursor = hit_end
    pieces.append(escape(text[cursor:end]))
    pieces.append(" …" if end < len(text) else "")
    # Every piece of text was escaped above; only our own <mark> tags are HTML.
    return mark_safe("".join(pieces))


def _matches(matcher: re.Pattern, text: str, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) in `text` of each match within text[start:end], found by lower-casing that
    part alone (and the character before it, for word boundaries): a long section costs no more."""
    offset = max(0, start - 1)
    part = text[offset:end]
    # Matching lower-cased text is much faster than a case-insensitive pattern; the rare
    # text whose length changes when lower-cased is matched as it is.
    folded = part.lower()
    source = folded if len(folded) == len(part) else part
    return [(offset + m.start(), offset + m.end()) for m in matcher.finditer(source, start - offset)]
