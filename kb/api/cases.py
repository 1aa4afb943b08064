"""Cases as the API shows them: the filtered, paginated list and one case's JSON.

The desk's functions (kb/desk/cases.py) own what a case is and how it changes; this
module only chooses rows and spells them as the OpenAPI document's Case schemas.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.db.models.functions import Substr
from django.urls import reverse

from kb.desk.cases import HEAD_CHARS, first_line
from kb.desk.conversation import timeline
from kb.guided.views import with_votes
from kb.models import Case, CaseEvent

DEFAULT_PER_PAGE = 25
# The keys of a recommendation as the person was shown it (the Recommendation schema).
RECOMMENDATION_KEYS = ("guide", "article", "anchor", "title", "article_title", "url", "snippet", "score", "why")


def case_list(
    *, status: str | None = None, since: datetime | None = None, content_missing: bool | None = None
) -> QuerySet[Case]:
    """Cases matching every given filter, most recently changed first (what a poller wants)."""
    cases = (
        Case.objects.select_related("diagnosis", "assignee", "section__article__guide")
        .defer("diagnosis__error_text", "diagnosis__recommendations", "details")
        .annotate(error_head=Substr("diagnosis__error_text", 1, HEAD_CHARS))
        .order_by("-updated_at", "-pk")
    )
    if status:
        cases = cases.filter(status=status)
    if since is not None:
        cases = cases.filter(updated_at__gte=since)
    if content_missing is not None:
        cases = cases.filter(content_missing=content_missing)
    return cases


def paginate(cases: QuerySet[Case], page: int | None, per_page: int | None) -> Page | None:
    """The requested page (1 when none), or None when the number is past the last page."""
    paginator = Paginator(cases, per_page or DEFAULT_PER_PAGE)
    number = page or 1
    return paginator.page(number) if number <= paginator.num_pages else None


def page_json(page: Page) -> dict[str, Any]:
    return {
        "count": page.paginator.count,
        "page": page.number,
        "pages": page.paginator.num_pages,
        "results": [case_summary(case, first_line(case.error_head)) for case in page.object_list],
    }


def case_summary(case: Case, error: str) -> dict[str, Any]:
    """What a list row says about a case (the CaseSummary schema); `error` is its first line."""
    analysis = case.diagnosis.analysis if isinstance(case.diagnosis.analysis, dict) else {}
    codes = analysis.get("codes")
    return {
        "reference": case.reference,
        "status": case.status,
        "name": case.name,
        "email": case.email,
        "assignee": case.assignee.get_username() if case.assignee else None,
        "content_missing": case.content_missing,
        "resolution": resolution(case),
        "error": error,
        "codes": [str(code) for code in codes] if isinstance(codes, list) else [],
        "created_at": case.created_at,
        "updated_at": case.updated_at,
        "url": reverse("api:case", args=[case.reference]),
        "desk_url": reverse("desk:case", args=[case.reference]),
    }


def section_key(guide: str, article: str, anchor: str) -> str:
    """How the API names a section: `guide/article#anchor`, as the desk's form accepts it."""
    return f"{guide}/{article}#{anchor}"


def resolution(case: Case) -> dict[str, Any] | None:
    """The section that resolved the case, by its key (kept if an import removed it), or None."""
    if not case.guide_slug:
        return None
    section = case.section
    return {
        "section": section_key(case.guide_slug, case.article_slug, case.anchor),
        "title": section.title if section else None,
        "url": section.get_absolute_url() if section else None,
    }


def case_detail(case: Case) -> dict[str, Any]:
    """One case with its diagnosis, the recommendations the person saw and its timeline (the Case schema)."""
    diagnosis = case.diagnosis
    return {
        **case_summary(case, first_line(diagnosis.error_text)),
        "details": case.details,
        "diagnosis": {
            "error_text": diagnosis.error_text,
            "context": diagnosis.context if isinstance(diagnosis.context, dict) else {},
            "analysis": diagnosis.analysis if isinstance(diagnosis.analysis, dict) else {},
            "signature": diagnosis.signature,
            "outcome": diagnosis.outcome,
            "created_at": diagnosis.created_at,
        },
        "recommendations": [
            {**{key: shown[key] for key in RECOMMENDATION_KEYS if key in shown}, "vote": shown["vote"] or None}
            for shown in with_votes(diagnosis)
        ],
        "timeline": [event_json(event) for event in timeline(case)],
    }


def event_json(event: CaseEvent) -> dict[str, Any]:
    """One entry of a case's timeline (the Event schema); internal notes included, as the desk sees them."""
    return {
        "kind": event.kind,
        "author": event.author.get_username() if event.author else None,
        "body": event.body,
        "old_status": event.old_status or None,
        "new_status": event.new_status or None,
        "created_at": event.created_at,
    }
