"""Title suggestions for the search box: the topics whose titles hold every typed word.

Asked at every pause in typing, so the words are looked for in an index each worker builds
once per content generation (`kb.cache.memoised`): every topic's casefolded title, one a
line, in the order suggestions are shown, searched with `str.find` at C speed. Only the few
sections found are read from the database, by primary key. The `icontains` query this
replaces scanned every title in the database on every keystroke; bench/suggest.py
measures both.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

from kb.cache import memoised
from kb.models import Section

SUGGESTIONS = 8
MAX_WORDS = 6  # every word, in any order: "temp cred" finds "temporary credentials"


@dataclass(frozen=True)
class TitleIndex:
    text: str  # every topic's casefolded title, each followed by a newline
    starts: list[int]  # where each title starts in `text`
    ids: list[int]  # each title's section id

    def title(self, line: int) -> str:
        return self.text[self.starts[line]:self.text.index("\n", self.starts[line])]

    def lines_with(self, word: str) -> Iterator[int]:
        """The lines whose title contains `word` (which holds no whitespace), in order."""
        position = self.text.find(word)
        while position != -1:
            line = bisect.bisect_right(self.starts, position) - 1
            yield line
            position = self.text.find(word, self.text.index("\n", position) + 1)


@memoised
def title_index() -> TitleIndex:
    """The topics in the order suggestions are shown: articles' main sections first, then by title."""
    rows = Section.objects.topics().order_by("level", "title").values_list("pk", "title")
    starts, ids, titles, position = [], [], [], 0
    for pk, title in rows:
        folded = " ".join(title.casefold().split()) + "\n"
        starts.append(position)
        ids.append(pk)
        titles.append(folded)
        position += len(folded)
    return TitleIndex("".join(titles), starts, ids)


def suggest_titles(typed: str) -> list[dict]:
    """Up to SUGGESTIONS topics whose titles contain each of the first MAX_WORDS typed words:
    [{"title", "article_title", "url"}]."""
    words = sorted({word.casefold() for word in typed.split()[:MAX_WORDS]}, key=len, reverse=True)
    if not words:
        return []
    index = title_index()
    found = []
    for line in index.lines_with(words[0]):  # the longest word first: the fewest lines to check
        if all(word in index.title(line) for word in words[1:]):
            found.append(index.ids[line])
            if len(found) == SUGGESTIONS:
                break
    sections = Section.objects.select_related("article__guide").only(
        "title", "anchor", "article__slug", "article__title", "article__guide__slug"
    ).in_bulk(found) if found else {}
    return [
        {"title": s.title, "article_title": s.article.title, "url": s.get_absolute_url()}
        for s in (sections.get(pk) for pk in found) if s is not None  # gone since the index was built
    ]
