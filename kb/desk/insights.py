"""Content-gap insights for the help desk, aggregated in the database.

Each function takes the start of the period and returns a few rows already grouped and
counted by the database (values/annotate), so the cost does not grow with Python loops
over every search, paste or vote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F, Max, Min, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Lower, Substr, Trim
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from kb.models import Case, Diagnosis, Feedback, SearchLog

DAYS = 30
LIMIT = 20
# Grouping and showing a paste by its start: pastes run to 20,000 characters.
EXAMPLE_CHARS = 200


@dataclass(frozen=True)
class Share:
    outcome: str
    label: str
    count: int
    percent: float


@dataclass(frozen=True)
class Report:
    since: datetime
    days: int
    top_searches: list[dict]
    unanswered_searches: list[dict]
    unopened_searches: list[dict]
    unanswered_pastes: list[dict]
    resolution: list[Share]
    not_this_sections: list[dict]
    cases_by_code: list[dict]


def report(days: int = DAYS) -> Report:
    """Every insight over the last `days` days."""
    since = timezone.now() - timedelta(days=days)
    return Report(
        since=since,
        days=days,
        top_searches=top_searches(since),
        unanswered_searches=unanswered_searches(since),
        unopened_searches=unopened_searches(since),
        unanswered_pastes=unanswered_pastes(since),
        resolution=resolution(since),
        not_this_sections=not_this_sections(since),
        cases_by_code=cases_by_code(since),
    )


def top_searches(since: datetime, limit: int = LIMIT) -> list[dict]:
    """[{"text", "count", "last", "no_results"}]: the most frequent queries, case and outer spaces ignored."""
    logs = SearchLog.objects.filter(created_at__gte=since)
    return _by_query(logs, limit, no_results=Count("pk", filter=Q(result_count=0)))


def unanswered_searches(since: datetime, limit: int = LIMIT) -> list[dict]:
    """[{"text", "count", "last"}]: queries that found nothing."""
    return _by_query(SearchLog.objects.filter(created_at__gte=since, result_count=0), limit)


def unopened_searches(since: datetime, limit: int = LIMIT) -> list[dict]:
    """[{"text", "count", "last"}]: queries with results of which none was opened (none looked right)."""
    logs = SearchLog.objects.filter(
        created_at__gte=since, result_count__gt=0, opened_section__isnull=True, opened_url=""
    )
    return _by_query(logs, limit)


def unanswered_pastes(since: datetime, limit: int = LIMIT) -> list[dict]:
    """[{"signature", "count", "escalated", "example", "last"}]: pasted errors that got no
    recommendation or were escalated, grouped by signature (errors of the same kind)."""
    return list(
        Diagnosis.objects.filter(created_at__gte=since)
        .filter(Q(recommendations=[]) | Q(outcome=Diagnosis.Outcome.ESCALATED))
        .values("signature")
        .annotate(
            count=Count("pk"),
            escalated=Count("pk", filter=Q(outcome=Diagnosis.Outcome.ESCALATED)),
            example=Min(Substr("error_text", 1, EXAMPLE_CHARS)),
            last=Max("created_at"),
        )
        .order_by("-count", "-last")[:limit]
    )


def resolution(since: datetime) -> list[Share]:
    """How guided runs ended: fixed without a case, escalated, still open; with percentages."""
    counts = dict(
        Diagnosis.objects.filter(created_at__gte=since).values_list("outcome").annotate(n=Count("pk")).order_by()
    )
    total = sum(counts.values())
    return [
        Share(value, label, counts.get(value, 0), round(100 * counts.get(value, 0) / total, 1) if total else 0.0)
        for value, label in Diagnosis.Outcome.choices
    ]


def not_this_sections(since: datetime, limit: int = LIMIT) -> list[dict]:
    """[{"guide_slug", "article_slug", "anchor", "title", "url", "not_this", "helped"}]: sections most
    often voted "Not this", by their stable key so votes on since-removed sections still count."""
    rows = list(
        Feedback.objects.filter(created_at__gte=since)
        .values("guide_slug", "article_slug", "anchor")
        .annotate(
            not_this=Count("pk", filter=Q(vote=Feedback.Vote.NOT_THIS)),
            helped=Count("pk", filter=Q(vote=Feedback.Vote.HELPED)),
            title=Max("section__title"),
        )
        .filter(not_this__gt=0)
        .order_by("-not_this", "helped", "guide_slug", "article_slug", "anchor")[:limit]
    )
    for row in rows:
        row["url"] = _section_url(row["guide_slug"], row["article_slug"], row["anchor"])
    return rows


def cases_by_code(since: datetime) -> list[dict]:
    """[{"code", "cases", "open", "content_missing"}]: cases by the first error code the analyser
    found (None when it found none). Only the first, so each case counts once."""
    first_code = KeyTextTransform("0", KeyTransform("codes", "diagnosis__analysis"))
    return list(
        Case.objects.filter(created_at__gte=since)
        .annotate(code=first_code)
        .values("code")
        .annotate(
            cases=Count("pk"),
            open=Count("pk", filter=~Q(status=Case.Status.RESOLVED)),
            content_missing=Count("pk", filter=Q(content_missing=True)),
        )
        .order_by("-cases", F("code").asc(nulls_last=True))
    )


def _by_query(logs: QuerySet[SearchLog], limit: int, **extra: Count) -> list[dict]:
    return list(
        logs.annotate(text=Lower(Trim("query")))
        .values("text")
        .annotate(count=Count("pk"), last=Max("created_at"), **extra)
        .order_by("-count", "text")[:limit]
    )


def _section_url(guide: str, article: str, anchor: str) -> str:
    try:
        url = reverse("kb:article", args=[guide, article])
    except NoReverseMatch:  # an empty slug: feedback recorded without a section key
        return ""
    return f"{url}#{anchor}" if anchor else url
