"""What people searched and pasted, and how guided runs ended, aggregated in the database.

Each function takes a Period and returns a few rows already grouped and counted by the
database (values/annotate), so the cost does not grow with Python loops over every
search, paste or vote. Searches that name an error are grouped by its signature (the
guided analyser's, stored with each search), the others by their normalised text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from heapq import nsmallest

from django.db.models import Count, F, Max, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Substr
from django.urls import NoReverseMatch, reverse

from kb.guided.analysis import ErrorAnalysis, explain
from kb.models import Case, Diagnosis, Feedback, SearchLog

from . import searchdays
from .period import Period
from .searchdays import SEARCH_TABLES

LIMIT = 20
# Showing a paste by its start: pastes run to 20,000 characters.
EXAMPLE_CHARS = 200
# Enough of a paste to name its codes and actions, without analysing 20,000 characters.
LABEL_CHARS = 4000
# A diagnosis's signature when the text named no error (searches store "" instead).
VAGUE_SIGNATURE = ErrorAnalysis().signature


@dataclass(frozen=True)
class Share:
    outcome: str
    label: str
    count: int
    percent: float


def in_period(queryset: QuerySet, period: Period, field: str = "created_at") -> QuerySet:
    return queryset.filter(**{f"{field}__gte": period.since, f"{field}__lt": period.until})


@dataclass(frozen=True)
class SearchTables:
    """[{"signature", "label", "text", "count", "last", "no_results"}] per table, most
    searches first; "last" is when the table's latest search of the group came."""

    top: list[dict]
    unanswered: list[dict]
    unopened: list[dict]


def search_tables(period: Period, limit: int = LIMIT, counts: searchdays.SearchCounts | None = None) -> SearchTables:
    """The period's searches grouped by signature where they named an error (`text` is the
    latest example, `label` what the signature stands for), by text with case and outer
    spaces ignored otherwise (`signature` and `label` empty).

    The groups (distinct errors and questions) are counted for every table at once (most
    days kept counted, see searchdays.py; `counts` when already at hand), and each table
    takes its biggest."""
    groups = (counts or searchdays.counts(period)).groups()
    tables = {
        name: [
            {"key": group["key"], "signature": group["error"], "count": group[name],
             "latest": group[f"{name}_latest"], "no_results": group["unanswered"]}
            for group in nsmallest(limit, (g for g in groups if g[name]), key=lambda g: (-g[name], g["key"]))
        ]
        for name in SEARCH_TABLES
    }
    rows = [row for table in tables.values() for row in table]
    # Each row's latest search gives its time (ids rise with time) and, for an error, its example.
    latest = {
        pk: (created_at, text) for pk, created_at, text in SearchLog.objects.filter(pk__in=[row["latest"] for row in rows])
        .values_list("pk", "created_at", Substr("query", 1, LABEL_CHARS))
    }
    labels: dict[str, str] = {}  # one analysis per signature, however many tables show it
    for row in rows:
        key, (row["last"], example) = row.pop("key"), latest[row.pop("latest")]
        if row["signature"]:
            if row["signature"] not in labels:
                labels[row["signature"]] = example_label(example)
            row.update(text=example[:EXAMPLE_CHARS], label=labels[row["signature"]])
        else:
            row.update(text=key, label="")
    return SearchTables(**tables)


@lru_cache(maxsize=1024)
def example_label(text: str) -> str:
    """signature_label of the analysis of `text`, an example of a signature. Memoised: the
    analysis is pure and the same latest examples come back on every view of the page."""
    return signature_label(explain(text).as_dict())


def signature_label(analysis: Mapping) -> str:
    """What a signature stands for, in a few words, from an analysis (ErrorAnalysis.as_dict(),
    or a diagnosis's stored one): its codes, actions, operations, denial, policy types and
    credential problems; "" when it names none of them."""
    words = [*analysis.get("codes", []), *analysis.get("actions", []), *analysis.get("operations", [])]
    if analysis.get("denial"):
        words.append(f"{analysis['denial']} deny")
    words.extend(analysis.get("policy_types", []))
    words.extend(f"credentials: {problem}" for problem in analysis.get("credential_problems", []))
    return " · ".join(str(word) for word in words)


def resolution(period: Period) -> list[Share]:
    """How guided runs ended: fixed without a case, escalated, still open; with percentages."""
    counts = dict(
        in_period(Diagnosis.objects, period).values_list("outcome").annotate(n=Count("pk")).order_by()
    )
    total = sum(counts.values())
    return [
        Share(value, label, counts.get(value, 0), round(100 * counts.get(value, 0) / total, 1) if total else 0.0)
        for value, label in Diagnosis.Outcome.choices
    ]


def not_this_sections(period: Period, limit: int = LIMIT) -> list[dict]:
    """[{"guide_slug", "article_slug", "anchor", "title", "url", "not_this", "helped"}]: sections most
    often voted "Not this", by their stable key so votes on since-removed sections still count."""
    rows = list(
        in_period(Feedback.objects, period)
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


def cases_by_code(period: Period) -> list[dict]:
    """[{"code", "cases", "open", "content_missing"}]: cases by the first error code the analyser
    found (None when it found none). Only the first, so each case counts once."""
    first_code = KeyTextTransform("0", KeyTransform("codes", "diagnosis__analysis"))
    return list(
        in_period(Case.objects, period)
        .annotate(code=first_code)
        .values("code")
        .annotate(
            cases=Count("pk"),
            open=Count("pk", filter=~Q(status=Case.Status.RESOLVED)),
            content_missing=Count("pk", filter=Q(content_missing=True)),
        )
        .order_by("-cases", F("code").asc(nulls_last=True))
    )


def _section_url(guide: str, article: str, anchor: str) -> str:
    try:
        url = reverse("kb:article", args=[guide, article])
    except NoReverseMatch:  # an empty slug: feedback recorded without a section key
        return ""
    return f"{url}#{anchor}" if anchor else url
