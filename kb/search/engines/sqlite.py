"""SQLite FTS5 engine: BM25 over title, article title and body, with porter stemming; its
terms scored from posting lists kept beside the FTS5 index, the same scores as FTS5's bm25().

Query syntax: https://www.sqlite.org/fts5.html#full_text_query_syntax. Every term is
emitted as a double-quoted string, so nothing the user typed is ever FTS5 syntax.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from itertools import groupby
from operator import itemgetter

import numpy as np
from django.db import transaction

from .base import B, K1, Candidate, SearchEngine, remember, sum_by_section

# FTS5's bm25() is computed for every row matching any of a paste's terms, thousands of rows:
# it took most of a pasted error's query. A term's share of it depends on the term and the
# row alone, so each term's posting list (its sections and their BM25 weights without the
# term's rarity) is built from the FTS5 index itself (its fts5vocab instances) whenever the
# index changes. A query sums its terms' lists with numpy, as PostgreSQL's engine does, and
# leaves FTS5 its phrases (and any term it cuts in several tokens): the sum is the score
# FTS5's bm25() gives the whole query (https://www.sqlite.org/fts5.html#the_bm25_function).
TABLE = "kb_search_fts"
LISTS = "kb_search_fts_lists"  # stem -> its sections and their BM25 weights (little-endian int64, float64)
BUILT = "kb_search_fts_lists_built"  # the signature of the index and weights the lists were built from
TOKENIZER = "porter unicode61 remove_diacritics 2"
TOKENS_CACHE_SIZE = 50_000
# FTS5's records of its row and token totals (id 1) and of its segments, with a counter every
# write changes (id 10): https://sqlite.org/src/file?name=ext/fts5/fts5_index.c
INDEX_STATE_SQL = (f"SELECT group_concat(hex(block), '-') FROM"
                   f" (SELECT block FROM {TABLE}_data WHERE id IN (1, 10) ORDER BY id)")

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
            cursor.execute("SELECT count(*) FROM sqlite_master WHERE name IN (%s, %s, %s)", [TABLE, LISTS, BUILT])
            return cursor.fetchone()[0] == 3

    def create(self) -> None:
        with self.cursor() as cursor:
            cursor.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5("
                f"title, context, body, guide UNINDEXED, hash UNINDEXED, tokenize = '{TOKENIZER}')"
            )
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {LISTS} (term TEXT PRIMARY KEY, ids BLOB NOT NULL,"
                           " weights BLOB NOT NULL)")
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {BUILT} (signature TEXT NOT NULL)")

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
        if result.indexed or result.removed:
            # Rows written by an import leave the index in many segments, with deleted entries,
            # and every query reads them all: merging them took a pasted error's query from
            # 17.4 to 12.5 ms of CPU after a re-import of the corpus (0.2 s of CPU, same results).
            # https://www.sqlite.org/fts5.html#the_optimize_command
            with self.cursor() as cursor:
                cursor.execute(f"INSERT INTO {TABLE}({TABLE}) VALUES ('optimize')")
        # Built again whenever the index or the weights differ from what they were built from:
        # an import by another release writes the index alone.
        if self._built_from() != self._signature():
            self._build_lists()
        return result

    def _signature(self) -> str:
        """The index's state and the weights that the posting lists are built from."""
        with self.cursor() as cursor:
            cursor.execute(INDEX_STATE_SQL)
            state = cursor.fetchone()[0]
        return f"{self.TITLE_WEIGHT} {self.CONTEXT_WEIGHT} {self.BODY_WEIGHT} {K1} {B} {state}"

    def _built_from(self) -> str | None:
        with self.cursor() as cursor:
            cursor.execute(f"SELECT signature FROM {BUILT}")
            row = cursor.fetchone()
        return row[0] if row else None

    def _build_lists(self) -> None:
        """Every term's posting list, whole: a weight depends on the mean section length."""
        columns = {"title": self.TITLE_WEIGHT, "context": self.CONTEXT_WEIGHT, "body": self.BODY_WEIGHT}
        instances = f"temp.{TABLE}_instances"
        with transaction.atomic(), self.cursor() as reader, self.cursor() as writer:
            reader.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {instances} USING fts5vocab(main, {TABLE}, instance)")
            reader.execute(f"SELECT term, doc, col, count(*) FROM {instances}"
                           " GROUP BY term, doc, col ORDER BY term, doc, col")
            counted = [(term, *term_counts(rows, columns)) for term, rows in groupby(reader, key=itemgetter(0))]
            writer.execute(f"DELETE FROM {LISTS}")
            writer.executemany(f"INSERT INTO {LISTS} (term, ids, weights) VALUES (%s, %s, %s)",
                               posting_lists(counted, self.document_count()))
            writer.execute(f"DELETE FROM {BUILT}")
            writer.execute(f"INSERT INTO {BUILT} (signature) VALUES (%s)", [self._signature()])

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
        ids, scores = self._bm25(single, max(frequency[""], 1))
        if clauses:
            # A separate statement: an import committing in between would mix two versions of
            # the index in this one ranking, which the next search puts right.
            with self.cursor() as cursor:
                cursor.execute(f"SELECT rowid, bm25({TABLE}, %s, %s, %s) FROM {TABLE} WHERE {TABLE} MATCH %s",
                               [self.TITLE_WEIGHT, self.CONTEXT_WEIGHT, self.BODY_WEIGHT, " OR ".join(clauses)])
                matched = cursor.fetchall()
            if matched:
                matched_ids = np.fromiter((row[0] for row in matched), dtype=np.int64, count=len(matched))
                # bm25() is lower-is-better; flip it so every engine's score grows with relevance.
                matched_scores = np.fromiter((-row[1] for row in matched), dtype=np.float64, count=len(matched))
                ids, scores = sum_by_section(np.concatenate([ids, matched_ids]),
                                             np.concatenate([scores, matched_scores]))
        if guide:
            ids, scores = self.in_guide(ids, scores, guide)
        best = np.lexsort((ids, -scores))[:limit]
        return [Candidate(section_id=sid, score=score) for sid, score in zip(ids[best].tolist(), scores[best].tolist())]

    def _bm25(self, terms: list[str], total: int) -> tuple[np.ndarray, np.ndarray]:
        """(section ids, BM25 scores) of the sections holding any of the stems, each counted
        once per time it is in `terms`, with FTS5's rarity (idf) of it among `total` sections."""
        if not terms:
            return np.empty(0, dtype=np.int64), np.empty(0)
        distinct = sorted(set(terms))
        with self.cursor() as cursor:
            marks = ", ".join(["%s"] * len(distinct))
            cursor.execute(f"SELECT term, ids, weights FROM {LISTS} WHERE term IN ({marks})", distinct)
            lists = {term: (np.frombuffer(ids, dtype="<i8"), np.frombuffer(weights, dtype="<f8"))
                     for term, ids, weights in cursor}
        found = [lists[t] for t in terms if t in lists]
        if not found:
            return np.empty(0, dtype=np.int64), np.empty(0)
        return sum_by_section(np.concatenate([sections for sections, _ in found]),
                              np.concatenate([weights * idf(len(sections), total) for sections, weights in found]))

    def tokens(self, words: list[str]) -> dict[str, tuple[str, ...]]:
        """Each word's tokens as the index stores them (stems, in order)."""
        # get(), not `in` then [...]: another thread may clear the cache between the two.
        found = {w: tokens for w in words if (tokens := _tokens.get(w)) is not None}
        missing = sorted(set(words) - set(found))
        if missing:
            split: dict[str, list[str]] = {word: [] for word in missing}
            with self.cursor() as cursor:
                cursor.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.kb_words"
                               f" USING fts5(word, tokenize = '{TOKENIZER}')")
                cursor.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.kb_word_tokens"
                               " USING fts5vocab(temp, kb_words, instance)")
                cursor.execute("DELETE FROM temp.kb_words")  # left by a lookup that failed half-way, if any
                cursor.executemany("INSERT INTO temp.kb_words (rowid, word) VALUES (%s, %s)",
                                   list(enumerate(missing, 1)))
                cursor.execute('SELECT doc, term FROM temp.kb_word_tokens ORDER BY doc, "offset"')
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


