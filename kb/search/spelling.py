""""Did you mean": close matches for unknown words, from the indexed topic vocabulary."""

from __future__ import annotations

import difflib
import re

from kb.cache import content_version, fetch, store
from kb.models import Article, Section

from .engines import get_engine
from .query import AnalysedQuery

WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
TYPED_WORDS = 6  # typed queries this short get suggestions beside their results too


def vocabulary() -> frozenset[str]:
    """Words of every section and article title, cached until the next import changes content
    (through kb.cache, which falls back to building them when the shared cache is down)."""
    latest, count = content_version()
    key = f"kb:vocabulary:{latest.isoformat() if latest else 'empty'}:{count}"
    words = fetch(key)
    if words is None:
        titles = list(Section.objects.values_list("title", flat=True)) + list(
            Article.objects.values_list("title", flat=True)
        )
        words = frozenset(w.lower() for title in titles for w in WORD.findall(title))
        store(key, words)
    return words


def suggest(text: str) -> str:
    """`text` with each unknown word replaced by its closest known word; "" when nothing changes."""
    words = vocabulary()
    if not words:
        return ""
    changed = False
    out = []
    for token in re.split(r"(\W+)", text.strip()[:200]):
        lower = token.lower()
        if WORD.fullmatch(token) and lower not in words:
            match = difflib.get_close_matches(lower, words, n=1, cutoff=0.75)
            if match:
                out.append(match[0])
                changed = True
                continue
        out.append(token)
    return "".join(out) if changed else ""


def has_unknown_word(query: AnalysedQuery) -> bool:
    """Whether a few typed words include one no section contains: likely misspelt, even when
    the others found something. A pasted error is what a terminal printed, so never."""
    if query.is_error or len(query.terms) > TYPED_WORDS:
        return False
    return 0 in get_engine().document_frequencies(query.terms).values()
