"""Section search: one result contract whichever engine answers.

`search()` analyses the text, asks the engine for candidates, and ranks them with
the same rules for every engine: scores relative to the best hit, a prior for
troubleshooting articles when the query is an error, and at most a few sections per
article (the rest counted as "more in this article"). Ranking needs only ids and
article names; full sections are loaded for the results actually shown. Rankings are
cached under the analysed query and the content version: the same error pasted again, with
other account or request ids, is ranked once until the next import changes content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import astuple, dataclass, field
from functools import cached_property

from django.db import connection
from django.utils.safestring import SafeString

from kb import cache
from kb.models import Section, is_troubleshooting

from .engines import get_engine
from .query import AnalysedQuery, analyse, tokens
from .snippets import highlight

CANDIDATES = 100
PER_ARTICLE = 3
# Relative boost for sections of troubleshooting articles when the query is a pasted
# error: those articles are written to answer exactly that kind of query.
TROUBLESHOOTING_PRIOR = 1.0
# Troubleshooting headings state the problem, so a heading that shares many of the
# query's words is likely the answer: up to this much is added for full coverage.
HEADING_COVERAGE_WEIGHT = 0.3
HEADING_COVERAGE_TERMS = 10  # coverage counts at most this many query terms


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
    more_in_article: int = 0


@dataclass
class Result:
    section: Section
    score: float
    terms: tuple[str, ...] = ()
    more_in_article: int = 0

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
            Result(sections[r.section_id], r.score, terms, r.more_in_article)
            for r in ranked if r.section_id in sections  # a section removed since ranking is skipped
        ]


def _stem(word: str) -> str:
    # A crude stem is enough to compare a heading with a query (policies ~ policy).
    return word[:5]


def heading_coverage(query_stems: set[str], heading: str) -> float:
    """Share of the query's words (up to HEADING_COVERAGE_TERMS) that the heading contains."""
    if not query_stems:
        return 0.0
    shared = query_stems & {_stem(w) for w in tokens(heading)}
    return len(shared) / min(len(query_stems), HEADING_COVERAGE_TERMS)


def search(text: str, *, guide: str = "", limit: int = CANDIDATES, per_article: int = PER_ARTICLE) -> SearchResults:
    """Ranked sections for a question or a pasted error (any-term semantics)."""
    query = analyse(text)
    found = SearchResults(query)
    if query.is_empty:
        return found
    # Section ids are one database's, and the code decides the ranking as much as the content.
    key = "ranking:" + hashlib.sha256(repr((
        connection.vendor, connection.settings_dict["NAME"], cache.release(), cache.content_version(),
        guide, per_article, query.is_error, query.terms, query.phrases,
    )).encode()).hexdigest()
    ranking = cache.fetch(key)
    if ranking is None:
        ranking = [astuple(entry) for entry in rank(query, guide=guide, per_article=per_article)]
        cache.store(key, ranking)
    found.ranked = [Ranked(*entry) for entry in ranking[:limit]]
    return found


def rank(query: AnalysedQuery, *, guide: str, per_article: int) -> list[Ranked]:
    """Up to CANDIDATES sections from the engine, re-ranked and capped per article."""
    candidates = get_engine().search(query.terms, query.phrases, guide=guide, limit=CANDIDATES)
    if not candidates:
        return []
    rows = {
        row[0]: row[1:]
        for row in Section.objects.filter(pk__in=[c.section_id for c in candidates]).values_list(
            "pk", "title", "article_id", "article__slug", "article__title"
        )
    }
    top = max(c.score for c in candidates) or 1.0
    query_stems = {_stem(t) for t in query.terms if len(t) > 2}
    ranked = []
    for candidate in candidates:
        if candidate.section_id not in rows:  # removed since the index was read
            continue
        heading, article_id, slug, title = rows[candidate.section_id]
        score = candidate.score / top
        if query.is_error and is_troubleshooting(slug, title):
            score *= 1 + TROUBLESHOOTING_PRIOR
        score += HEADING_COVERAGE_WEIGHT * heading_coverage(query_stems, heading)
        ranked.append(Ranked(candidate.section_id, article_id, score))
    ranked.sort(key=lambda r: (-r.score, r.section_id))
    shown: dict[int, list[Ranked]] = {}
    kept = []
    for entry in ranked:
        same_article = shown.setdefault(entry.article_id, [])
        if len(same_article) < per_article:
            kept.append(entry)
            same_article.append(entry)
        else:
            same_article[-1].more_in_article += 1
    return kept
