"""Search pages and endpoints: the results page, the JSON API, title suggestions, opened results."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from kb.forms import SearchForm
from kb.models import Article, Guide, SearchLog

from .insights import log_search, opened_token, record_opened
from .query import MAX_QUERY_CHARS, clean_text, printable
from .results import search
from .spelling import has_unknown_word, suggest
from .suggestions import suggest_titles

PAGE_SIZE = 10


@require_GET
@ensure_csrf_cookie  # search.js reports opened results with a POST beacon
def search_page(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET)
    # What was typed goes back in the box, without control characters.
    typed = printable(request.GET.get("q", "")[:MAX_QUERY_CHARS])
    context = {
        "form": form, "guides": Guide.objects.defer("toc"), "query": typed, "guide": request.GET.get("guide", ""),
    }
    if form.is_valid() and form.cleaned_data["q"]:
        guide = form.cleaned_data["guide"] or ""
        found = search(form.cleaned_data["q"], guide=guide)
        page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
        context.update(found=found, page=page, searched=True)
        if page.number == 1:
            shown = [result.section.pk for result in page.object_list]
            context["opened_token"] = opened_token(log_search(found, guide=guide), shown)
        if not found.count or has_unknown_word(found.query):
            context["did_you_mean"] = suggest(form.cleaned_data["q"])
    if not context.get("page"):  # no search yet, or nothing found: offer the topics
        context["troubleshooting"] = Article.objects.troubleshooting().with_topics()
    return render(request, "kb/search.html", context, status=200 if form.is_valid() else 400)


@require_GET
def api_search(request: HttpRequest) -> JsonResponse:
    """GET /api/v1/search?q=&guide=&limit= -> {"query", "results": [...]}; 400 with a message on bad input."""
    form = SearchForm(request.GET)
    if not form.is_valid():
        return JsonResponse({"error": "invalid parameters", "fields": form.errors.get_json_data()}, status=400)
    if not form.cleaned_data["q"]:
        return JsonResponse({"error": "invalid parameters", "fields": {"q": [{"message": "This field is required.",
                                                                            "code": "required"}]}}, status=400)
    guide = form.cleaned_data["guide"] or ""
    found = search(form.cleaned_data["q"], guide=guide, limit=form.cleaned_data["limit"] or 10)
    log_search(found, guide=guide, channel=SearchLog.Channel.API)
    query = found.query
    return JsonResponse({
        "query": {
            "understood": query.understood(),
            "terms": query.terms,
            "codes": query.codes,
            "actions": query.actions,
            "operations": query.operations,
            "statuses": query.statuses,
        },
        "results": [result.as_dict() for result in found.results],
    })


@require_GET
def api_suggest(request: HttpRequest) -> JsonResponse:
    """Section titles containing what was typed so far, for the search box's suggestions."""
    typed = clean_text(request.GET.get("q", ""))[:100].strip()
    return JsonResponse({"suggestions": suggest_titles(typed) if len(typed) >= 2 else []})


@require_POST
def search_opened(request: HttpRequest, token: str) -> HttpResponse:
    """Beacon from the results page: which result the person opened."""
    try:
        section_id = int(request.POST.get("section", ""))
    except ValueError:
        return JsonResponse({"error": "section must be a section id"}, status=400)
    if not record_opened(token, section_id):
        return JsonResponse({"error": "unknown search or section"}, status=404)
    return HttpResponse(status=204)
