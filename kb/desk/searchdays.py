"""The search log counted per day and group for the insights page, kept for days that no longer change.

The search tables and the daily chart group every search of the range by signature or
text and by day: with 100,000 searches in 30 days, most of the page's time. A day's groups
stop changing once it is over and its searches can no longer be reported opened
(OPENED_MAX_AGE after the last one), so such settled days are counted once into SearchDay
and SearchDayGroup and summed from there; the days since are counted from the log on each
view. Days are the site time zone's, as the page shows them.

Each view checks the settled days against the log with one count of their searches and
their highest id: a search logged late for a settled day (a server whose clock is behind)
raises both, deleting old searches lowers the count, and the days that differ are counted
again. Rewriting logged searches in place (a migration recomputing signatures) changes
neither: raise VERSION with such a change and every day is counted again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.core.cache import caches
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q, Sum, TextField, Value
from django.db.models.functions import Coalesce, Lower, NullIf, Trim
from django.utils import timezone

from kb.models import SearchDay, SearchDayGroup, SearchLog
from kb.search.insights import OPENED_MAX_AGE

from .buckets import bucket, starts
from .period import Period

VERSION = 1
CACHE = "default"
CACHE_SECONDS = 2 * 24 * 3600

# The search tables: which searches each counts.
SEARCH_TABLES = {
    "top": Q(),
    "unanswered": Q(result_count=0),  # found nothing
    "unopened": Q(result_count__gt=0, opened_section__isnull=True, opened_url=""),  # none looked right
}
# Searches naming an error are grouped by its signature, the others by their text with
# case and outer spaces ignored.
GROUP_KEY = Coalesce(NullIf("signature", Value("")), Lower(Trim("query")), output_field=TextField())
COUNTS = [field for name in SEARCH_TABLES for field in (name, f"{name}_latest")]


@dataclass(frozen=True)
class Kept:
    """Settled days' searches summed from SearchDayGroup."""

    groups: list[dict]  # by key, shaped as SearchCounts.groups()
    daily: list[tuple]  # (day, signature, count, latest)


@dataclass(frozen=True)
class SearchCounts:
    """A period's searches counted by day and group: the settled days summed (`kept`: by
    group, and by day and signature), the days since as SearchDayGroup-shaped rows."""

    period: Period
    kept: Kept
    recent: list[dict]

    def groups(self) -> list[dict]:
        """By group: [{"key", "error" (its signature, or ""), and for each table of
        SEARCH_TABLES its count `name` and latest search's id `name_latest` (None when it
        counts none)}], in no particular order."""
        merged = {row["key"]: row for row in self.kept.groups}
        for row in self.recent:
            # A new dict each time: the kept rows are cached.
            earlier = merged.get(row["key"])
            group = merged[row["key"]] = {"key": row["key"], "error": row["signature"], **{f: row[f] for f in COUNTS}}
            if earlier is None:
                continue
            group["error"] = max(earlier["error"], row["signature"])
            for name in SEARCH_TABLES:
                group[name] += earlier[name]
                group[f"{name}_latest"] = _max(earlier[f"{name}_latest"], row[f"{name}_latest"])
        return list(merged.values())

    def daily(self) -> list[dict]:
        """By day and signature ("" for none): [{"bucket" (an index into period.days),
        "signature", "count", "latest" (the latest one's id)}]."""
        index = {day: n for n, day in enumerate(self.period.days)}
        recent: dict[tuple, list] = {}  # a day's questions come in as many rows as texts
        for row in self.recent:
            tally = recent.setdefault((row["day"], row["signature"]), [0, None])
            tally[0], tally[1] = tally[0] + row["top"], _max(tally[1], row["top_latest"])
        return [{"bucket": index[day], "signature": signature, "count": count, "latest": latest}
                for day, signature, count, latest in [*((*k, *v) for k, v in recent.items()), *self.kept.daily]]


def counts(period: Period, now: datetime | None = None) -> SearchCounts:
    """The period's searches: settled days from their kept counts (counted first where the log
    changed or they never were), the days since from the log."""
    first_open = settled_before(now)
    settled = [day for day in period.days if day < first_open]
    recent = [day for day in period.days if day >= first_open]
    return SearchCounts(period, _kept(settled) if settled else Kept([], []), _count(recent) if recent else [])


def keep(period: Period, now: datetime | None = None) -> dict[date, int]:
    """Count the period's settled days that are not kept or changed since; returns every
    settled day's searches."""
    settled = [day for day in period.days if day < settled_before(now)]
    if not settled:
        return {}
    refresh(settled)
    return {day: stamp[0] for day, stamp in _stamps(settled).items()}


