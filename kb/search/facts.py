"""What ranking knows of every section, read in one pass per content generation.

A section's facts (guide, kind, level, heading words, the AWS entities it names and where)
change only with an import. A pasted error brings 100-200 candidates, most of them new to
the process: reading their facts, the sections about the paste's entities and where the
corpus mentions those took three queries and 7 ms of CPU, a sixth of a first-time search's
request thread. The whole corpus's facts take 20 MB and 0.3 s of CPU to read: each process
reads them once per content generation, at the first search that needs them, as
kb.search.semantic keeps its vectors.
"""

from __future__ import annotations

import gc
import math
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from kb import cache as kb_cache
from kb.models import Section, SectionEntity, is_troubleshooting

from .entities import HEADING, LEAD
from .query import STOPWORDS, tokens

Words = tuple[tuple[str, float], ...]  # (stem, its rarity among headings)


@dataclass(slots=True)
class Facts:
    """What ranking knows of one candidate section."""

    section_id: int
    article_id: int
    guide: str
    title: str
    kind: str
    level: int
    troubleshooting: bool
    zones: dict[str, str] = field(default_factory=dict)  # typed entity value -> HEADING, LEAD or BODY
    # The typed values its heading names, and those its lead names: `zones` split once per
    # content generation, for the contradiction checks every candidate of every paste runs.
    heading: frozenset[str] = frozenset()
    lead: frozenset[str] = frozenset()
    stems: frozenset[str] = frozenset()  # of its heading's words, to compare with the query's
    # What its heading and its article's title are about: their content words, each with its
    # rarity, so that ranking can tell how much of a heading the paste accounts for.
    heading_words: Words = ()
    article_words: Words = ()


@dataclass
class Corpus:
    """Every section's facts, and the entity tables ranking looks values up in."""

    sections: dict[int, Facts]
    about: dict[str, list[tuple[int, str]]]  # value -> (section id, HEADING or LEAD) naming it there
    articles: dict[str, Counter]  # value -> article id -> sections of the article naming it anywhere
    guides: dict[str, dict[str, float]]  # value -> guide -> share of the sections naming it that are there


def stem(word: str) -> str:
    # A crude stem is enough to compare a heading with a query (policies ~ policy, tags ~ tag).
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word[:5]


def content_stems(title: str) -> frozenset[str]:
    return frozenset(stem(w) for w in tokens(title) if len(w) > 2 and w not in STOPWORDS)


def read_corpus() -> Corpus:
    """Two queries: the sections, and their entity rows."""
    rows = list(Section.objects.values_list(
        "pk", "article_id", "article__guide__slug", "title", "kind", "level", "article__slug", "article__title"
    ).order_by())
    # A heading word's rarity is its inverse frequency among headings: the words that tell
    # one heading from another ("SAML" in a heading) weigh more than those many share ("access").
    # A word in (almost) every heading of a small guide tells nothing, and weighs nothing.
    content = {title: content_stems(title) for row in rows for title in (row[3], row[7])}
    headings = Counter(word for row in rows for word in content[row[3]])
    rarity = {word: max(0.0, math.log(len(rows) / (1 + n))) for word, n in headings.items()}
    # Sections of an article share its title's words, and sections titled alike their heading's.
    words = {title: tuple((word, rarity.get(word, math.log(len(rows)))) for word in sorted(stems))
             for title, stems in content.items()}
    sections = {
        pk: Facts(pk, article_id, guide, title, kind, level, is_troubleshooting(slug, article_title),
                  stems=frozenset(stem(w) for w in tokens(title)), heading_words=words[title],
                  article_words=words[article_title])
        for pk, article_id, guide, title, kind, level, slug, article_title in rows
    }
    about: dict[str, list[tuple[int, str]]] = defaultdict(list)
    articles: dict[str, Counter] = defaultdict(Counter)
    per_guide: dict[str, Counter] = defaultdict(Counter)
    for sid, value, zone in SectionEntity.objects.values_list("section_id", "value", "zone").order_by("id"):
        facts = sections.get(sid)
        if facts is None:  # written after the sections were read: the next generation has it
            continue
        facts.zones[value] = zone
        if zone in (HEADING, LEAD):
            about[value].append((sid, zone))
        articles[value][facts.article_id] += 1
        per_guide[value][facts.guide] += 1
    for facts in sections.values():
        if facts.zones:
            facts.heading = frozenset(v for v, zone in facts.zones.items() if zone == HEADING)
            facts.lead = frozenset(v for v, zone in facts.zones.items() if zone == LEAD)
    guides = {value: {g: n / sum(by.values()) for g, n in by.items()} for value, by in per_guide.items()}
    return Corpus(sections, dict(about), dict(articles), guides)


_kept: list = [None, None]  # [content generation, Corpus]
_reading = threading.Lock()  # threads of one process read the corpus once between them


def corpus() -> Corpus:
    """The corpus's facts under the current content generation, read again when it changes."""
    generation = kb_cache.content_generation()
    # Without the shared cache, the database's content version (one query) says when to read
    # again: reading the corpus for every search would cost more than the search.
    key = generation if generation is not None else ("version", kb_cache.content_version())
    with _reading:
        if _kept[0] != key:
            _kept[:] = [key, read_corpus()]
            # Its hundreds of thousands of references live until the next import, yet every
            # full pass of the cycle collector walked them: a search that set one off took
            # 80 ms longer (about one in a hundred). Frozen, the collector skips them; the
            # previous corpus is still freed when dropped (it holds no cycles).
            gc.freeze()
        return _kept[1]


def load_facts(section_ids: list[int]) -> dict[int, Facts]:
    """The facts of each section that exists, by id."""
    sections = corpus().sections
    return {sid: sections[sid] for sid in section_ids if sid in sections}
