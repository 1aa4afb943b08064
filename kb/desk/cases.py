"""Help-desk cases: the queue and the case file as the person left it (changes: conversation.py).

Everything here is a plain function so tests can call it without HTTP. What the
person pasted and what the analyser produced is untrusted text: nothing here marks
anything safe, and recommendation snippets are reduced to plain text.
"""

from __future__ import annotations

import html
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.paginator import Page, Paginator
from django.db.models import Count
from django.db.models.functions import Substr
from django.urls import Resolver404, resolve
from django.utils.html import strip_tags

from kb.guided.activities import find as find_activity
from kb.models import Case, Diagnosis, Feedback, Section

PAGE_SIZE = 25
# Enough of the error to find its first line without loading 20,000 characters per row.
HEAD_CHARS = 400
FIRST_LINE_CHARS = 160

# Labels for the context and analysis keys the guided flow writes, in the order they are
# shown; keys added later get a label from their name and come after these.
LABELS = {
    "activity": "Doing",
    "service": "Service or tool",
    "codes": "Error codes",
    "actions": "Actions",
    "operations": "Operations",
    "statuses": "HTTP status",
    "principal": "Principal",
    "account": "Account",
    "resource": "Resource",
    "access_denied": "Access denied",
    "denial": "Denial",
    "policy_types": "Policy types",
    "credential_problems": "Credential problems",
    "sign_in": "Sign-in problem",
}


@dataclass(frozen=True)
class QueueRow:
    case: Case
    codes: list[str]
    first_line: str


@dataclass(frozen=True)
class ShownRecommendation:
    """One recommendation as the person saw it, with the votes they gave it."""

    title: str
    href: str
    snippet: str
    score: Any
    why: list[str]
    votes: list[str]


@dataclass(frozen=True)
class CaseFile:
    """Everything the desk shows about a case, ready for the template to print."""

    case: Case
    summary: list[str]
    facts: list[tuple[str, str]]
    context: list[tuple[str, str]]
    recommendations: list[ShownRecommendation]
    other_feedback: list[Feedback]


def status_counts() -> dict[str, int]:
    """Cases per status (every status present, zero when none), counted in one query."""
    counts = dict(Case.objects.values_list("status").annotate(n=Count("id")).order_by())
    return {status: counts.get(status, 0) for status in Case.Status.values}


def queue_page(status: str | None, page_number: str | int | None) -> Page:
    """One page of the queue, newest first; `status=None` means every case.

    The page's object_list holds QueueRow items. A bad page number gives the nearest page.
    """
    cases = (
        Case.objects.select_related("diagnosis", "assignee")
        .only("reference", "status", "created_at", "assignee__username", "diagnosis__analysis")
        .annotate(error_head=Substr("diagnosis__error_text", 1, HEAD_CHARS))
        .order_by("-created_at", "-pk")
    )
    if status is not None:
        cases = cases.filter(status=status)
    page = Paginator(cases, PAGE_SIZE).get_page(page_number)
    page.object_list = [
        QueueRow(case=case, codes=_strings(_analysis(case.diagnosis).get("codes")), first_line=first_line(case.error_head))
        for case in page.object_list
    ]
    return page


