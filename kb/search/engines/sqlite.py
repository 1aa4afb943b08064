"""SQLite FTS5 engine: BM25 over title, article title and body, with porter stemming.

Query syntax: https://www.sqlite.org/fts5.html#full_text_query_syntax. Every term is
emitted as a double-quoted string, so nothing the user typed is ever FTS5 syntax.
"""

from __future__ import annotations

from .base import Candidate, SearchEngine

TABLE = "kb_search_fts"


def quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


class SQLiteEngine(SearchEngine):
    vendor = "sqlite"
    # An FTS5 OR query scores every row that matches any term: capping a long paste at its
    # 16 rarest terms took p95 from 28 to 21 ms on the corpus, with the same dev-set scores
    # (14 lost a case). PostgreSQL's postings aggregate loses a case at 16, so it has no cap.
    RAREST_TERMS = 16
    COUNTS_PER_QUERY = 100  # scalar subqueries in one statement (SQLite allows 2,000 result columns)

    def exists(self) -> bool:
        with self.cursor() as cursor:
            cursor.execute("SELECT 1 FROM sqlite_master WHERE name = %s", [TABLE])
            return cursor.fetchone() is not None

    def create(self) -> None:
        with self.cursor() as cursor:
            cursor.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5("
                "title, context, body, guide UNINDEXED, hash UNINDEXED, "
                "tokenize = 'porter unicode61 remove_diacritics 2')"
            )

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
        return result

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
        clauses = [quote(t) for t in self.informative(terms)[0] + phrases]
        if not clauses:
            return []
        match = " OR ".join(clauses)
        sql = (
            f"SELECT rowid, bm25({TABLE}, %s, %s, %s) AS rank FROM {TABLE} WHERE {TABLE} MATCH %s"
            + (" AND guide = %s" if guide else "")
            + " ORDER BY rank LIMIT %s"
        )
        params = [self.TITLE_WEIGHT, self.CONTEXT_WEIGHT, self.BODY_WEIGHT, match]
        params += [guide] if guide else []
        with self.cursor() as cursor:
            cursor.execute(sql, params + [limit])
            # bm25() is lower-is-better; flip it so every engine's score grows with relevance.
            return [Candidate(section_id=row[0], score=-row[1]) for row in cursor.fetchall()]
