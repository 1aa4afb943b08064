"""Highlighted snippets: escape first, then mark, so no content or query HTML ever runs."""

from __future__ import annotations

import re

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WORD = re.compile(r"\w+", re.UNICODE)
WINDOW = 32  # words shown around the best match


def _stem(term: str) -> str:
    # Engines stem ("policies" -> "polici"), so match on a prefix rather than the whole word.
    return term if len(term) <= 4 else term[: max(4, len(term) - 2)]


def highlight(text: str, terms: list[str], *, window: int = WINDOW) -> SafeString:
    """The window of `text` with the most distinct query terms, each match in <mark>."""
    stems = sorted({_stem(t.lower()) for t in terms if t}, key=len, reverse=True)
    words = list(WORD.finditer(text))
    if not words:
        return mark_safe(escape(text[:240]))  # escaped just above

    def matched(word: str) -> str | None:
        lower = word.lower()
        return next((s for s in stems if lower.startswith(s)), None)

    hits = [matched(m.group()) for m in words]
    best_start, best_score = 0, -1
    for start in range(0, max(1, len(words) - window + 1), 4):
        score = len({h for h in hits[start:start + window] if h})
        if score > best_score:
            best_start, best_score = start, score
    first = words[best_start]
    last = words[min(best_start + window, len(words)) - 1]
    begin, end = first.start(), last.end()
    pieces = ["… " if begin > 0 else ""]
    cursor = begin
    for match, hit in zip(words[best_start:best_start + window], hits[best_start:best_start + window]):
        if hit:
            pieces.append(escape(text[cursor:match.start()]))
            pieces.append(f"<mark>{escape(match.group())}</mark>")
            cursor = match.end()
    pieces.append(escape(text[cursor:end]))
    pieces.append(" …" if end < len(text) else "")
    # Every piece of text was escaped above; only our own <mark> tags are HTML.
    return mark_safe("".join(pieces))
