"""The contract every full-text engine meets, and the index bookkeeping they share.

An engine owns its tables (one row per section, and what it derives from them), created
on demand (so models and migrations are the same on every database). `sync()` reconciles
them with the sections by comparing each row's article content hash, so it heals any drift
and costs little when nothing changed. `search()` takes analysed terms (never raw text) and
returns ranked candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection

from kb import cache
from kb.models import Section


@dataclass(frozen=True)
class Candidate:
    section_id: int
    score: float  # higher is better; comparable only within one result list


@dataclass(frozen=True)
class SyncResult:
    indexed: int
    removed: int


# Terms in more than this share of sections barely change a ranking but dominate the cost
# of an any-term query, so they are left out (phrases that contain them still count).
COMMON_TERM_SHARE = 0.3
MIN_TERMS = 3  # pruning keeps at least this many of a query's terms
PRUNE_FROM = 1000  # sections; a small index is cheap to search whole, and pruning would distort it
FREQUENCY_CACHE_SIZE = 50_000
K1, B = 1.2, 0.75  # BM25's usual constants, as FTS5 uses
SPAN_PER_POSTING = 16  # ids summed over their span while it is at most this many per posting

# (vendor, content generation, term) -> document frequency. The generation changes with
# every import that changes content, so entries never outlive the index they describe.
_frequencies: dict[tuple[str, str, str], int] = {}


def remember(store: dict, found: dict, limit: int) -> None:
    """Add `found` to a process's cache, emptying it first if it would outgrow `limit`
    (simple, and a cache refills within a few searches)."""
    if len(store) + len(found) > limit:
        store.clear()
    store.update(found)


class SearchEngine:
    """Base class; subclasses implement the SQL for one database vendor."""

    vendor: str = ""
    # Column weights: a match in a section's title counts most, then its article's title.
    TITLE_WEIGHT = 5.0
    CONTEXT_WEIGHT = 2.0
    BODY_WEIGHT = 1.0
    # At most this many of a query's terms are matched, the rarest: they identify a paste,
    # while each commoner one adds thousands of rows to score. None: no cap.
    RAREST_TERMS: int | None = None

    def count_matching(self, terms: list[str]) -> dict[str, int]:
        """Document frequency of each term (uncached)."""
        raise NotImplementedError

    def document_frequencies(self, terms: list[str]) -> dict[str, int]:
        """Document frequency of each term ("" counts every section), cached per content generation."""
        generation = str(cache.content_version())
        # get(), not `in` then [...]: another thread may clear the cache between the two.
        known = {t: n for t in terms if (n := _frequencies.get((self.vendor, generation, t))) is not None}
        missing = [t for t in terms if t not in known]
        if missing:
            counted = self.count_matching([t for t in missing if t])
            if "" in missing:
                counted[""] = self.document_count()
            remember(_frequencies, {(self.vendor, generation, t): n for t, n in counted.items()}, FREQUENCY_CACHE_SIZE)
            known.update(counted)
        return known

    def informative(self, terms: list[str], phrases: Sequence[str] = ()) -> tuple[list[str], dict[str, int]]:
        """The terms worth matching, in query order, and every frequency looked up (the
        phrases' too, counted in the same query).

        Terms absent from the index are dropped, and so are terms in most sections, but
        never below the rarest few: a one-word query for a common word still finds it.
        Beyond RAREST_TERMS, the commonest of the rest are dropped too.
        """
        frequency = self.document_frequencies(["", *terms, *phrases])
        total = max(frequency[""], 1)
        limit = COMMON_TERM_SHARE * total if total >= PRUNE_FROM else total
        present = [t for t in terms if frequency.get(t, 0) > 0]
        kept = [t for t in present if frequency[t] <= limit]
        if len(kept) < MIN_TERMS:
            common = sorted((t for t in present if t not in kept), key=lambda t: frequency[t])
            kept += common[:MIN_TERMS - len(kept)]
        if self.RAREST_TERMS is not None and len(kept) > self.RAREST_TERMS:
            rarest = set(sorted(kept, key=lambda t: frequency[t])[:self.RAREST_TERMS])
            kept = [t for t in kept if t in rarest]
        return kept, frequency

    def exists(self) -> bool:
        raise NotImplementedError

    def create(self) -> None:
        raise NotImplementedError

    def indexed_hashes(self) -> dict[int, str]:
        """section id -> article content hash of every indexed row."""
        raise NotImplementedError

    def delete(self, section_ids: list[int]) -> None:
        raise NotImplementedError

    def insert(self, rows: list[dict]) -> None:
        """Index rows of {id, hash, guide, title, context, body}."""
        raise NotImplementedError

    def search(self, terms: list[str], phrases: list[str], *, guide: str = "", limit: int = 200) -> list[Candidate]:
        """Sections matching any term or phrase (a run of words), best first."""
        raise NotImplementedError

    def document_count(self) -> int:
        raise NotImplementedError

    def sync(self) -> SyncResult:
        """Bring the index in line with the sections table (delete() and insert() are its steps;
        an engine may derive more from their rows here, as PostgreSQL its posting lists)."""
        if not self.exists():
            self.create()
        current = dict(Section.objects.values_list("id", "article__content_hash"))
        indexed = self.indexed_hashes()
        stale = [sid for sid, digest in indexed.items() if current.get(sid) != digest]
        missing = [sid for sid, digest in current.items() if indexed.get(sid) != digest]
        self.delete(stale)
        for start in range(0, len(missing), 500):
            batch = missing[start:start + 500]
            rows = Section.objects.filter(id__in=batch).values(
                "id", "title", "text", "article__title", "article__content_hash", "article__guide__slug"
            )
            self.insert([
                {
                    "id": row["id"],
                    "hash": row["article__content_hash"],
                    "guide": row["article__guide__slug"],
                    "title": row["title"],
                    "context": row["article__title"],
                    "body": row["text"],
                }
                for row in rows
            ])
        return SyncResult(indexed=len(missing), removed=len(stale))

    @staticmethod
    def cursor():
        return connection.cursor()

    @staticmethod
    def in_guide(ids: np.ndarray, scores: np.ndarray, guide: str) -> tuple[np.ndarray, np.ndarray]:
        """The (section ids, scores) of the guide's sections among them."""
        kept = np.isin(ids, guide_sections(guide=guide), assume_unique=True)
        return ids[kept], scores[kept]


@cache.memoised
def guide_sections(*, guide: str) -> np.ndarray:
    """The guide's section ids, read once per content generation rather than by every search
    filtered to the guide (thousands of ids for a large guide)."""
    ids = np.fromiter(Section.objects.filter(article__guide__slug=guide).values_list("pk", flat=True), dtype=np.int64)
    ids.flags.writeable = False  # shared by the worker's threads
    return ids


def sum_by_section(ids: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct ids ascending, the sum of their weights), every weight positive.

    Section ids are mostly dense: summing over their span costs 8 bytes an id and a
    twentieth of the time of sorting them. Years of re-imports can spread them far apart,
    and then sorting is the smaller cost.
    """
    first = ids.min()
    span = ids.max() - first + 1
    if span <= SPAN_PER_POSTING * len(ids):
        sums = np.bincount(ids - first, weights=weights)
        found = np.flatnonzero(sums)
        return found + first, sums[found]
    sections, at = np.unique(ids, return_inverse=True)
    return sections, np.bincount(at, weights=weights)
