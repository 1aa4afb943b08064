"""Everything the insights page shows for one period: its tables and their charts."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.safestring import SafeString

from . import charts, insights, searchdays, trends
from .period import Period


@dataclass(frozen=True)
class InsightsReport:
    period: Period
    abandoned_hours: int
    days: list[trends.Day]
    activity_chart: SafeString
    weeks: list[trends.Week]
    outcomes_chart: SafeString
    signatures: list[dict]  # each with a "sparkline"
    searches: insights.SearchTables
    resolution: list[insights.Share]
    not_this_sections: list[dict]
    cases_by_code: list[dict]


def insights_report(period: Period) -> InsightsReport:
    searches = searchdays.counts(period)  # read by the search tables and the daily chart
    activity = trends.activity(period, searches)
    days = trends.daily_activity(activity)
    weeks = trends.weekly_outcomes(period)
    signatures = trends.top_signatures(activity)
    for row in signatures:
        row["sparkline"] = charts.sparkline(
            f"{row['label'] or 'No error named'}: {sum(row['trend'])} over {len(row['trend'])} days, "
            f"at most {max(row['trend'], default=0)} a day", row["trend"]
        )
    return InsightsReport(
        period=period,
        abandoned_hours=trends.abandoned_hours(),
        days=days,
        activity_chart=activity_chart(period, days),
        weeks=weeks,
        outcomes_chart=outcomes_chart(weeks),
        signatures=signatures,
        searches=insights.search_tables(period, counts=searches),
        resolution=insights.resolution(period),
        not_this_sections=insights.not_this_sections(period),
        cases_by_code=insights.cases_by_code(period),
    )


def activity_chart(period: Period, days: list[trends.Day]) -> SafeString:
    series = [
        charts.Series("Searches", [d.searches for d in days]),
        charts.Series("Naming an error", [d.error_searches for d in days]),
        charts.Series("Guided pastes", [d.guided for d in days]),
    ]
    totals = ", ".join(f"{s.label.lower()} {sum(s.values)}" for s in series)
    return charts.line_chart(
        "activity-chart", "Searches and pasted errors per day",
        f"From {period.start:%Y-%m-%d} to {period.end:%Y-%m-%d}, in total: {totals}.",
        [f"{d.day:%m-%d}" for d in days], series,
    )


def outcomes_chart(weeks: list[trends.Week]) -> SafeString:
    series = [
        charts.Series("Fixed", [w.fixed for w in weeks]),
        charts.Series("Escalated", [w.escalated for w in weeks]),
        charts.Series("Abandoned", [w.abandoned for w in weeks]),
        charts.Series("Still open", [w.open for w in weeks]),
    ]
    totals = ", ".join(f"{s.label.lower()} {sum(s.values)}" for s in series)
    return charts.stacked_bars(
        "outcomes-chart", "Outcome of guided runs per week",
        f"Guided runs by the week they started (weeks begin on Monday), in total: {totals}.",
        [f"{w.week:%m-%d}" for w in weeks], series,
    )
