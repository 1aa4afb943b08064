"""CSV exports of the insights and content-gap tables, for one period.

Each table is named once here with its columns and the function that computes its rows
(the page's own, with more rows). Cells a spreadsheet would read as a formula get a
leading quote (OWASP's CSV injection advice), as pasted errors are anyone's text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from datetime import date, datetime
from typing import Any

from . import gaps, insights, trends
from .period import Period

ROWS = 1000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[tuple[str, str], ...]  # (key in a row, header)
    rows: Callable[[Period], Iterable[Any]]


SEARCH_COLUMNS = (("label", "Error signature"), ("text", "Query or example"), ("count", "Searches"), ("last", "Last"))

TABLES: dict[str, Table] = {
    "activity": Table("Searches and pasted errors per day", (
        ("day", "Day"), ("searches", "Searches"), ("error_searches", "Searches naming an error"),
        ("guided", "Guided pastes"),
    ), lambda period: trends.daily_activity(trends.activity(period))),
    "outcomes": Table("Outcome of guided runs per week", (
        ("week", "Week (Monday)"), ("fixed", "Fixed without a case"), ("escalated", "Escalated"),
        ("abandoned", "Abandoned"), ("open", "Still open"),
    ), trends.weekly_outcomes),
    "signatures": Table("Top error signatures", (
        ("label", "Error signature"), ("signature", "Signature id"), ("example", "Example"),
        ("searches", "Searches"), ("guided", "Guided pastes"), ("count", "Total"), ("last", "Last"),
        ("trend", "Per day"),
    ), lambda period: trends.top_signatures(trends.activity(period), ROWS)),
    "top-searches": Table("Top searches", SEARCH_COLUMNS[:3] + (("no_results", "No result"), ("last", "Last")),
                          lambda period: insights.search_tables(period, ROWS).top),
    "unanswered-searches": Table("Searches with no result", SEARCH_COLUMNS,
                                 lambda period: insights.search_tables(period, ROWS).unanswered),
    "unopened-searches": Table("Searches where no result was opened", SEARCH_COLUMNS,
                               lambda period: insights.search_tables(period, ROWS).unopened),
    "resolution": Table("Guided troubleshooting outcomes", (
        ("label", "Outcome"), ("count", "Runs"), ("percent", "Share (%)"),
    ), insights.resolution),
    "not-this": Table("Sections most often marked Not this", (
        ("title", "Section"), ("url", "Address"), ("not_this", "Not this"), ("helped", "Helped"),
    ), lambda period: insights.not_this_sections(period, ROWS)),
    "cases-by-code": Table("Cases by error code", (
        ("code", "Code"), ("cases", "Cases"), ("open", "Open"), ("content_missing", "Content missing"),
    ), insights.cases_by_code),
    "gaps": Table("Content gaps", (
        ("label", "Error signature"), ("signature", "Signature id"), ("example", "Example"),
        ("missing", "Cases marked content missing"), ("runs", "Unanswered guided runs"), ("escalated", "Escalated"),
        ("searches", "Searches with no result"), ("last", "Last seen"), ("cases", "Cases"),
    ), lambda period: gaps.content_gaps(period, ROWS)),
}


def write_csv(table: Table, period: Period, out: io.TextIOBase) -> None:
    """The table's header and rows for `period`, as CSV, to `out`."""
    writer = csv.writer(out)
    writer.writerow([header for _key, header in table.columns])
    for row in table.rows(period):
        values = asdict(row) if is_dataclass(row) else row
        writer.writerow([cell(_value(values, key)) for key, _header in table.columns])


def cell(value: Any) -> str:
    """A value as CSV text that no spreadsheet runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _value(row: Mapping[str, Any], key: str) -> Any:
    value = row.get(key)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if key == "cases":
        return " ".join(case["reference"] for case in value or [])
    if key == "trend":
        return " ".join(str(n) for n in value)
    return value
