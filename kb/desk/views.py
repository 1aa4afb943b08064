"""Help-desk pages, for staff only: the case queue, a case with its update form, insights,
content gaps and their CSV exports.

Views validate input, call one function from cases.py, conversation.py, report.py, gaps.py or export.py and render. Every
page carries people's pasted errors and contact details, so none of it is cached.
"""

from collections.abc import Callable

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from kb.models import Case

from .cases import case_file, case_for_desk, queue_page, status_counts
from .conversation import timeline, update_case
from .export import TABLES, write_csv
from .forms import CaseUpdateForm
from .gaps import content_gaps
from .period import period_from
from .report import insights_report

ALL = "all"


def staff_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Staff only, never cached. Others go to the admin login, which tells a signed-in
    non-staff user that the account is not authorised."""
    return never_cache(staff_member_required(view))


@staff_only
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    """?status=new|in_progress|waiting|resolved|all (anything else: new) and ?page=."""
    status = request.GET.get("status", Case.Status.NEW)
    if status != ALL and status not in Case.Status.values:
        status = Case.Status.NEW
    page = queue_page(None if status == ALL else status, request.GET.get("page"))
    counts = status_counts()
    tabs = [(value, label, counts[value]) for value, label in Case.Status.choices]
    tabs.append((ALL, "All", sum(counts.values())))
    return render(request, "kb/desk/queue.html", {"page": page, "status": status, "tabs": tabs})


@staff_only
@require_http_methods(["GET", "POST"])
def case(request: HttpRequest, reference: str) -> HttpResponse:
    found = case_for_desk(reference)
    if found is None:
        raise Http404("No such case")
    form = CaseUpdateForm.for_case(found, request.POST if request.method == "POST" else None)
    if form.is_valid():
        data = form.cleaned_data
        update_case(found, user=request.user, status=data["status"], section=data["section"],
                    content_missing=data["content_missing"], note=data["note"], reply=data["reply"],
                    assign_to_me=data["assign_to_me"])
        messages.success(request, f"Case {found.reference} saved.")
        return redirect("desk:case", reference=found.reference)
    context = {"file": case_file(found), "form": form, "timeline": timeline(found)}
    return render(request, "kb/desk/case.html", context, status=400 if form.is_bound else 200)


@staff_only
@require_GET
def insights(request: HttpRequest) -> HttpResponse:
    """?from=&to= (YYYY-MM-DD; the last 30 days by default)."""
    period, form = period_from(request.GET)
    context = {"report": insights_report(period), "form": form}
    return render(request, "kb/desk/insights.html", context, status=400 if form.errors else 200)


@staff_only
@require_GET
def gaps(request: HttpRequest) -> HttpResponse:
    """?from=&to=, as insights."""
    period, form = period_from(request.GET)
    context = {"period": period, "gaps": content_gaps(period), "form": form}
    return render(request, "kb/desk/gaps.html", context, status=400 if form.errors else 200)


@staff_only
@require_GET
def export(request: HttpRequest, table: str) -> HttpResponse:
    """One insights or gaps table as CSV, for ?from=&to=."""
    if table not in TABLES:
        raise Http404("No such table")
    period, form = period_from(request.GET)
    if form.errors:
        message = " ".join(error for errors in form.errors.values() for error in errors)
        return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{table}-{period.start}-{period.end}.csv"'
    write_csv(TABLES[table], period, response)
    return response
