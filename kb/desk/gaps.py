"""Content gaps for the people who write the guides: errors the portal did not answer.

Three signals, each grouped by error signature in the database and merged here:
- cases the desk marked "content missing" (by when the case was opened);
- guided runs nothing answered: no recommendation, escalated to the desk, or voted
  "Not this" without any "This fixed it";
- searches naming an error that found no result.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet
from django.db.models.functions import Substr

from kb.guided.analysis import explain
from kb.models import Case, Diagnosis, Feedback, SearchLog

from .insights import EXAMPLE_CHARS, LABEL_CHARS, LIMIT, in_period, signature_label
from .period import Period

CASES_PER_GAP = 5
# Candidates from each signal before merging: enough that the biggest gaps are among them.
CANDIDATES = 200


def unanswered_runs() -> QuerySet[Diagnosis]:
    """Guided runs nothing answered: no recommendation, escalated, or only "Not this" votes."""
    votes = Feedback.objects.filter(diagnosis=OuterRef("pk"))
    return Diagnosis.objects.filter(
        Q(recommendations=[])
        | Q(outcome=Diagnosis.Outcome.ESCALATED)
        | (Q(Exists(votes.filter(vote=Feedback.Vote.NOT_THIS))) & ~Q(Exists(votes.filter(vote=Feedback.Vote.HELPED))))
    )


def content_gaps(period: Period, limit: int = LIMIT) -> list[dict]:
    """[{"signature", "label", "example", "missing", "runs", "escalated", "searches", "last",
    "cases": [{"reference", "content_missing", "status"}]}], the most unanswered first.

    `missing` counts cases marked content missing, `runs` unanswered guided runs (of
    which `escalated` went to the desk), `searches` searches with no result.
    """
    runs = in_period(unanswered_runs(), period).values("signature").annotate(
        count=Count("pk"), escalated=Count("pk", filter=Q(outcome=Diagnosis.Outcome.ESCALATED)),
        last=Max("created_at"), diagnosis=Max("pk"),
    )
    missing = in_period(Case.objects.filter(content_missing=True), period).values(
        signature=F("diagnosis__signature")
    ).annotate(count=Count("pk"), last=Max("created_at"), diagnosis=Max("diagnosis_id"))
    searches = in_period(SearchLog.objects.exclude(signature="").filter(result_count=0), period).values(
        "signature"
    ).annotate(count=Count("pk"), last=Max("created_at"), search=Max("pk"))

    merged: dict[str, dict[str, Any]] = {}
    for name, rows in (("runs", runs), ("missing", missing), ("searches", searches)):
        for row in rows.order_by("-count", "signature")[:CANDIDATES]:
            gap = merged.setdefault(row["signature"], {
                "signature": row["signature"], "missing": 0, "runs": 0, "escalated": 0, "searches": 0,
                "last": row["last"], "diagnosis": None, "search": None,
            })
            gap[name] = row["count"]
            gap["escalated"] = max(gap["escalated"], row.get("escalated", 0))
            gap["last"] = max(gap["last"], row["last"])
            gap["diagnosis"] = max(filter(None, [gap["diagnosis"], row.get("diagnosis")]), default=None)
            gap["search"] = gap["search"] or row.get("search")
    gaps = sorted(merged.values(), key=lambda g: (-(g["runs"] + g["searches"]), -g["missing"], g["signature"]))[:limit]
    _describe(gaps)
    cases = _cases([gap["signature"] for gap in gaps], period)
    for gap in gaps:
        gap["cases"] = cases.get(gap["signature"], [])
    return gaps


def _describe(gaps: list[dict]) -> None:
    """An example and a label per gap: the latest unanswered paste's (its stored analysis),
    else the latest search's."""
    pastes = {
        pk: (text, analysis) for pk, text, analysis in Diagnosis.objects.filter(
            pk__in=[g["diagnosis"] for g in gaps if g["diagnosis"]]
        ).values_list("pk", Substr("error_text", 1, EXAMPLE_CHARS), "analysis")
    }
    searches = dict(SearchLog.objects.filter(pk__in=[g["search"] for g in gaps if g["search"]])
                    .values_list("pk", Substr("query", 1, LABEL_CHARS)))
    for gap in gaps:
        diagnosis, search = gap.pop("diagnosis"), gap.pop("search")
        if diagnosis in pastes:
            text, analysis = pastes[diagnosis]
        else:
            text = searches.get(search, "")
            analysis = explain(text).as_dict()
        gap.update(example=text[:EXAMPLE_CHARS], label=signature_label(analysis))


def _cases(signatures: Iterable[str], period: Period) -> dict[str, list[dict]]:
    """The newest cases (up to CASES_PER_GAP) per signature opened in the period."""
    found: dict[str, list[dict]] = {}
    rows = in_period(Case.objects.filter(diagnosis__signature__in=list(signatures)), period).order_by("-created_at")
    for row in rows.values("reference", "content_missing", "status", signature=F("diagnosis__signature"))[:500]:
        listed = found.setdefault(row.pop("signature"), [])
        if len(listed) < CASES_PER_GAP:
            listed.append(row)
    return found