def settled_before(now: datetime | None = None) -> date:
    """The first day that is not settled: a search of an earlier day can no longer be reported opened."""
    return timezone.localdate((now or timezone.now()) - timedelta(seconds=OPENED_MAX_AGE))


def refresh(days: list[date]) -> datetime:
    """Count the settled `days` (consecutive) that were never counted, or whose searches in
    the log changed since; returns when the last of them was counted."""
    stamps = _stamps(days)
    missing = [day for day in days if day not in stamps]
    if missing:
        _store(missing)
        stamps = _stamps(days)
    kept = (sum(stamp[0] for stamp in stamps.values()), max((s[1] for s in stamps.values() if s[1]), default=None))
    if kept != tuple(_logged(days).aggregate(n=Count("pk"), last=Max("pk")).values()):
        logged = {days[row["bucket"]]: (row["n"], row["last"])
                  for row in _bucketed(days).values("bucket").annotate(n=Count("pk"), last=Max("pk")).order_by()}
        changed = [day for day, stamp in stamps.items() if logged.get(day, (0, None)) != stamp[:2]]
        if changed:
            _store(changed)
            stamps = _stamps(days)
    return max((stamp[2] for stamp in stamps.values()), default=timezone.now())


def _kept(days: list[date]) -> Kept:
    """The settled `days` summed; cached under the time they were last counted, so a day
    counted again (or a newer VERSION) names new sums."""
    key = f"kb:searchdays:{VERSION}:{days[0]}:{days[-1]}:{refresh(days).isoformat()}"
    kept = caches[CACHE].get(key)
    if kept is None:
        stored = SearchDayGroup.objects.filter(day__range=(days[0], days[-1])).order_by()
        kept = Kept(
            list(stored.values("key").annotate(
                error=Max("signature"), **{f: (Max if f.endswith("_latest") else Sum)(f) for f in COUNTS})),
            list(stored.values_list("day", "signature").annotate(count=Sum("top"), latest=Max("top_latest"))),
        )
        caches[CACHE].set(key, kept, CACHE_SECONDS)
    return kept


def _stamps(days: list[date]) -> dict[date, tuple[int, int | None, datetime]]:
    return {day: stamp for day, *stamp in SearchDay.objects.filter(day__range=(days[0], days[-1]), version=VERSION)
            .values_list("day", "searches", "last_id", "counted_at")}


def _logged(days: list[date]):
    since, until = starts([days[0], days[-1] + timedelta(days=1)])
    return SearchLog.objects.filter(created_at__gte=since, created_at__lt=until)


def _bucketed(days: list[date]):
    return _logged(days).annotate(bucket=bucket("created_at", starts(days)))


def _count(days: list[date]) -> list[dict]:
    """The searches of consecutive `days` grouped by day, group and signature: rows shaped as
    SearchDayGroup's fields."""
    aggregates = {}
    for name, counted in SEARCH_TABLES.items():
        aggregates[name] = Count("pk", filter=counted)
        aggregates[f"{name}_latest"] = Max("pk", filter=counted)
    rows = list(_bucketed(days).annotate(key=GROUP_KEY).values("bucket", "key", "signature").annotate(**aggregates)
                .order_by())
    for row in rows:
        row["day"] = days[row.pop("bucket")]
    return rows


def _store(days: list[date]) -> None:
    wanted = set(days)
    rows = [row for row in _count([*_span(days)]) if row["day"] in wanted]
    totals = {day: (0, None) for day in days}
    for row in rows:
        searches, last = totals[row["day"]]
        totals[row["day"]] = (searches + row["top"], _max(last, row["top_latest"]))
    now = timezone.now()
    try:
        with transaction.atomic():
            # Stamps before groups: of two views counting the same day at once, the second
            # waits on the stamp's unique index, then fails, leaving the first one's rows.
            SearchDay.objects.filter(day__in=days).delete()
            SearchDayGroup.objects.filter(day__in=days).delete()
            SearchDay.objects.bulk_create([SearchDay(day=day, searches=n, last_id=last, version=VERSION, counted_at=now)
                                           for day, (n, last) in totals.items()])
            SearchDayGroup.objects.bulk_create([SearchDayGroup(**row) for row in rows], batch_size=2000)
    except IntegrityError:
        pass  # another view stored the same days, counted from the same log


def _span(days: list[date]) -> Iterable[date]:
    for n in range((days[-1] - days[0]).days + 1):
        yield days[0] + timedelta(days=n)


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)