def first_line(text: str) -> str:
    """The first non-blank line, shortened: how a queue row names the error."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= FIRST_LINE_CHARS else line[: FIRST_LINE_CHARS - 1] + "…"


def case_for_desk(reference: str) -> Case | None:
    """The case with everything its page prints, or None."""
    return (
        Case.objects.select_related("diagnosis", "assignee", "section__article__guide")
        .filter(reference=reference)
        .first()
    )


def case_file(case: Case) -> CaseFile:
    """The case as the person left it: analysis, recommendations with their votes, other feedback."""
    diagnosis = case.diagnosis
    analysis = _analysis(diagnosis)
    feedback = list(diagnosis.feedback.select_related("section__article__guide").order_by("created_at"))
    votes: dict[tuple[str, str, str], list[str]] = {}
    for vote in feedback:
        votes.setdefault((vote.guide_slug, vote.article_slug, vote.anchor), []).append(vote.get_vote_display())
    shown = [_shown(item, votes) for item in diagnosis.recommendations if isinstance(item, dict)]
    recommended = {_key(item) for item in diagnosis.recommendations if isinstance(item, dict)}
    return CaseFile(
        case=case,
        summary=_strings(analysis.get("summary")),
        facts=facts(analysis, skip={"summary"}),
        context=facts(_context(diagnosis)),
        recommendations=shown,
        other_feedback=[f for f in feedback if (f.guide_slug, f.article_slug, f.anchor) not in recommended],
    )


def facts(data: dict[str, Any], *, skip: Collection[str] = ()) -> list[tuple[str, str]]:
    """(label, text) for each non-empty value, for a definition list; lists are joined with commas.

    Known keys come in the analyser's documented order, others by name: PostgreSQL's jsonb
    does not keep the order keys were written in.
    """
    order = {key: position for position, key in enumerate(LABELS)}
    return [
        (LABELS.get(key, str(key).replace("_", " ").capitalize()), _text(value))
        for key, value in sorted(data.items(), key=lambda item: (order.get(item[0], len(order)), str(item[0])))
        if key not in skip and value is not None and value is not False and value not in ("", [], {})
    ]


def section_from_reference(reference: str) -> Section | None:
    """The section a staff member means, or None if there is no such section.

    Accepts a portal URL, absolute or not (`https://host/kb/g/a/#x`, `/kb/g/a/#x`, the
    AWS-style `/kb/g/a.html#x`) or a key `g/a#x`. Without an anchor it means the article's
    first section, its title.
    """
    try:
        parts = urlsplit(reference.strip())
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    path, anchor = unquote(parts.path), unquote(parts.fragment)
    if "\x00" in path + anchor:  # "%00": PostgreSQL rejects NUL in a query parameter
        return None
    if path.startswith("/"):
        try:
            match = resolve(path)
        except Resolver404:
            return None
        if match.namespace != "kb" or match.url_name not in {"article", "article-html"}:
            return None
        guide, article = match.kwargs["guide"], match.kwargs["article"]
    else:
        guide, _, article = path.strip("/").partition("/")
    sections = Section.objects.select_related("article__guide").filter(
        article__guide__slug=guide, article__slug=article
    )
    if anchor:
        return sections.filter(anchor=anchor).first()
    return sections.order_by("position").first()


def _analysis(diagnosis: Diagnosis) -> dict[str, Any]:
    return diagnosis.analysis if isinstance(diagnosis.analysis, dict) else {}


def _context(diagnosis: Diagnosis) -> dict[str, Any]:
    """The context with the activity as the form worded it ("api" -> "calling an API, ..."); a key
    no longer offered (its guide dropped it) is shown as stored."""
    context = dict(diagnosis.context) if isinstance(diagnosis.context, dict) else {}
    activity = find_activity(str(context.get("activity", "")))
    if activity:
        context["activity"] = activity.label
    return context


def _strings(value: Any) -> list[str]:
    """A JSON value that should be a list of strings, as one (a lone string becomes a list)."""
    if value is None or value == "":
        return []
    return [_text(item) for item in value] if isinstance(value, list) else [_text(value)]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_text(item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_text(item)}" for key, item in sorted(value.items()))
    return str(value)


def _key(item: dict[str, Any]) -> tuple[str, str, str]:
    return (str(item.get("guide", "")), str(item.get("article", "")), str(item.get("anchor", "")))


def _shown(item: dict[str, Any], votes: dict[tuple[str, str, str], list[str]]) -> ShownRecommendation:
    url = str(item.get("url", ""))
    return ShownRecommendation(
        title=str(item.get("title") or url or "(untitled)"),
        # Only links within the portal: the stored URL is data, and "javascript:" is a URL too.
        href=url if url.startswith("/") and not url.startswith("//") else "",
        # The snippet was escaped and then marked; staff get its plain text, escaped again on output.
        snippet=html.unescape(strip_tags(str(item.get("snippet", "")))),
        score=item.get("score"),
        why=_strings(item.get("why")),
        votes=votes.get(_key(item), []),
    )
