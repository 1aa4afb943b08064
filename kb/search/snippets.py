"""Highlighted snippets: escape first, then mark, so no content or query HTML ever runs."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WORD = re.compile(r"\w+", re.UNICODE)
WINDOW = 32  # words shown around the best match
PLAIN_LENGTH = 240  # characters shown when nothing matches


def _stem(term: str) -> str:
    # Engines stem ("policies" -> "polici"), so match on a prefix rather than the whole word.
    return term if len(term) <= 4 else term[: max(4, len(term) - 2)]


def _matcher(terms: list[str]) -> re.Pattern | None:
    stems = sorted({_stem(t.lower()) for t in terms if t}, key=len, reverse=True)
    if not stems:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(s) for s in stems) + r")\w*", re.IGNORECASE | re.UNICODE)


def highlight(text: str, terms: list[str], *, window: int = WINDOW) -> SafeString:
    """The window of `text` with the most distinct query terms, each match in <mark>."""
    matcher = _matcher(terms)
    hits = list(matcher.finditer(text)) if matcher else []
    if not hits:
        cut = text[:PLAIN_LENGTH]
        return mark_safe(escape(cut) + (" …" if len(text) > PLAIN_LENGTH else ""))  # escaped just above
    words = [m.start() for m in WORD.finditer(text)]
    # Word index of each hit, then the window (in words) holding the most distinct hits.
    positions = [bisect_left(words, hit.start()) for hit in hits]
    keys = [hit.group().lower()[:5] for hit in hits]
    best, best_score, last = 0, -1, 0
    inside: Counter[str] = Counter()
    for first in range(len(hits)):  # a sliding window over the hits, in words
        while last < len(hits) and positions[last] < positions[first] + window:
            inside[keys[last]] += 1
            last += 1
        if len(inside) > best_score:
            best, best_score = first, len(inside)
        inside[keys[first]] -= 1
        if not inside[keys[first]]:
            del inside[keys[first]]
    first_word = max(0, positions[best] - 4)
    begin = words[first_word] if first_word < len(words) else 0
    last_word = min(len(words) - 1, first_word + window)
    end = text.find(" ", words[last_word]) if last_word < len(words) - 1 else len(text)
    end = len(text) if end < 0 else end
    pieces = ["… " if begin > 0 else ""]
    cursor = begin
    for hit in hits:
        if hit.start() < begin or hit.end() > end:
            continue
        pieces.append(escape(text[cursor:hit.start()]))
        pieces.append(f"<mark>{escape(hit.group())}</mark>")
        cursor = hit.end()
    pieces.append(escape(text[cursor:end]))
    pieces.append(" …" if end < len(text) else "")
    # Every piece of text was escaped above; only our own <mark> tags are HTML.
    return mark_safe("".join(pieces))
