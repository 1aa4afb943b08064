"""Search over sections: query analysis, one engine per database, ranking and snippets.

Public entry points: `search()` for results, `sync_index()` after content changes.
"""

from .engines import SyncResult, get_engine
from .query import AnalysedQuery, analyse
from .results import Result, SearchResults, search


def sync_index() -> SyncResult:
    """Reconcile the full-text index with the sections (called by the importer)."""
    return get_engine().sync()


__all__ = ["AnalysedQuery", "Result", "SearchResults", "analyse", "search", "sync_index"]
