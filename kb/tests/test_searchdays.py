"""Searches counted per day and kept for settled days (kb/desk/searchdays.py): what the insights
page reads must equal a direct count of the log's rows, however the log changes after a day
was kept, on whichever database the suite runs.

The expected figures are counted here in Python from every row of the period.
"""

import io
import random
from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from kb.desk import searchdays
from kb.desk.buckets import starts
from kb.desk.insights import search_tables
from kb.desk.period import Period
from kb.desk.report import insights_report
from kb.models import SearchDay, SearchDayGroup, SearchLog

QUESTIONS = ["how do I rotate keys", "  How do I rotate KEYS ", "share a bucket", "Share a bucket", "delete a role"]
SIGNATURES = ["", "", "sig-denied", "sig-expired", "sig-throttled"]


def fill(rng: random.Random, rows: int, days: int) -> list[SearchLog]:
    """Searches in time order (ids rise with time) over the last `days` days, some today."""
    now = timezone.now()
    ages = sorted((timedelta(seconds=rng.randrange(days * 24 * 3600)) for _ in range(rows)), reverse=True)
    logs = []
    for age in ages:
        signature = rng.choice(SIGNATURES)
        logs.append(SearchLog(query=rng.choice(QUESTIONS) if not signature else f"Error {rng.random()} {signature}",
                              signature=signature, result_count=rng.choice([0, 2, 5]),
                              opened_url=rng.choice(["", "", "/kb/g/a/#s"])))
    logs = SearchLog.objects.bulk_create(logs)
    for log, age in zip(logs, ages):
        log.created_at = now - age  # auto_now_add stamped them with now
    SearchLog.objects.bulk_update(logs, ["created_at"])
    return logs


def counted_directly(period: Period) -> tuple[list[dict], dict]:
    """The period's groups and its searches per (day, signature), from every row."""
    groups: dict[str, dict] = {}
    daily: dict = defaultdict(lambda: [0, 0])
    for log in SearchLog.objects.filter(created_at__gte=period.since, created_at__lt=period.until):
        key = log.signature or log.query.strip(" ").lower()
        group = groups.setdefault(key, {"key": key, "error": "", **{f: 0 for f in ("top", "unanswered", "unopened")},
                                        **{f"{f}_latest": None for f in ("top", "unanswered", "unopened")}})
        group["error"] = max(group["error"], log.signature)
        tables = {"top": True, "unanswered": log.result_count == 0,
                  "unopened": log.result_count > 0 and log.opened_section_id is None and not log.opened_url}
        for name in (name for name, counts in tables.items() if counts):
            group[name] += 1
            group[f"{name}_latest"] = max(group[f"{name}_latest"] or 0, log.pk)
        tally = daily[(timezone.localdate(log.created_at), log.signature)]
        tally[0], tally[1] = tally[0] + 1, max(tally[1], log.pk)
    return sorted(groups.values(), key=lambda g: g["key"]), dict(daily)


def read(period: Period) -> tuple[list[dict], dict]:
    """What the insights page reads, in the shape of counted_directly."""
    counts = searchdays.counts(period)
    daily: dict = defaultdict(lambda: [0, 0])
    for row in counts.daily():
        tally = daily[(period.days[row["bucket"]], row["signature"])]
        tally[0], tally[1] = tally[0] + row["count"], max(tally[1], row["latest"])
    return sorted(counts.groups(), key=lambda g: g["key"]), dict(daily)


@pytest.fixture
def logs():
    return fill(random.Random(11), 400, 40)


@pytest.mark.django_db
def test_kept_days_give_the_same_counts_as_the_log(logs):
    period = Period.last()
    expected = counted_directly(period)
    assert read(period) == expected  # counting and keeping the settled days
    kept = set(SearchDay.objects.values_list("day", flat=True))
    assert kept == {day for day in period.days if day < searchdays.settled_before()}
    assert read(period) == expected  # reading them back, summed once and cached
    inner = Period(period.start + timedelta(days=3), period.end - timedelta(days=5))
    assert read(inner) == counted_directly(inner)
    SearchDayGroup.objects.all().delete()
    assert read(period) == expected  # from the cache: nothing was counted again


