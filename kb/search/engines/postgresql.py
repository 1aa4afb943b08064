"""PostgreSQL engine: BM25 over an inverted index of `to_tsvector('english')` lexemes.

`ts_rank` has no notion of term rarity and must decompress every candidate's tsvector
for every query term, which is slow for long pasted errors. So each section's tsvector is
also unnested into postings (lexeme, section, weighted term frequency), kept up to date
section by section. From them each lexeme's posting list is built whole whenever they
change: its sections and their BM25 term weights as packed arrays. A query reads only its
terms' lists and sums BM25 with numpy, which a paste's tens of thousands of postings made
the costliest part of an SQL aggregate. Phrases then re-rank the best candidates, matched
on their tsvectors with `phraseto_tsquery`. Terms go through `to_tsvector` and
`phraseto_tsquery`, which accept any text without syntax
(https://www.postgresql.org/docs/current/textsearch-controls.html).

PostgreSQL's parser keeps host names, file paths and dotted names whole
(`KMS.NotFoundException`, `role/admin`, `s3.amazonaws.com` are one lexeme each), so a
paste's `NotFoundException` would not match them. Text is cut into words at every other
character first (`words_only`), on both sides, as FTS5's unicode61 tokenizer does.
"""

from __future__ import annotations

import math
import re

import numpy as np
import psycopg
from django.db import connection, transaction

from .base import B, K1, Candidate, SearchEngine, remember, sum_by_section

TABLE = "kb_search_pg_documents"
POSTINGS = "kb_search_pg_lexeme_postings"
LISTS = "kb_search_pg_lexeme_lists"  # lexeme -> its sections and their BM25 weights, built from the postings
# Tables of earlier releases, dropped when the index is created (it is derived data): the
# next import builds the index again.
OBSOLETE = ("kb_search_pg", "kb_search_pg_lexemes", "kb_search_pg_sections", "kb_search_pg_postings",
            "kb_search_pg_words", "kb_search_pg_word_postings", "kb_search_pg_word_frequencies")
NOT_A_WORD = re.compile(r"[\W_]+")
RERANKED = 100  # candidates whose phrase matches are checked (more changed no ranking in the eval set)
MAX_PHRASES = 12
LEXEME_CACHE_SIZE = 50_000

# Text -> its lexemes under the 'english' configuration: they depend on the text alone, so a
# process keeps them (a paste's terms were mostly seen before) and a search needs one round trip fewer.
_lexemes: dict[str, list[str]] = {}

# Each column's weight multiplies its term counts and length, so a section title's word
# counts as much as five of its body's (SearchEngine's weights, as on SQLite).
POSTINGS_SQL = f"""
INSERT INTO {POSTINGS} (lexeme, section_id, tf)
SELECT p.lexeme, s.section_id, p.tf
FROM {TABLE} s, LATERAL (
    SELECT u.lexeme, sum(CASE w WHEN 'A' THEN %(title)s WHEN 'B' THEN %(context)s ELSE %(body)s END) AS tf
    FROM unnest(s.document) AS u, unnest(u.weights) AS w
    GROUP BY u.lexeme
) p
WHERE s.section_id = ANY(%(ids)s)
"""

LENGTH_SQL = f"""
UPDATE {TABLE} s SET length = coalesce((
    SELECT sum(CASE w WHEN 'A' THEN %(title)s WHEN 'B' THEN %(context)s ELSE %(body)s END)
    FROM unnest(s.document) AS u, unnest(u.weights) AS w
), 0)
WHERE s.section_id = ANY(%(ids)s)
"""

# A posting's BM25 weight without the term's rarity, which the query multiplies in; packed
# big-endian, section ids ascending.
LIST_ROWS = f"""
SELECT p.lexeme, count(*)::integer AS sections,
       string_agg(int8send(p.section_id), ''::bytea ORDER BY p.section_id) AS ids,
       string_agg(float8send(p.tf * {K1 + 1} / (p.tf + {K1} * ({1 - B} + {B} * s.length / a.average))), ''::bytea
                  ORDER BY p.section_id) AS weights
FROM {POSTINGS} p JOIN {TABLE} s ON s.section_id = p.section_id,
     (SELECT coalesce(nullif(avg(length), 0), 1) AS average FROM {TABLE}) a
GROUP BY p.lexeme
"""

