"""PostgreSQL engine: BM25 over an inverted index of `to_tsvector('english')` lexemes.

`ts_rank` has no notion of term rarity and must decompress every candidate's tsvector
for every query term, which is slow for long pasted errors. So each section's tsvector is
also unnested into postings (lexeme, section, weighted term frequency, weighted length),
with a btree on the lexeme: a query reads only its terms' postings and sums BM25 in one
aggregate, as FTS5 does on SQLite. Phrases then re-rank the best candidates, matched on
their tsvectors with `phraseto_tsquery`. Terms go through `to_tsvector`/`phraseto_tsquery`,
which accept any text without syntax
(https://www.postgresql.org/docs/current/textsearch-controls.html).

PostgreSQL's parser keeps host names, file paths and dotted names whole
(`KMS.NotFoundException`, `role/admin`, `s3.amazonaws.com` are one lexeme each), so a
paste's `NotFoundException` would not match them. Text is cut into words at every other
character first (`words_only`), on both sides, as FTS5's unicode61 tokenizer does.
"""

from __future__ import annotations

import math
import re

from django.db import connection, transaction

from kb import cache

from .base import Candidate, SearchEngine

TABLE = "kb_search_pg_words"
POSTINGS = "kb_search_pg_word_postings"
FREQUENCIES = "kb_search_pg_word_frequencies"  # lexeme -> sections holding it, kept with the postings
# Tables of earlier releases, dropped when the index is created (it is derived data): the
# next import builds the index again.
OBSOLETE = ("kb_search_pg", "kb_search_pg_lexemes", "kb_search_pg_sections", "kb_search_pg_postings")
NOT_A_WORD = re.compile(r"[\W_]+")
K1, B = 1.2, 0.75  # BM25's usual constants, as FTS5 uses
RERANKED = 100  # candidates whose phrase matches are checked (more changed no ranking in the eval set)
MAX_PHRASES = 12

