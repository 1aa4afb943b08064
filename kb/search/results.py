"""Section search: one result contract whichever engine answers.

`search()` analyses the text, has kb.search.ranking gather and score candidates (the
same pipeline for every engine, and for recommend), and keeps at most a few sections per
article (the rest counted as "more in this article"). Ranking needs only ids and
features; full sections are loaded for the results actually shown. Rankings are cached
under the analysed query and the content version: the same error pasted again, with other
account or request ids, is ranked once until the next import changes content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeVar

from django.db import connection
from django.utils.safestring import SafeString

from kb import cache
from kb.models import Section

from . import ranking, semantic
from .query import AnalysedQuery, analyse
from .snippets import highlight

CANDIDATES = 100
PER_ARTICLE = 3

T = TypeVar("T")


def limit_per_article(items: Iterable[T], article: Callable[[T], Hashable], limit: int = PER_ARTICLE) -> list[T]:
    """The items in order, at most `limit` from one article: what a list of answers shows
    (recommend after its adjustments, and the evaluation of a fitted ranker)."""
    shown: dict[Hashable, int] = {}
    kept = []
    for item in items:
        key = article(item)
        if shown.get(key, 0) < limit:
            shown[key] = shown.get(key, 0) + 1
            kept.append(item)
    return kept


def result_dict(section: Section, snippet: str, score: float) -> dict:
    """A section as the JSON APIs return it (search and recommend share this contract)."""
    article = section.article
    return {
        "guide": article.guide.slug,
        "article": article.slug,
        "anchor": section.anchor,
        "title": section.title,
        "article_title": article.title,
        "url": section.get_absolute_url(),
        "snippet": snippet,
        "score": round(score, 4),
    }


@dataclass
class Ranked:
    section_id: int
    article_id: int
    score: float
    contributions: tuple[float, ...] = ()  # per ranking.FEATURES, for the reasons shown
    more_in_article: int = 0


@dataclass
class Result:
    section: Section
    score: float
    terms: tuple[str, ...] = ()
    more_in_article: int = 0
    contributions: tuple[float, ...] = ()

    @cached_property
    def snippet(self) -> SafeString:
        return highlight(self.section.text, list(self.terms))

    @property
    def url(self) -> str:
        return self.section.get_absolute_url()

    def as_dict(self) -> dict:
        return result_dict(self.section, str(self.snippet), self.score)


@dataclass
class SearchResults(Sequence):
    """Ranked results; a sequence (for pagination) whose slices load their sections on demand."""

    query: AnalysedQuery
    ranked: list[Ranked] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.ranked)

    def __len__(self) -> int:
        return len(self.ranked)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self._load(self.ranked[index])
        return self._load([self.ranked[index]])[0]

    @property
    def results(self) -> list[Result]:
        return self[:]

    def _load(self, ranked: list[Ranked]) -> list[Result]:
        sections = Section.objects.with_article().in_bulk([r.section_id for r in ranked])
        terms = tuple(self.query.terms)
        return [
            Result(sections[r.section_id], r.score, terms, r.more_in_article, r.contributions)
            for r in ranked if r.section_id in sections  # a section removed since ranking is skipped
        ]


def search(text: str, *, guide: str = "", limit: int = CANDIDATES, per_article: int = PER_ARTICLE) -> SearchResults:
    """Ranked sections for a question or a pasted error (any-term semantics)."""
    query = analyse(text)
    found = SearchResults(query)
    if query.is_empty:
        return found
    # Section ids are one database's, and the code decides the ranking as much as the content.
    key = "ranking:" + hashlib.sha256(repr((
        connection.vendor, connection.settings_dict["NAME"], cache.release(), cache.content_version(),
        guide, per_article, query.cleaned, ranking.current_ranker().fingerprint,
        semantic.index_version() if semantic.available() else None,
    )).encode()).hexdigest()
    entries = cache.fetch(key)
    if entries is None:
        entries = [(r.section_id, r.article_id, r.score, r.contributions, r.more_in_article)
                   for r in rank(query, guide=guide, per_article=per_article)]
        cache.store(key, entries)
    found.ranked = [Ranked(*entry) for entry in entries[:limit]]
    return found


def rank(query: AnalysedQuery, *, guide: str, per_article: int) -> list[Ranked]:
    """Scored candidates, best first, at most `per_article` from one article."""
    shown: dict[int, list[Ranked]] = {}
    kept = []
    for scored in ranking.rank(query, guide=guide)[:CANDIDATES]:
        entry = Ranked(scored.section_id, scored.facts.article_id, scored.score, scored.contributions)
        same_article = shown.setdefault(entry.article_id, [])
        if len(same_article) < per_article:
            kept.append(entry)
            same_article.append(entry)
        else:
            same_article[-1].more_in_article += 1
    return kept
