"""The API's own endpoints: cases, replies, feedback, the OpenAPI document and its reference page.

Search, suggest and recommend keep their views in kb/search and kb/guided. Each view here
validates with a form, calls one function and answers JSON; `endpoint` checks the method
and the token's scope first, and answers the ApiError a helper raises on bad input.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from kb.desk import conversation
from kb.desk.cases import case_for_desk
from kb.desk.forms import CaseUpdateForm
from kb.guided.flow import record_feedback, voter
from kb.models import ApiToken, Case
from kb.ratelimit import client_identity

from . import openapi
from .auth import endpoint
from .cases import case_detail, case_list, event_json, page_json, paginate, section_key
from .forms import CaseListForm, ReplyForm, SectionVoteForm
from .http import ApiError, cleaned, json_fields
from .reference import reference as api_reference

READ, WRITE = ApiToken.Scope.READ, ApiToken.Scope.WRITE


@endpoint("GET")
def document(request: HttpRequest) -> JsonResponse:
    return JsonResponse(openapi.document())


@endpoint("GET")
def reference_page(request: HttpRequest) -> HttpResponse:
    """The human-readable reference, printed from the same document."""
    return render(request, "kb/api/reference.html", {"api": api_reference()})


@endpoint("GET", scope=READ)
def cases(request: HttpRequest) -> JsonResponse:
    filters = cleaned(CaseListForm(request.GET), "invalid parameters")
    found = case_list(status=filters["status"], since=filters["since"], content_missing=filters["content_missing"])
    page = paginate(found, filters["page"], filters["per_page"])
    if page is None:
        raise ApiError(404, f"there is no page {filters['page']} of these cases")
    return JsonResponse(page_json(page))


@endpoint("GET", scope=READ)
def case(request: HttpRequest, reference: str) -> JsonResponse:
    return JsonResponse(case_detail(existing(reference)))


@endpoint("POST", scope=WRITE)
def case_status(request: HttpRequest, reference: str) -> JsonResponse:
    """{"status", "note"?}: as the desk's form with only those fields, the others as they are: a
    resolution is cleared on reopening and kept when a resolved case is set resolved again."""
    found = existing(reference)
    data = json_fields(request, {"status": str, "note": str})
    if found.status == Case.Status.RESOLVED and data.get("status") == Case.Status.RESOLVED:
        note = cleaned(CaseUpdateForm(data))["note"]
        if note.strip():
            conversation.add_note(found, request.api_token.user, note)
        return JsonResponse(case_detail(found))
    return change_case(request, found, data)


@endpoint("POST", scope=WRITE)
def case_resolve(request: HttpRequest, reference: str) -> JsonResponse:
    """{"section"} or {"content_missing": true}, and "note"?: resolves the case."""
    found = existing(reference)
    data = json_fields(request, {"section": str, "content_missing": bool, "note": str})
    if not (data.get("section") or data.get("content_missing")):
        raise ApiError(400, "name the section that resolved the case, or set content_missing to true")
    return change_case(request, found, {**data, "status": Case.Status.RESOLVED})


def change_case(request: HttpRequest, found: Case, data: dict) -> JsonResponse:
    """Validate with the desk's form and apply it as the desk does, as the token's user: the
    timeline records it, and a resolution mails the person and calls the webhooks."""
    change = cleaned(CaseUpdateForm(data))
    saved = conversation.update_case(
        found, user=request.api_token.user, status=change["status"], section=change["section"],
        content_missing=change["content_missing"], note=change["note"],
    )
    return JsonResponse(case_detail(saved))


@endpoint("POST", scope=WRITE)
def case_reply(request: HttpRequest, reference: str) -> JsonResponse:
    """{"body"}: a message to the person, shown on their case page and mailed to them."""
    found = existing(reference)
    reply = cleaned(ReplyForm(json_fields(request, {"body": str})))
    event = conversation.reply(found, request.api_token.user, reply["body"])
    return JsonResponse(event_json(event), status=201)


@endpoint("POST", scope=WRITE)
def feedback(request: HttpRequest) -> JsonResponse:
    """{"section", "vote"}: a vote on a section, as on its article page, counted as the token's."""
    vote = cleaned(SectionVoteForm(json_fields(request, {"section": str, "vote": str})))
    section = vote["section"]
    record_feedback(section, vote["vote"], voter=voter(client_identity(request)))
    key = section_key(section.article.guide.slug, section.article.slug, section.anchor)
    return JsonResponse({"section": key, "url": section.get_absolute_url(), "vote": vote["vote"]}, status=201)


def existing(reference: str) -> Case:
    """The case, or ApiError 404."""
    found = case_for_desk(reference)
    if found is None:
        raise ApiError(404, f"no case {reference}")
    return found