# Each column's weight multiplies its term counts and length, so a section title's word
# counts as much as five of its body's (SearchEngine's weights, as on SQLite).
POSTINGS_SQL = f"""
INSERT INTO {POSTINGS} (lexeme, section_id, guide, tf, length)
SELECT p.lexeme, s.section_id, s.guide, p.tf, s.length
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

RANK_SQL = f"""
WITH ranked AS (
    SELECT p.section_id,
           sum(q.idf * p.tf * {K1 + 1} / (p.tf + {K1} * ({1 - B} + {B} * p.length / %(average)s))) AS score
    FROM unnest(%(lexemes)s::text[], %(idf)s::float8[]) AS q(lexeme, idf)
    JOIN {POSTINGS} p ON p.lexeme = q.lexeme
    WHERE %(guide)s = '' OR p.guide = %(guide)s
    GROUP BY p.section_id
    ORDER BY score DESC, p.section_id
    LIMIT %(reranked)s
), phrases AS MATERIALIZED (
    SELECT phraseto_tsquery('english', u.text) AS q, u.idf
    FROM unnest(%(phrases)s::text[], %(phrase_idf)s::float8[]) AS u(text, idf)
)
SELECT r.section_id, r.score + coalesce((
    SELECT sum(ph.idf * ts_rank(%(weights)s::float4[], s.document, ph.q, 1))
    FROM phrases ph WHERE s.document @@ ph.q
), 0) AS score
FROM ranked r JOIN {TABLE} s ON s.section_id = r.section_id
ORDER BY score DESC, r.section_id
LIMIT %(limit)s
"""


class PostgreSQLEngine(SearchEngine):
    vendor = "postgresql"

    def exists(self) -> bool:
        with self.cursor() as cursor:
            cursor.execute("SELECT bool_and(to_regclass(t) IS NOT NULL) FROM unnest(%s::text[]) AS t",
                           [[TABLE, POSTINGS, FREQUENCIES]])
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
                " guide text NOT NULL, tf real NOT NULL, length real NOT NULL)"
            )
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {POSTINGS}_lexeme ON {POSTINGS} (lexeme) INCLUDE (section_id, guide, tf, length)"
            )
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {POSTINGS}_section ON {POSTINGS} (section_id)")
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {FREQUENCIES} (lexeme text PRIMARY KEY, sections integer NOT NULL)")

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
            with self.cursor() as cursor:
                # A paste's new words were counted in the postings, 4 ms a paste (10 at p95 on the
                # corpus); read from this table, 0.5 ms. Counting them all again takes a second.
                cursor.execute(f"DELETE FROM {FREQUENCIES}")
                cursor.execute(f"INSERT INTO {FREQUENCIES} SELECT lexeme, count(*) FROM {POSTINGS} GROUP BY lexeme")
                # Without fresh statistics the planner misjudges postings lookups after an import.
                cursor.execute(f"ANALYZE {TABLE}, {POSTINGS}, {FREQUENCIES}")
            # Until VACUUM marks the new rows visible, every postings lookup reads them from the
            # table instead of the covering index: a query took 33 ms before and 14 after. VACUUM
            # cannot run in a transaction, so it runs once the import's transaction commits
            # (robust: a failure is logged, and autovacuum gets there later).
            transaction.on_commit(self.vacuum, robust=True)
        return result

    def vacuum(self) -> None:
        with self.cursor() as cursor:
            cursor.execute(f"VACUUM {TABLE}, {POSTINGS}, {FREQUENCIES}")

    def document_count(self) -> int:
        with self.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {TABLE}")
            return cursor.fetchone()[0]

    def count_matching(self, terms):
        """Sections holding every lexeme of each term (a phrase's rarest lexeme bounds it)."""
        with self.cursor() as cursor:
            cursor.execute(
                f"""SELECT t.text, (
                        SELECT coalesce(min(coalesce((SELECT f.sections FROM {FREQUENCIES} f WHERE f.lexeme = l), 0)), 0)
                        FROM unnest(tsvector_to_array(to_tsvector('english', t.text))) AS l
                    ) FROM unnest(%s::text[]) AS t(text)""",
                [[words_only(t) for t in terms]],
            )
            counts = dict(cursor.fetchall())
        return {t: counts[words_only(t)] for t in terms}

    def lexemes(self, terms: list[str]) -> dict[str, list[str]]:
        with self.cursor() as cursor:
            cursor.execute(
                "SELECT t, tsvector_to_array(to_tsvector('english', t)) FROM unnest(%s::text[]) AS t",
                [[words_only(t) for t in terms]],
            )
            lexemes = dict(cursor.fetchall())
        return {t: lexemes[words_only(t)] for t in terms}

    def search(self, terms, phrases, *, guide="", limit=200):
        kept, frequency = self.informative(terms)
        if not kept and not phrases:
            return []
        phrases = phrases[:MAX_PHRASES]
        frequency.update(self.document_frequencies(phrases))
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
        # ts_rank weights are ordered {D, C, B, A}: body, unused, article title, section title.
        weights = [self.BODY_WEIGHT, self.BODY_WEIGHT, self.CONTEXT_WEIGHT, self.TITLE_WEIGHT]
        params = {
            "lexemes": list(weighted),
            "idf": list(weighted.values()),
            "average": average_length(),
            "guide": guide,
            "reranked": max(RERANKED, limit),
            "phrases": [words_only(p) for p in phrases],
            "phrase_idf": [idf(p) for p in phrases],
            "weights": [w / max(weights) for w in weights],
            "limit": limit,
        }
        with self.cursor() as cursor:
            cursor.execute(RANK_SQL, params)
            return [Candidate(section_id=row[0], score=float(row[1])) for row in cursor.fetchall()]


def words_only(text: str) -> str:
    """The text's words separated by spaces: nothing left for the parser to keep whole."""
    return NOT_A_WORD.sub(" ", text)


@cache.memoised
def average_length() -> float:
    """BM25's average weighted section length, once per content generation."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT avg(length) FROM {TABLE}")
        return cursor.fetchone()[0] or 1.0