@pytest.mark.django_db
def test_the_page_shows_the_same_tables_from_kept_days_as_from_the_log(logs):
    period = Period.last()
    counted = insights_report(period)  # every settled day counted from the log now
    assert SearchDay.objects.exists()
    kept = insights_report(period)
    assert (kept.searches, kept.days, kept.signatures) == (counted.searches, counted.days, counted.signatures)
    assert search_tables(period, 5) == search_tables(period, 5)


@pytest.mark.django_db
def test_a_search_logged_late_for_a_kept_day_is_counted(logs):
    period = Period.last()
    read(period)
    day = period.days[3]
    late = SearchLog.objects.create(query="share a bucket", result_count=0)  # a clock far behind
    midnight = timezone.make_aware(datetime.combine(day, datetime.min.time()))
    SearchLog.objects.filter(pk=late.pk).update(created_at=midnight)
    assert read(period) == counted_directly(period)
    assert SearchDay.objects.get(day=day).last_id == late.pk


@pytest.mark.django_db
def test_deleting_old_searches_removes_them_from_kept_days(logs):
    period = Period.last()
    read(period)
    SearchLog.objects.filter(created_at__lt=period.since + timedelta(days=10)).delete()
    SearchLog.objects.filter(pk=logs[-200].pk).delete()
    assert read(period) == counted_directly(period)
    assert not SearchDayGroup.objects.filter(day__lt=period.start + timedelta(days=10)).exists()


@pytest.mark.django_db
def test_a_new_version_of_the_grouping_counts_every_day_again(logs, monkeypatch):
    period = Period.last()
    read(period)
    SearchDayGroup.objects.update(top=0)  # what the old rules counted: no longer trusted
    monkeypatch.setattr(searchdays, "VERSION", searchdays.VERSION + 1)
    assert read(period) == counted_directly(period)
    assert set(SearchDay.objects.values_list("version", flat=True)) == {searchdays.VERSION}


def test_a_day_is_settled_once_its_searches_can_no_longer_be_reported_opened(settings):
    settings.TIME_ZONE = "Europe/Paris"
    now = timezone.make_aware(datetime(2026, 3, 10, 10, 0))
    # A search at 23:59 on the 9th may be reported opened until 23:59 on the 10th.
    assert searchdays.settled_before(now) == datetime(2026, 3, 9).date()
    assert searchdays.settled_before(now.replace(hour=0, minute=0)) == datetime(2026, 3, 9).date()
    just_before = now.replace(hour=0, minute=0) - timedelta(seconds=1)
    assert searchdays.settled_before(just_before) == datetime(2026, 3, 8).date()


@pytest.mark.django_db
def test_days_in_the_site_time_zone_are_kept_as_the_page_buckets_them(settings):
    settings.TIME_ZONE = "America/New_York"  # DST began on 2026-03-08 there
    fill(random.Random(5), 300, 366)
    period = Period(timezone.localdate() - timedelta(days=365), timezone.localdate())
    assert read(period) == counted_directly(period)
    assert read(period) == counted_directly(period)


@pytest.mark.django_db
def test_the_command_keeps_the_settled_days_ahead_of_the_first_view(logs):
    out = io.StringIO()
    call_command("keep_search_days", "--days", "30", stdout=out)
    period = Period.last()
    settled = [day for day in period.days if day < searchdays.settled_before()]
    logged = SearchLog.objects.filter(created_at__gte=period.since,
                                      created_at__lt=starts([settled[-1] + timedelta(days=1)])[0]).count()
    assert out.getvalue() == f"{len(settled)} settled days kept, {logged} searches.\n"
    assert set(SearchDay.objects.values_list("day", flat=True)) == set(settled)
    with pytest.raises(CommandError, match="between 1 and 366"):
        call_command("keep_search_days", "--days", "0")
