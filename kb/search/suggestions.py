"""Title suggestions for the search box: the topics whose titles hold every typed word.

Asked at every pause in typing, so it scans a list of the topics' titles that each worker
builds once per content generation (`kb.cache.memoised`) instead of querying the database:
`icontains` cannot use an index, and the list is small (a few thousand titles for the
nine reference guides). bench/suggest.py measures both.
"""

from __future__ import annotations

from dataclasses import dataclass

from kb.cache import memoised
from kb.models import Section

SUGGESTIONS = 8
MAX_WORDS = 6  # every word, in any order: "temp cred" finds "temporary credentials"


@dataclass(frozen=True)
class Topic:
    folded: str  # the title, casefolded, to match against
    title: str
    article_title: str
    url: str

    def as_dict(self) -> dict:
        return {"title": self.title, "article_title": self.article_title, "url": self.url}


@memoised
def topics() -> tuple[Topic, ...]:
    """Every topic, in the order suggestions are shown: articles' main sections first, then by title."""
    sections = Section.objects.topics().select_related("article__guide").only(
        "title", "anchor", "level", "article__slug", "article__title", "article__guide__slug"
    ).order_by("level", "title")
    return tuple(Topic(s.title.casefold(), s.title, s.article.title, s.get_absolute_url()) for s in sections)


def suggest_titles(typed: str) -> list[dict]:
    """Up to SUGGESTIONS topics whose titles contain each of the first MAX_WORDS typed words."""
    words = [word.casefold() for word in typed.split()[:MAX_WORDS]]
    if not words:
        return []
    found = []
    for topic in topics():
        if all(word in topic.folded for word in words):
            found.append(topic.as_dict())
            if len(found) == SUGGESTIONS:
                break
    return found
