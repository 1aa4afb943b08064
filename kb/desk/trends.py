"""How the desk's numbers change over a period: per day, per week, per error signature.

Counts are grouped by the database with TruncDate/TruncWeek (the same on SQLite and
PostgreSQL, in the site's time zone); days and weeks with nothing are filled in here, so
every series has one value per day or week of the period.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Q, QuerySet
from django.db.models.functions import Substr, TruncDate, TruncWeek
from django.utils import timezone

from kb.guided.analysis import explain
from kb.models import Diagnosis, SearchLog

from .insights import EXAMPLE_CHARS, LABEL_CHARS, in_period, signature_label
from .period import Period

TOP_SIGNATURES = 10
# Candidates from each source before merging: enough that the top ten of the sum are among them.
CANDIDATES = 50


@dataclass(frozen=True)
class Day:
    day: date
    searches: int
    error_searches: int  # searches naming an error (with a signature)
    guided: int  # errors pasted in the guided form


@dataclass(frozen=True)
class Week:
    week: date  # its Monday
    fixed: int
    escalated: int
    abandoned: int  # open, and started more than KB_ABANDONED_HOURS ago
    open: int  # open, started more recently: the person may still answer


def abandoned_hours() -> int:
    return settings.KB_ABANDONED_HOURS


def daily_activity(period: Period) -> list[Day]:
    """Searches (all, and those naming an error) and guided pastes on each day of the period."""
    searches = {
        row["day"]: row
        for row in _per_day(in_period(SearchLog.objects, period))
        .annotate(count=Count("pk"), errors=Count("pk", filter=~Q(signature="")))
    }
    guided = dict(_per_day(in_period(Diagnosis.objects, period)).annotate(count=Count("pk")).values_list("day", "count"))
    return [
        Day(day, searches.get(day, {}).get("count", 0), searches.get(day, {}).get("errors", 0), guided.get(day, 0))
        for day in period.days
    ]


def weekly_outcomes(period: Period, now: datetime | None = None) -> list[Week]:
    """How the guided runs started each week ended; "abandoned" is an open run older than
    KB_ABANDONED_HOURS at `now`."""
    cutoff = (now or timezone.now()) - timedelta(hours=abandoned_hours())
    open_ = Q(outcome=Diagnosis.Outcome.OPEN)
    rows = {
        _as_date(row.pop("week")): row
        for row in in_period(Diagnosis.objects, period)
        .annotate(week=TruncWeek("created_at"))
        .values("week")
        .annotate(
            fixed=Count("pk", filter=Q(outcome=Diagnosis.Outcome.FIXED)),
            escalated=Count("pk", filter=Q(outcome=Diagnosis.Outcome.ESCALATED)),
            abandoned=Count("pk", filter=open_ & Q(created_at__lt=cutoff)),
            open=Count("pk", filter=open_ & Q(created_at__gte=cutoff)),
        )
        .order_by("week")
    }
    nothing = {"fixed": 0, "escalated": 0, "abandoned": 0, "open": 0}
    return [Week(monday, **rows.get(monday, nothing)) for monday in period.weeks]


def top_signatures(period: Period, limit: int = TOP_SIGNATURES) -> list[dict]:
    """[{"signature", "label", "example", "searches", "guided", "count", "last", "trend"}]:
    the error signatures most often searched for or pasted in the guided form, with an
    example (the latest search's or paste's start) and `trend`, the count per day."""
    merged: dict[str, dict] = {}
    sources = [
        ("searches", in_period(SearchLog.objects, period).exclude(signature=""), "query"),
        ("guided", in_period(Diagnosis.objects, period), "error_text"),
    ]
    for name, rows, _text in sources:
        grouped = (
            rows.values("signature").annotate(count=Count("pk"), last=Max("created_at"), latest=Max("pk"))
            .order_by("-count", "signature")[:CANDIDATES]
        )
        for row in grouped:
            entry = merged.setdefault(row["signature"], {"signature": row["signature"], "searches": 0, "guided": 0,
                                                         "count": 0, "last": row["last"], "latest": {}})
            entry[name] = row["count"]
            entry["count"] += row["count"]
            entry["last"] = max(entry["last"], row["last"])
            entry["latest"][name] = row["latest"]
    top = sorted(merged.values(), key=lambda row: (-row["count"], row["signature"]))[:limit]
    trends = _trends(period, [row["signature"] for row in top], sources)
    examples = _examples(top, sources)
    for row in top:
        text = examples.get(row["signature"], "")
        row.pop("latest")
        row.update(example=text[:EXAMPLE_CHARS], label=signature_label(explain(text).as_dict()),
                   trend=trends[row["signature"]])
    return top


def _trends(period: Period, signatures: list[str], sources: list) -> dict[str, list[int]]:
    counts: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for _name, rows, _text in sources:
        for row in _per_day(rows.filter(signature__in=signatures), "signature").annotate(count=Count("pk")):
            counts[row["signature"]][row["day"]] += row["count"]
    return {signature: [counts[signature][day] for day in period.days] for signature in signatures}


def _examples(top: list[dict], sources: list) -> dict[str, str]:
    """The latest text of each signature (redacted as stored): a search's where there is one."""
    examples: dict[str, str] = {}
    for name, rows, text in reversed(sources):
        ids = [row["latest"][name] for row in top if name in row["latest"]]
        found = dict(rows.model.objects.filter(pk__in=ids).values_list("signature", Substr(text, 1, LABEL_CHARS)))
        examples.update(found)
    return examples


def _per_day(rows: QuerySet, *fields: str) -> QuerySet:
    return rows.annotate(day=TruncDate("created_at")).values("day", *fields).order_by()


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value
