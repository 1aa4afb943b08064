"""The API's own endpoints: cases, feedback, the OpenAPI document and its reference page.

Search, suggest and recommend keep their views in kb/search and kb/guided. Each view here
validates with a form, calls one function and answers JSON; `endpoint` checks the method
and the token's scope first.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from kb.desk import conversation
from kb.desk.cases import case_for_desk
from kb.desk.forms import CaseUpdateForm
from kb.guided.flow import record_feedback
from kb.models import ApiToken, Case

from . import openapi
from .auth import endpoint
from .cases import case_detail, case_list, event_json, page_json, paginate
from .forms import CaseListForm, ReplyForm, SectionVoteForm
from .http import error, json_object, wrong_types
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
    form = CaseListForm(request.GET)
    if not form.is_valid():
        return error(400, "invalid parameters", fields=form.errors.get_json_data())
    filters = form.cleaned_data
    page = paginate(
        case_list(status=filters["status"], since=filters["since"], content_missing=filters["content_missing"]),
        filters["page"], filters["per_page"],
    )
    if page is None:
        return error(404, f"there is no page {filters['page']} of these cases")
    return JsonResponse(page_json(page))


@endpoint("GET", scope=READ)
def case(request: HttpRequest, reference: str) -> JsonResponse:
    found = case_detail(reference)
    if found is None:
        return error(404, f"no case {reference}")
    return JsonResponse(found)


@endpoint("POST", scope=WRITE)
def case_status(request: HttpRequest, reference: str) -> JsonResponse:
    """{"status", "note"?}: as the desk's form with only those fields; a resolution is cleared on reopening."""
    return change_case(request, reference, {"status": str, "note": str}, resolve=False)


@endpoint("POST", scope=WRITE)
def case_resolve(request: HttpRequest, reference: str) -> JsonResponse:
    """{"section"} or {"content_missing": true}, and "note"?: resolves the case."""
    return change_case(request, reference, {"section": str, "content_missing": bool, "note": str}, resolve=True)


def change_case(request: HttpRequest, reference: str, fields: dict[str, type], *, resolve: bool) -> JsonResponse:
    """Validate the body with the desk's CaseUpdateForm and apply it as the desk's form is, as
    the token's user: the timeline records it, and a resolution mails the person and calls the webhooks."""
    found = case_for_desk(reference)
    if found is None:
        return error(404, f"no case {reference}")
    body = json_object(request)
    if body is None:
        return error(400, "the body must be a JSON object")
    if message := wrong_types(body, fields):
        return error(400, message)
    data = {key: value for key, value in body.items() if value is not None}
    if resolve:
        if not (data.get("section") or data.get("content_missing")):
            return error(400, "name the section that resolved the case, or set content_missing to true")
        data["status"] = Case.Status.RESOLVED
    form = CaseUpdateForm(data)
    if not form.is_valid():
        return error(400, "invalid input", fields=form.errors.get_json_data())
    data = form.cleaned_data
    conversation.update_case(found, user=request.api_token.user, status=data["status"], section=data["section"],
                             content_missing=data["content_missing"], note=data["note"])
    return JsonResponse(case_detail(reference))


@endpoint("POST", scope=WRITE)
def case_reply(request: HttpRequest, reference: str) -> JsonResponse:
    """{"body"}: a message to the person, shown on their case page and mailed to them."""
    found = case_for_desk(reference)
    if found is None:
        return error(404, f"no case {reference}")
    body = json_object(request)
    if body is None:
        return error(400, "the body must be a JSON object")
    if message := wrong_types(body, {"body": str}):
        return error(400, message)
    form = ReplyForm(body)
    if not form.is_valid():
        return error(400, "invalid input", fields=form.errors.get_json_data())
    event = conversation.reply(found, request.api_token.user, form.cleaned_data["body"])
    return JsonResponse(event_json(event), status=201)


@endpoint("POST", scope=WRITE)
def feedback(request: HttpRequest) -> JsonResponse:
    """{"section", "vote"}: an anonymous vote on a section, as on its article page."""
    body = json_object(request)
    if body is None:
        return error(400, "the body must be a JSON object")
    if message := wrong_types(body, {"section": str, "vote": str}):
        return error(400, message)
    form = SectionVoteForm(body)
    if not form.is_valid():
        return error(400, "invalid input", fields=form.errors.get_json_data())
    section, vote = form.cleaned_data["section"], form.cleaned_data["vote"]
    record_feedback(section, vote)
    return JsonResponse({
        "section": f"{section.article.guide.slug}/{section.article.slug}#{section.anchor}",
        "url": section.get_absolute_url(),
        "vote": vote,
    }, status=201)
