"""Section search: one result contract whichever engine answers.

`search()` analyses the text, asks the engine for candidates, and ranks them with
the same rules for every engine: scores relative to the best hit, a prior for
troubleshooting articles when the query is an error, and at most a few sections per
article (the rest counted as "more in this article").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from django.utils.safestring import SafeString

from kb.models import Section

from .engines import get_engine
from .query import AnalysedQuery, analyse
from .snippets import highlight

CANDIDATES = 200
PER_ARTICLE = 3
# Relative boost for sections of troubleshooting articles when the query is a pasted
# error: those articles are written to answer exactly that kind of query.
TROUBLESHOOTING_PRIOR = 1.0


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
        article = self.section.article
        return {
            "guide": article.guide.slug,
            "article": article.slug,
            "anchor": self.section.anchor,
            "title": self.section.title,
            "article_title": article.title,
            "url": self.url,
            "snippet": str(self.snippet),
            "score": round(self.score, 4),
        }


@dataclass
class SearchResults:
    query: AnalysedQuery
    results: list[Result] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.results)


def is_troubleshooting(section: Section) -> bool:
    article = section.article
    return "troubleshoot" in article.slug.lower() or "troubleshoot" in article.title.lower()


def search(text: str, *, guide: str = "", limit: int = CANDIDATES, per_article: int = PER_ARTICLE) -> SearchResults:
    """Ranked sections for a question or a pasted error (any-term semantics)."""
    query = analyse(text)
    found = SearchResults(query)
    if query.is_empty:
        return found
    candidates = get_engine().search(query.terms, query.phrases, guide=guide, limit=CANDIDATES)
    if not candidates:
        return found
    sections = Section.objects.with_article().in_bulk([c.section_id for c in candidates])
    top = max(c.score for c in candidates) or 1.0
    ranked = []
    for candidate in candidates:
        section = sections.get(candidate.section_id)
        if section is None:  # removed since the index was read
            continue
        score = candidate.score / top
        if query.is_error and is_troubleshooting(section):
            score *= 1 + TROUBLESHOOTING_PRIOR
        ranked.append(Result(section, score, tuple(query.terms)))
    ranked.sort(key=lambda r: (-r.score, r.section.pk))
    shown: dict[int, Result] = {}
    per: dict[int, int] = {}
    for result in ranked:
        article_id = result.section.article_id
        per[article_id] = per.get(article_id, 0) + 1
        if per[article_id] <= per_article:
            found.results.append(result)
            shown[article_id] = result
        else:
            shown[article_id].more_in_article += 1
    found.results = found.results[:limit]
    return found
