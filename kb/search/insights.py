"""The search log behind the help desk's insights: what people searched and what they opened."""

from __future__ import annotations

from django.core import signing

from kb.guided.analysis import explain
from kb.models import SearchLog, Section
from kb.redaction import redact

from .query import AnalysedQuery, analyse
from .results import SearchResults

SIGNING_SALT = "kb.search.opened"
# How long after a search the page that showed it may report the result opened.
OPENED_MAX_AGE = 24 * 3600


def log_search(results: SearchResults, *, guide: str = "", channel: str = SearchLog.Channel.WEB) -> SearchLog:
    """Store a search with its text redacted; returns the row so opened results can refer to it."""
    query = redact(results.query.raw)
    # Understood from the redacted text: analysis splits URLs and tokens apart, after
    # which redaction could no longer recognise them. The signature too, so that a
    # backfill from stored rows computes the same one.
    analysed = analyse(query)
    return SearchLog.objects.create(
        query=query,
        understood=analysed.understood(),
        signature=error_signature(query, analysed),
        guide=guide,
        channel=channel,
        result_count=results.count,
    )


def error_signature(text: str, analysed: AnalysedQuery | None = None) -> str:
    """The guided analyser's signature of `text` (kb.guided.analysis), or "" when the text
    names no error (a question or a topic), so such searches are not lumped into one group."""
    analysis = explain(text, analysed)
    return analysis.signature if analysis.is_specific else ""


def opened_token(log: SearchLog, shown: list[int]) -> str:
    """A token that lets only the page that showed the results report which one (of `shown`,
    section ids) was opened."""
    return signing.dumps([log.pk, shown], salt=SIGNING_SALT, compress=True)


def record_opened(token: str, section_id: int) -> bool:
    """Record the result opened from a logged search; False for a bad token or a section it did not show."""
    try:
        log_id, shown = signing.loads(token, salt=SIGNING_SALT, max_age=OPENED_MAX_AGE)
    except (signing.BadSignature, TypeError, ValueError):
        return False
    if section_id not in shown:
        return False
    section = Section.objects.select_related("article__guide").filter(pk=section_id).first()
    if section is None:
        return False
    updated = SearchLog.objects.filter(pk=log_id, opened_section__isnull=True).update(
        opened_section=section, opened_url=section.get_absolute_url()[:700]
    )
    return bool(updated) or SearchLog.objects.filter(pk=log_id).exists()
