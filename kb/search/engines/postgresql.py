"""PostgreSQL full-text engine: a weighted tsvector per section with a GIN index.

`ts_rank` alone has no notion of term rarity, so each query term's rank is weighted by
its inverse document frequency, as BM25 does. Document frequencies come from a lexeme
table refreshed with `ts_stat` whenever the index changes. Terms go through
`plainto_tsquery`/`phraseto_tsquery`, which accept any text without syntax
(https://www.postgresql.org/docs/current/textsearch-controls.html).
"""

from __future__ import annotations

import math

from .base import Candidate, SearchEngine

TABLE = "kb_search_pg"
LEXEMES = "kb_search_pg_lexemes"
# Candidates are the sections matching the query's rarest terms, taken rarest first
# until about this many matches: common words only re-rank, they never fetch.
CANDIDATE_BUDGET = 1200
MAX_RANKED_TERMS = 24

STATS_SQL = f"""
SELECT t.text, (
    SELECT coalesce(min(l.ndoc), 0) FROM {LEXEMES} l
    WHERE l.lexeme = ANY(tsvector_to_array(to_tsvector('english', t.text)))
) FROM unnest(%s::text[]) AS t(text)
"""

RANK_SQL = f"""
WITH terms AS (
    SELECT CASE WHEN u.phrase THEN phraseto_tsquery('english', u.text) ELSE plainto_tsquery('english', u.text) END AS q,
           u.idf
    FROM unnest(%(texts)s::text[], %(phrase)s::bool[], %(idf)s::float8[]) AS u(text, phrase, idf)
), candidates AS MATERIALIZED (
    SELECT d.section_id, d.document FROM {TABLE} d
    WHERE d.document @@ ({{any_term}}) AND (%(guide)s = '' OR d.guide = %(guide)s)
)
SELECT c.section_id, sum(t.idf * ts_rank(%(weights)s::float4[], c.document, t.q, 1)) AS score
FROM candidates c JOIN terms t ON c.document @@ t.q
GROUP BY c.section_id
ORDER BY score DESC, c.section_id
LIMIT %(limit)s
"""


class PostgreSQLEngine(SearchEngine):
    vendor = "postgresql"

    def exists(self) -> bool:
        with self.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL", [TABLE, LEXEMES])
            return cursor.fetchone()[0]

    def create(self) -> None:
        with self.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (section_id bigint PRIMARY KEY,"
                " guide text NOT NULL, hash text NOT NULL, document tsvector NOT NULL)"
            )
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_document ON {TABLE} USING gin (document)")
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {LEXEMES} (lexeme text PRIMARY KEY, ndoc integer NOT NULL)")

    def indexed_hashes(self) -> dict[int, str]:
        with self.cursor() as cursor:
            cursor.execute(f"SELECT section_id, hash FROM {TABLE}")
            return dict(cursor.fetchall())

    def delete(self, section_ids: list[int]) -> None:
        if section_ids:
            with self.cursor() as cursor:
                cursor.execute(f"DELETE FROM {TABLE} WHERE section_id = ANY(%s)", [section_ids])

    def insert(self, rows: list[dict]) -> None:
        with self.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {TABLE} (section_id, guide, hash, document) VALUES (%s, %s, %s,"
                " setweight(to_tsvector('english', %s), 'A') || setweight(to_tsvector('english', %s), 'B')"
                " || setweight(to_tsvector('english', %s), 'D'))",
                [(r["id"], r["guide"], r["hash"], r["title"], r["context"], r["body"]) for r in rows],
            )

    def sync(self):
        result = super().sync()
        with self.cursor() as cursor:
            cursor.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {LEXEMES})")
            lexemes_missing = cursor.fetchone()[0]
        if result.indexed or result.removed or lexemes_missing:
            with self.cursor() as cursor:
                cursor.execute(f"TRUNCATE {LEXEMES}")
                cursor.execute(
                    f"INSERT INTO {LEXEMES} (lexeme, ndoc) SELECT word, ndoc FROM ts_stat('SELECT document FROM {TABLE}')"
                )
        return result

    def document_count(self) -> int:
        with self.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {TABLE}")
            return cursor.fetchone()[0]

    def count_matching(self, terms):
        with self.cursor() as cursor:
            cursor.execute(STATS_SQL, [terms])
            return dict(cursor.fetchall())

    def search(self, terms, phrases, *, guide="", limit=200):
        kept, frequency = self.informative(terms)
        texts = kept + phrases
        if not texts:
            return []
        frequency.update(self.document_frequencies(phrases))
        total = max(frequency[""], 1)
        by_rarity = sorted((t for t in texts if frequency.get(t)), key=lambda t: frequency[t])
        usable = [(text, text in phrases) for text in by_rarity[:MAX_RANKED_TERMS]]
        if not usable:
            return []
        idf = [math.log(1 + (total - frequency[t] + 0.5) / (frequency[t] + 0.5)) for t, _ in usable]
        fetching, budget = [], 0
        for index, (text, _) in enumerate(usable):
            if fetching and budget + frequency[text] > CANDIDATE_BUDGET:
                break
            fetching.append(index)
            budget += frequency[text]
        any_term = " || ".join(
            f"{'phraseto_tsquery' if usable[i][1] else 'plainto_tsquery'}('english', %(t{i})s)" for i in fetching
        )
        # ts_rank weights are ordered {D, C, B, A}: body, unused, article title, section title.
        weights = [self.BODY_WEIGHT, self.BODY_WEIGHT, self.CONTEXT_WEIGHT, self.TITLE_WEIGHT]
        params = {
            "texts": [t for t, _ in usable],
            "phrase": [p for _, p in usable],
            "idf": idf,
            "weights": [w / max(weights) for w in weights],
            "guide": guide,
            "limit": limit,
            **{f"t{i}": usable[i][0] for i in fetching},
        }
        with self.cursor() as cursor:
            cursor.execute(RANK_SQL.replace("{any_term}", any_term), params)
            return [Candidate(section_id=row[0], score=float(row[1])) for row in cursor.fetchall()]
