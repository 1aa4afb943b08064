"""How the desk's numbers change over a period: per day, per week, per error signature.

Counts are grouped by the database into days or weeks of the site's time zone (see
buckets.py); days and weeks with nothing are filled in here, so every series has one
value per day or week of the period.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Q, QuerySet
from django.db.models.functions import Substr
from django.utils import timezone

from kb.models import Diagnosis, SearchLog

from . import searchdays
from .buckets import bucket, starts
from .insights import EXAMPLE_CHARS, LABEL_CHARS, VAGUE_SIGNATURE, example_label, in_period
from .period import Period

TOP_SIGNATURES = 10


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


@dataclass
class Tally:
    """One signature's rows in a period: how many each day, and the latest one's id."""

    per_day: list[int]
    latest: int


@dataclass(frozen=True)
class Activity:
    """Searches and guided pastes per day and signature: what the daily chart and the top
    signatures are both read from (searches mostly from days kept counted, searchdays.py)."""

    period: Period
    searches: dict[str, Tally]  # by signature; "" for searches that named no error
    guided: dict[str, Tally]


def abandoned_hours() -> int:
    return settings.KB_ABANDONED_HOURS


def activity(period: Period, searches: searchdays.SearchCounts | None = None) -> Activity:
    """The period's activity; `searches` when already counted."""
    pastes = _per_bucket(in_period(Diagnosis.objects, period), starts(period.days), "signature").annotate(
        count=Count("pk"), latest=Max("pk")
    )
    return Activity(period, _tally((searches or searchdays.counts(period)).daily(), period), _tally(pastes, period))


def daily_activity(activity: Activity) -> list[Day]:
    """Searches (all, and those naming an error) and guided pastes on each day of the period."""
    searches = _sum(activity.searches.values(), len(activity.period.days))
    errors = _sum((t for s, t in activity.searches.items() if s), len(activity.period.days))
    guided = _sum(activity.guided.values(), len(activity.period.days))
    return [Day(*row) for row in zip(activity.period.days, searches, errors, guided)]


def weekly_outcomes(period: Period, now: datetime | None = None) -> list[Week]:
    """How the guided runs started each week ended; "abandoned" is an open run older than
    KB_ABANDONED_HOURS at `now`."""
    cutoff = (now or timezone.now()) - timedelta(hours=abandoned_hours())
    open_ = Q(outcome=Diagnosis.Outcome.OPEN)
    rows = {
        row.pop("bucket"): row
        for row in _per_bucket(in_period(Diagnosis.objects, period), starts(period.weeks)).annotate(
            fixed=Count("pk", filter=Q(outcome=Diagnosis.Outcome.FIXED)),
            escalated=Count("pk", filter=Q(outcome=Diagnosis.Outcome.ESCALATED)),
            abandoned=Count("pk", filter=open_ & Q(created_at__lt=cutoff)),
            open=Count("pk", filter=open_ & Q(created_at__gte=cutoff)),
        )
    }
    nothing = {"fixed": 0, "escalated": 0, "abandoned": 0, "open": 0}
    return [Week(monday, **rows.get(n, nothing)) for n, monday in enumerate(period.weeks)]


def top_signatures(activity: Activity, limit: int = TOP_SIGNATURES) -> list[dict]:
    """[{"signature", "label", "example", "searches", "guided", "count", "last" (a day), "trend"}]:
    the error signatures most often searched for or pasted in the guided form, with an
    example (the latest search's, else the latest paste's start) and `trend`, the count
    per day. Searches and pastes that named no error are left out."""
    days = len(activity.period.days)
    rows = []
    for signature in (activity.searches.keys() | activity.guided.keys()) - {"", VAGUE_SIGNATURE}:
        found = [activity.searches.get(signature), activity.guided.get(signature)]
        tallies = [t for t in found if t]
        searches, guided = (sum(t.per_day) if t else 0 for t in found)
        trend = _sum(tallies, days)
        last = max(n for n, count in enumerate(trend) if count)
        rows.append({"signature": signature, "searches": searches, "guided": guided, "count": searches + guided,
                     "last": activity.period.days[last], "trend": trend})
    top = sorted(rows, key=lambda row: (-row["count"], row["signature"]))[:limit]
    examples = {}
    for tallies, objects, text in ((activity.guided, Diagnosis.objects, "error_text"),
                                   (activity.searches, SearchLog.objects, "query")):  # searches win
        ids = [tallies[row["signature"]].latest for row in top if row["signature"] in tallies]
        examples.update(objects.filter(pk__in=ids).values_list("signature", Substr(text, 1, LABEL_CHARS)))
    for row in top:
        text = examples.get(row["signature"], "")
        row.update(example=text[:EXAMPLE_CHARS], label=example_label(text))
    return top


def _tally(grouped: Iterable[dict], period: Period) -> dict[str, Tally]:
    """Tallies by signature from rows {"bucket" (a day), "signature", "count", "latest"}."""
    tallies: dict[str, Tally] = {}
    days = len(period.days)
    for row in grouped:
        tally = tallies.setdefault(row["signature"], Tally([0] * days, row["latest"]))
        tally.per_day[row["bucket"]] += row["count"]
        tally.latest = max(tally.latest, row["latest"])
    return tallies


def _sum(tallies: Iterable[Tally], days: int) -> list[int]:
    """Day by day, the sum of the tallies."""
    total = [0] * days
    for tally in tallies:
        total = [a + b for a, b in zip(total, tally.per_day)]
    return total


def _per_bucket(rows: QuerySet, bounds: list[datetime], *fields: str) -> QuerySet:
    """`rows` grouped by their "bucket" (an index into `bounds`) and `fields`."""
    return rows.annotate(bucket=bucket("created_at", bounds)).values("bucket", *fields).order_by()
