"""SQLite FTS5 engine: BM25 over title, article title and body, with porter stemming.

FTS5's bm25() is computed for every row that matches any of a paste's terms, thousands of
rows, and took most of a pasted error's query. A term's share of it depends on the term and
the row alone, so each term's posting list is kept as packed arrays (its sections and their
BM25 weights without the term's rarity), built from the FTS5 index itself (its `fts5vocab`
instances) whenever an import changes it: a query sums its terms' lists with numpy, as
PostgreSQL's engine does, and leaves FTS5 only its phrases (and any term it cuts in several
tokens). The sum is the score FTS5's bm25() gives the whole query
(https://www.sqlite.org/fts5.html#the_bm25_function).

Query syntax: https://www.sqlite.org/fts5.html#full_text_query_syntax. Every term is
emitted as a double-quoted string, so nothing the user typed is ever FTS5 syntax.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from itertools import groupby
from operator import itemgetter

import numpy as np
from django.db import transaction

from .base import B, K1, Candidate, SearchEngine, remember, sum_by_section

TABLE = "kb_search_fts"
LISTS = "kb_search_fts_lists"  # stem -> its sections and their BM25 weights, built from TABLE
GUIDES = "kb_search_fts_guides"  # section -> guide (TABLE's own guide column is read row by row)
TOKENIZER = "porter unicode61 remove_diacritics 2"
TOKENS_CACHE_SIZE = 50_000

# A word -> its tokens as TABLE stores them (FTS5's tokenizer is not callable from Python, so a
# connection's own small FTS5 table tokenises the words a process has not seen).
_tokens: dict[str, tuple[str, ...]] = {}


def quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


class SQLiteEngine(SearchEngine):
    vendor = "sqlite"
    # A long paste is matched on its 16 rarest terms. The cap was set when FTS5 scored every
    # row matching any term (p95 28 -> 21 ms on the corpus, the same dev-set scores; 14 lost a
    # case), and the ranker is fitted with it. PostgreSQL's engine loses a case at 16, so it has no cap.
    RAREST_TERMS = 16
    COUNTS_PER_QUERY = 100  # scalar subqueries in one statement (SQLite allows 2,000 result columns)

    def exists(self) -> bool:
        with self.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM sqlite_master WHERE name IN (%s, %s, %s)", [TABLE, LISTS, GUIDES])
            return cursor.fetchone()[0] == 3

    def create(self) -> None:
        with self.cursor() as cursor:
            cursor.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5("
                f"title, context, body, guide UNINDEXED, hash UNINDEXED, tokenize = '{TOKENIZER}')"
            )
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {LISTS} (term TEXT PRIMARY KEY, ids BLOB NOT NULL,"
                           " weights BLOB NOT NULL)")
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {GUIDES} (section_id INTEGER PRIMARY KEY, guide TEXT NOT NULL)")
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {GUIDES}_guide ON {GUIDES} (guide, section_id)")

    def indexed_hashes(self) -> dict[int, str]:
        with self.cursor() as cursor:
            cursor.execute(f"SELECT rowid, hash FROM {TABLE}")
            return dict(cursor.fetchall())

    def delete(self, section_ids: list[int]) -> None:
        with self.cursor() as cursor:
            for start in range(0, len(section_ids), 500):
                batch = section_ids[start:start + 500]
                cursor.execute(
                    f"DELETE FROM {TABLE} WHERE rowid IN ({','.join(['%s'] * len(batch))})", batch
                )

    def insert(self, rows: list[dict]) -> None:
        with self.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {TABLE} (rowid, title, context, body, guide, hash) VALUES (%s, %s, %s, %s, %s, %s)",
                [(r["id"], r["title"], r["context"], r["body"], r["guide"], r["hash"]) for r in rows],
            )

    def sync(self):
        result = super().sync()
        if result.indexed or result.removed or not self._has_lists():
            # Rows written by an import leave the index in many segments, with deleted entries,
            # and every query reads them all: merging them took a pasted error's query from
            # 17.4 to 12.5 ms of CPU after a re-import of the corpus (0.2 s of CPU, same results).
            # https://www.sqlite.org/fts5.html#the_optimize_command
            with self.cursor() as cursor:
                cursor.execute(f"INSERT INTO {TABLE}({TABLE}) VALUES ('optimize')")
            self._build_lists()
        return result

    def _has_lists(self) -> bool:
        with self.cursor() as cursor:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {LISTS}) OR NOT EXISTS (SELECT 1 FROM {TABLE}_docsize)")
            return bool(cursor.fetchone()[0])

    def _build_lists(self) -> None:
        """Every term's posting list, whole: a weight depends on the mean section length.
        About 4 s for the corpus's 2.7 million token instances, streamed a term at a time."""
        weights = {"title": self.TITLE_WEIGHT, "context": self.CONTEXT_WEIGHT, "body": self.BODY_WEIGHT}
        instances = f"temp.{TABLE}_instances"
        with transaction.atomic(), self.cursor() as reader, self.cursor() as writer:
            reader.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {instances} USING fts5vocab(main, {TABLE}, instance)")
            reader.execute(f"SELECT doc, count(*) FROM {instances} GROUP BY doc")
            lengths = dict(reader.fetchall())  # tokens per row, every column
            average = sum(lengths.values()) / max(self.document_count(), 1)
            writer.execute(f"DELETE FROM {LISTS}")
            writer.execute(f"DELETE FROM {GUIDES}")
            writer.execute(f"INSERT INTO {GUIDES} (section_id, guide) SELECT rowid, guide FROM {TABLE}")
            reader.execute(f"SELECT term, doc, col, count(*) FROM {instances} GROUP BY term, doc, col ORDER BY term, doc")
            for term, instances_of_term in groupby(reader, key=itemgetter(0)):
                ids, weights_of_term = posting_list(instances_of_term, weights, lengths, average)
                writer.execute(f"INSERT INTO {LISTS} (term, ids, weights) VALUES (%s, %s, %s)",
                               [term, ids.tobytes(), weights_of_term.tobytes()])

    def document_count(self) -> int:
        with self.cursor() as cursor:
            # FTS5 keeps one row per document in its _docsize shadow table: far cheaper to count.
            cursor.execute(f"SELECT count(*) FROM {TABLE}_docsize")
            return cursor.fetchone()[0]

    def count_matching(self, terms):
        # One statement for all of a paste's new terms: each count is its own subquery.
        counts: dict[str, int] = {}
        with self.cursor() as cursor:
            for start in range(0, len(terms), self.COUNTS_PER_QUERY):
                batch = terms[start:start + self.COUNTS_PER_QUERY]
                cursor.execute("SELECT " + ", ".join([f"(SELECT count(*) FROM {TABLE} WHERE {TABLE} MATCH %s)"] * len(batch)),
                               [quote(term) for term in batch])
                counts.update(zip(batch, cursor.fetchone()))
        return counts

    def search(self, terms, phrases, *, guide="", limit=200):
        kept, frequency = self.informative(terms)
        tokens = self.tokens(kept)
        # Each term counts on its own, as FTS5 counts each phrase of an OR query (two terms
        # with one stem count twice); a term cut into several tokens is a phrase for FTS5.
        single = [tokens[t][0] for t in kept if len(tokens[t]) == 1]
        clauses = [quote(t) for t in kept if len(tokens[t]) > 1] + [quote(p) for p in phrases]
        total = max(frequency[""], 1)
        ids, scores = self._bm25(single, total)
        if guide and len(ids):
            in_guide = np.isin(ids, self._guide_sections(guide), assume_unique=True)
            ids, scores = ids[in_guide], scores[in_guide]
        if clauses:
            sql = (f"SELECT rowid, bm25({TABLE}, %s, %s, %s) FROM {TABLE} WHERE {TABLE} MATCH %s"
                   + (" AND guide = %s" if guide else ""))
            params = [self.TITLE_WEIGHT, self.CONTEXT_WEIGHT, self.BODY_WEIGHT, " OR ".join(clauses)]
            with self.cursor() as cursor:
                cursor.execute(sql, params + ([guide] if guide else []))
                matched = cursor.fetchall()
            if matched:
                # bm25() is lower-is-better; flip it so every engine's score grows with relevance.
                ids, scores = sum_by_section(
                    np.concatenate([ids, np.fromiter((row[0] for row in matched), dtype=np.int64, count=len(matched))]),
                    np.concatenate([scores, np.fromiter((-row[1] for row in matched), dtype=np.float64, count=len(matched))]))
        best = np.lexsort((ids, -scores))[:limit]
        return [Candidate(section_id=sid, score=score) for sid, score in zip(ids[best].tolist(), scores[best].tolist())]

    def _bm25(self, terms: list[str], total: int) -> tuple[np.ndarray, np.ndarray]:
        """(section ids, BM25 scores) of the sections holding any of the stems, each counted
        once per time it is in `terms`, with FTS5's rarity (idf) of it among `total` sections."""
        if not terms:
            return np.empty(0, dtype=np.int64), np.empty(0)
        with self.cursor() as cursor:
            cursor.execute(f"SELECT term, ids, weights FROM {LISTS} WHERE term IN ({', '.join(['%s'] * len(set(terms)))})",
                           sorted(set(terms)))
            lists = {term: (np.frombuffer(ids, dtype=np.int64), np.frombuffer(weights)) for term, ids, weights in cursor}
        found = [lists[t] for t in terms if t in lists]
        if not found:
            return np.empty(0, dtype=np.int64), np.empty(0)
        return sum_by_section(np.concatenate([sections for sections, _ in found]),
                              np.concatenate([weights * idf(len(sections), total) for sections, weights in found]))

    def _guide_sections(self, guide: str) -> np.ndarray:
        with self.cursor() as cursor:
            cursor.execute(f"SELECT section_id FROM {GUIDES} WHERE guide = %s", [guide])
            return np.array([row[0] for row in cursor.fetchall()], dtype=np.int64)

    def tokens(self, words: list[str]) -> dict[str, tuple[str, ...]]:
        """Each word's tokens as the index stores them (stems, in order)."""
        # get(), not `in` then [...]: another thread may clear the cache between the two.
        found = {w: tokens for w in words if (tokens := _tokens.get(w)) is not None}
        missing = sorted(set(words) - set(found))
        if missing:
            with self.cursor() as cursor:
                cursor.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.kb_words USING fts5(word, tokenize = '{TOKENIZER}')")
                cursor.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.kb_word_tokens USING fts5vocab(temp, kb_words, instance)")
                cursor.executemany("INSERT INTO temp.kb_words (rowid, word) VALUES (%s, %s)", list(enumerate(missing, 1)))
                cursor.execute("SELECT doc, term FROM temp.kb_word_tokens ORDER BY doc, offset")
                split: dict[str, list[str]] = {word: [] for word in missing}
                for doc, term in cursor.fetchall():
                    split[missing[doc - 1]].append(term)
                cursor.execute("DELETE FROM temp.kb_words")
            looked_up = {word: tuple(terms) for word, terms in split.items()}
            remember(_tokens, looked_up, TOKENS_CACHE_SIZE)
            found.update(looked_up)
        return found


def idf(sections: int, total: int) -> float:
    """FTS5's rarity of a term in `sections` of `total` rows (never 0, as in FTS5's bm25())."""
    value = math.log((total - sections + 0.5) / (sections + 0.5))
    return value if value > 0 else 1e-6


def posting_list(instances: Iterable[tuple[str, int, str, int]], column_weights: dict[str, float],
                 lengths: dict[int, int], average: float) -> tuple[np.ndarray, np.ndarray]:
    """(section ids, BM25 weights without the term's rarity) from one term's FTS5 (term, row,
    column, count) instances, in row order: each weight as FTS5's bm25() computes the term's
    share of a row's score (its column-weighted count; the row's length in tokens against the mean)."""
    frequency: dict[int, float] = {}
    for _, row, column, count in instances:
        frequency[row] = frequency.get(row, 0.0) + column_weights[column] * count
    ids = np.fromiter(frequency, dtype=np.int64, count=len(frequency))
    counts = np.fromiter(frequency.values(), dtype=np.float64, count=len(frequency))
    length = np.fromiter((lengths[row] for row in frequency), dtype=np.float64, count=len(frequency))
    return ids, counts * (K1 + 1) / (counts + K1 * (1 - B + B * length / average))