def term_counts(instances: Iterable[tuple[str, int, str, int]], columns: dict[str, float]) -> tuple[np.ndarray, ...]:
    """(rows, column-weighted counts, counts) from one term's FTS5 (term, row, column, count)
    instances in row order: the frequency FTS5's bm25() gives the term in each row, and the
    tokens it adds to the row's length."""
    weighted: dict[int, float] = {}
    plain: dict[int, int] = {}
    for _, row, column, count in instances:
        weighted[row] = weighted.get(row, 0.0) + columns[column] * count
        plain[row] = plain.get(row, 0) + count
    return (np.fromiter(weighted, dtype=np.int64, count=len(weighted)),
            np.fromiter(weighted.values(), dtype=np.float64, count=len(weighted)),
            np.fromiter(plain.values(), dtype=np.float64, count=len(plain)))


def posting_lists(counted: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], documents: int) -> Iterator[tuple]:
    """(term, packed rows, packed BM25 weights without the term's rarity) from each term's
    counts, as FTS5's bm25() weighs a term's frequency in a row: against the row's length in
    tokens (every column) over the mean of the index's `documents` rows."""
    if not counted:
        return
    length = np.bincount(np.concatenate([rows for _, rows, _, _ in counted]),
                         weights=np.concatenate([plain for _, _, _, plain in counted]))
    average = length.sum() / max(documents, 1)
    for term, rows, frequency, _ in counted:
        weights = frequency * (K1 + 1) / (frequency + K1 * (1 - B + B * length[rows] / average))
        yield term, rows.astype("<i8").tobytes(), weights.astype("<f8").tobytes()
