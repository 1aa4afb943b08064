"""The guided flow's pages (form, answer, feedback, fixed, case and its conversation) and the recommend API.

Every write is a POST with CSRF protection, followed by a redirect, so a reload never
repeats it. The diagnosis token in the URL is the person's private link.
"""

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from kb.api.http import json_object
from kb.desk.conversation import requester_answer, timeline
from kb.forms import AnswerForm, CaseForm, FeedbackForm, TroubleshootForm
from kb.models import Case, Diagnosis, Feedback, Section
from kb.ratelimit import client_address
from kb.search.query import MAX_QUERY_CHARS, printable

from .flow import clean_context, open_case, recommended_section, record_feedback, start_diagnosis, voter
from .recommend import recommend


def private(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For pages under a diagnosis token, which is a person's private link: kept out of
    shared caches and search engines."""

    @never_cache
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["X-Robots-Tag"] = "noindex, nofollow"
        return response

    return wrapped


@require_http_methods(["GET", "POST"])
def start(request: HttpRequest) -> HttpResponse:
    form = TroubleshootForm(
        request.POST or None, initial={"error_text": printable(request.GET.get("q", "")[:MAX_QUERY_CHARS])}
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        diagnosis = start_diagnosis(data["error_text"], {"activity": data["activity"], "service": data["service"]})
        return redirect("guided:answer", token=diagnosis.token)
    return render(request, "kb/guided/start.html", {"form": form}, status=400 if form.errors else 200)


@private
def answer(request: HttpRequest, token: str, *, error: str = "") -> HttpResponse:
    diagnosis = get_object_or_404(Diagnosis, token=token)
    context = {"diagnosis": diagnosis, "recommendations": with_votes(diagnosis), "error": error}
    return render(request, "kb/guided/answer.html", context, status=400 if error else 200)


@require_POST
def feedback(request: HttpRequest, token: str) -> HttpResponse:
    diagnosis = get_object_or_404(Diagnosis, token=token)
    form = FeedbackForm(request.POST)
    section = recommended_section(diagnosis, form.cleaned_data["section"]) if form.is_valid() else None
    if section is None:
        return answer(request, token, error="That vote could not be recorded: choose one of the sections shown.")
    record_feedback(section, form.cleaned_data["vote"], diagnosis, voter=voter(client_address(request)))
    if form.cleaned_data["vote"] == Feedback.Vote.HELPED:
        return redirect("guided:fixed", token=token)
    return redirect(reverse("guided:answer", args=[token]) + f"#rec-{section.pk}")


@private
def fixed(request: HttpRequest, token: str) -> HttpResponse:
    diagnosis = get_object_or_404(Diagnosis, token=token)
    if not diagnosis.feedback.filter(vote=Feedback.Vote.HELPED).exists():
        return redirect("guided:answer", token=token)
    case = Case.objects.filter(diagnosis=diagnosis).first()  # raised before the fix was found
    return render(request, "kb/guided/fixed.html", {"diagnosis": diagnosis, "case": case})


@private
@require_http_methods(["GET", "POST"])
def case(request: HttpRequest, token: str) -> HttpResponse:
    """Before a case: the form that opens one. After: the conversation, and the person's answer form."""
    diagnosis = get_object_or_404(Diagnosis, token=token)
    existing = Case.objects.select_related("section__article__guide").filter(diagnosis=diagnosis).first()
    if existing and request.method == "POST" and "body" not in request.POST:
        return redirect("guided:case", token=token)  # the case form sent twice: the case is open
    form = (AnswerForm if existing else CaseForm)(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if existing:
            requester_answer(existing, form.cleaned_data["body"])
            return redirect(reverse("guided:case", args=[token]) + "#conversation")
        open_case(diagnosis, **form.cleaned_data)
        return redirect("guided:case", token=token)
    context = {
        "diagnosis": diagnosis, "case": existing, "form": form, "recommendations": with_votes(diagnosis),
        "timeline": timeline(existing, for_requester=True) if existing else [],
    }
    return render(request, "kb/guided/case.html", context, status=400 if form.errors else 200)


@require_POST
def section_feedback(request: HttpRequest) -> HttpResponse:
    """"Was this section helpful?" on article pages."""
    form = FeedbackForm(request.POST)
    section = Section.objects.with_article().filter(pk=form.cleaned_data["section"]).first() if form.is_valid() else None
    if section is None:
        return render(request, "kb/guided/feedback_thanks.html", {"error": True}, status=400)
    record_feedback(section, form.cleaned_data["vote"], voter=voter(client_address(request)))
    return render(request, "kb/guided/feedback_thanks.html", {"section": section, "vote": form.cleaned_data["vote"]})


@csrf_exempt  # a read-only computation for tools: it stores nothing and uses no cookies
@require_POST
def api_recommend(request: HttpRequest) -> JsonResponse:
    """POST {"error_text": str, "context": {...}} -> {"analysis": {...}, "recommendations": [...]}."""
    body = json_object(request)
    if body is None:
        return JsonResponse({"error": "the body must be a JSON object"}, status=400)
    context = {} if body.get("context") is None else body["context"]
    if not isinstance(body.get("error_text"), str) or not isinstance(context, dict):
        return JsonResponse({"error": "error_text must be a string and context an object"}, status=400)
    form = TroubleshootForm({
        "error_text": body["error_text"], "activity": context.get("activity", ""), "service": context.get("service", ""),
    })
    if not form.is_valid():
        return JsonResponse({"error": "invalid input", "fields": form.errors.get_json_data()}, status=400)
    data = form.cleaned_data
    result = recommend(data["error_text"], clean_context({"activity": data["activity"], "service": data["service"]}))
    return JsonResponse(result.as_dict())


def with_votes(diagnosis: Diagnosis) -> list[dict]:
    """The recommendations as shown, each with the vote this person gave it (if any)."""
    votes = {
        (guide, article, anchor): vote
        for guide, article, anchor, vote in diagnosis.feedback.values_list("guide_slug", "article_slug", "anchor", "vote")
    }
    return [dict(r, vote=votes.get((r["guide"], r["article"], r["anchor"]), "")) for r in diagnosis.recommendations]