# Each document is read (de-TOASTed) once for all phrases, not once a phrase: `|| ''` makes
# the in-memory copy, and OFFSET 0 keeps the subquery from being folded into its uses (a
# third less time).
PHRASES_SQL = f"""
WITH phrases AS MATERIALIZED (
    SELECT phraseto_tsquery('english', u.text) AS q, u.idf
    FROM unnest(%(phrases)s::text[], %(phrase_idf)s::float8[]) AS u(text, idf)
)
SELECT d.section_id, (
    SELECT sum(ph.idf * ts_rank(%(weights)s::float4[], d.document, ph.q, 1)) FROM phrases ph WHERE d.document @@ ph.q
)
FROM (SELECT s.section_id, s.document || ''::tsvector AS document FROM {TABLE} s
      WHERE s.section_id = ANY(%(ids)s) OFFSET 0) d
"""


class PostgreSQLEngine(SearchEngine):
    vendor = "postgresql"

    def exists(self) -> bool:
        with self.cursor() as cursor:
            cursor.execute("SELECT bool_and(to_regclass(t) IS NOT NULL) FROM unnest(%s::text[]) AS t",
                           [[TABLE, POSTINGS, LISTS]])
            return cursor.fetchone()[0]

    def create(self) -> None:
        with self.cursor() as cursor:
            for table in OBSOLETE:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (section_id bigint PRIMARY KEY, guide text NOT NULL,"
                " hash text NOT NULL, length real NOT NULL DEFAULT 0, document tsvector NOT NULL)"
            )
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {POSTINGS} (lexeme text NOT NULL, section_id bigint NOT NULL,"
                " tf real NOT NULL)"
            )
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {POSTINGS}_section ON {POSTINGS} (section_id)")
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {LISTS} (lexeme text PRIMARY KEY, sections integer NOT NULL,"
                           " ids bytea NOT NULL, weights bytea NOT NULL)")

    def indexed_hashes(self) -> dict[int, str]:
        with self.cursor() as cursor:
            cursor.execute(f"SELECT section_id, hash FROM {TABLE}")
            return dict(cursor.fetchall())

    def delete(self, section_ids: list[int]) -> None:
        if section_ids:
            with self.cursor() as cursor:
                cursor.execute(f"DELETE FROM {POSTINGS} WHERE section_id = ANY(%s)", [section_ids])
                cursor.execute(f"DELETE FROM {TABLE} WHERE section_id = ANY(%s)", [section_ids])

    def insert(self, rows: list[dict]) -> None:
        with self.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {TABLE} (section_id, guide, hash, document) VALUES (%s, %s, %s,"
                " setweight(to_tsvector('english', %s), 'A') || setweight(to_tsvector('english', %s), 'B')"
                " || setweight(to_tsvector('english', %s), 'D'))",
                [(r["id"], r["guide"], r["hash"], words_only(r["title"]), words_only(r["context"]), words_only(r["body"]))
                 for r in rows],
            )
            weights = {"title": self.TITLE_WEIGHT, "context": self.CONTEXT_WEIGHT, "body": self.BODY_WEIGHT,
                       "ids": [r["id"] for r in rows]}
            cursor.execute(LENGTH_SQL, weights)
            cursor.execute(POSTINGS_SQL, weights)

    def sync(self):
        result = super().sync()
        if result.indexed or result.removed:
            # Every weight depends on the average section length, so the lists are built whole,
            # in one transaction (searches read the old lists meanwhile, never none).
            with transaction.atomic(), self.cursor() as cursor:
                cursor.execute(f"DELETE FROM {LISTS}")
                cursor.execute(f"INSERT INTO {LISTS} (lexeme, sections, ids, weights) {LIST_ROWS}")
                # Without fresh statistics the planner misjudges lookups after an import.
                cursor.execute(f"ANALYZE {TABLE}, {POSTINGS}, {LISTS}")
            # The lists are replaced whole: until VACUUM, every lookup also steps over the old
            # versions of its rows. VACUUM cannot run in a transaction, so it runs once the
            # import's transaction commits (robust: a failure is logged, and autovacuum gets
            # there later).
            transaction.on_commit(self.vacuum, robust=True)
        return result

    def vacuum(self) -> None:
        with self.cursor() as cursor:
            cursor.execute(f"VACUUM {TABLE}, {POSTINGS}, {LISTS}")

    def document_count(self) -> int:
        with self.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {TABLE}")
            return cursor.fetchone()[0]

    def count_matching(self, terms):
        """Sections holding every lexeme of each term (a phrase's rarest lexeme bounds it).
        The same query gives each term's lexemes: `lexemes()` then needs no round trip of its own."""
        with self.cursor() as cursor:
            cursor.execute(
                f"""SELECT t.text, v.lexemes, (
                        SELECT coalesce(min(coalesce((SELECT f.sections FROM {LISTS} f WHERE f.lexeme = l), 0)), 0)
                        FROM unnest(v.lexemes) AS l
                    ) FROM unnest(%s::text[]) AS t(text),
                    LATERAL (SELECT tsvector_to_array(to_tsvector('english', t.text)) AS lexemes) v""",
                [[words_only(t) for t in terms]],
            )
            rows = cursor.fetchall()
        remember(_lexemes, {text: lexemes for text, lexemes, _ in rows}, LEXEME_CACHE_SIZE)
        counts = {text: n for text, _, n in rows}
        return {t: counts[words_only(t)] for t in terms}

    def lexemes(self, terms: list[str]) -> dict[str, list[str]]:
        texts = {t: words_only(t) for t in terms}
        # get(), not `in` then [...]: another thread may clear the cache between the two.
        found = {text: lexemes for text in texts.values() if (lexemes := _lexemes.get(text)) is not None}
        missing = sorted(set(texts.values()) - set(found))
        if missing:
            with self.cursor() as cursor:
                cursor.execute(
                    "SELECT t, tsvector_to_array(to_tsvector('english', t)) FROM unnest(%s::text[]) AS t", [missing]
                )
                looked_up = dict(cursor.fetchall())
            remember(_lexemes, looked_up, LEXEME_CACHE_SIZE)
            found.update(looked_up)
        return {t: found[text] for t, text in texts.items()}

    def search(self, terms, phrases, *, guide="", limit=200):
        phrases = phrases[:MAX_PHRASES]
        kept, frequency = self.informative(terms, phrases)
        if not kept and not phrases:
            return []
        total = max(frequency[""], 1)

        def idf(text: str) -> float:
            return math.log(1 + (total - frequency[text] + 0.5) / (frequency[text] + 0.5))

        # A term may give several lexemes (words_only splits "don't" in two);
        # each lexeme counts once, with the rarest weight it is given.
        weighted: dict[str, float] = {}
        for term, lexemes in self.lexemes(kept).items():
            for lexeme in lexemes:
                weighted[lexeme] = max(weighted.get(lexeme, 0.0), idf(term))
        if not weighted:
            return []
        phrases = [p for p in phrases if frequency.get(p)]
        ids, scores = self._bm25(weighted)
        if guide:
            ids, scores = self.in_guide(ids, scores, guide)
        best = np.lexsort((ids, -scores))[:max(RERANKED, limit)]
        scored = dict(zip(ids[best].tolist(), scores[best].tolist()))
        if phrases and scored:
            # ts_rank weights are ordered {D, C, B, A}: body, unused, article title, section title.
            weights = [self.BODY_WEIGHT, self.BODY_WEIGHT, self.CONTEXT_WEIGHT, self.TITLE_WEIGHT]
            with self.cursor() as cursor:
                cursor.execute(PHRASES_SQL, {
                    "phrases": [words_only(p) for p in phrases],
                    "phrase_idf": [idf(p) for p in phrases],
                    "weights": [w / max(weights) for w in weights],
                    "ids": list(scored),
                })
                for section_id, bonus in cursor.fetchall():
                    scored[section_id] += bonus or 0.0
        ranked = sorted(scored.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [Candidate(section_id=sid, score=score) for sid, score in ranked]

    def _bm25(self, weighted: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(section ids, BM25 scores) of the sections holding any of the lexemes (lexeme -> rarity)."""
        connection.ensure_connection()
        # Binary results, so the lists arrive as the bytes they are stored as: Django's own
        # cursors are client-side, which psycopg allows text results only. Wrapped as Django
        # wraps its cursors (errors, query logging, execute wrappers).
        raw = psycopg.Cursor(connection.connection)
        raw.format = psycopg.pq.Format.BINARY
        wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
        with wrap(raw) as cursor:
            cursor.execute(f"SELECT lexeme, ids, weights FROM {LISTS} WHERE lexeme = ANY(%s)", [list(weighted)])
            rows = cursor.fetchall()
        if not rows:
            return np.empty(0, dtype=np.int64), np.empty(0)
        ids = np.concatenate([np.frombuffer(row[1], dtype=">i8") for row in rows]).astype(np.int64)
        weights = np.concatenate([np.frombuffer(row[2], dtype=">f8") * weighted[row[0]] for row in rows])
        return sum_by_section(ids, weights)


def words_only(text: str) -> str:
    """The text's words separated by spaces: nothing left for the parser to keep whole."""
    return NOT_A_WORD.sub(" ", text)
