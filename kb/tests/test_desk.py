"""The help desk: who may see it, the case queue, a case page and its form, insights, the admin.

Sections come from a tiny guide loaded with the real importer; searches, diagnoses,
feedback and cases are plain rows created directly.
"""

from datetime import timedelta
from itertools import count

import pytest
from bs4 import BeautifulSoup
from django.test import Client
from django.utils import timezone

from kb.desk import cases as desk_cases
from kb.desk.cases import first_line, section_from_reference
from kb.desk.conversation import update_case
from kb.guided.recommend import recommend
from kb.importer import import_content
from kb.models import Case, CaseEvent, Diagnosis, Feedback, SearchLog, Section

TROUBLESHOOT = """\
# Troubleshooting access<a name="troubleshoot_access"></a>

Use this page when access is denied\\.

## I get "access denied"<a name="access-denied"></a>

Check the policy\\.

## I cannot assume a role<a name="assume-role"></a>

Check the trust policy\\.
"""

KEYS = """\
# Access keys<a name="access-keys"></a>

## I lost my access keys<a name="lost-keys"></a>

Create a new pair\\.
"""

HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'
_references = count(1)


@pytest.fixture
def guide(db, write_guide) -> None:
    import_content([write_guide("g", {"troubleshoot.md": TROUBLESHOOT, "keys.md": KEYS})])


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("staffer", password="pw", is_staff=True)


@pytest.fixture
def staff_client(client: Client, staff) -> Client:
    client.force_login(staff)
    return client


def section(anchor: str) -> Section:
    return Section.objects.select_related("article__guide").get(anchor=anchor)


def make_case(*, status: str = Case.Status.NEW, error_text: str = "An error occurred (AccessDenied)", codes=("AccessDenied",),
              **fields) -> Case:
    diagnosis = Diagnosis.objects.create(
        error_text=error_text,
        signature="sig-" + str(next(_references)),
        analysis={"codes": list(codes)},
        outcome=Diagnosis.Outcome.ESCALATED,
        token=f"token-{next(_references)}",
    )
    fields.setdefault("name", "Pat")
    fields.setdefault("email", "pat@example.com")
    return Case.objects.create(reference=f"KB-{next(_references):06d}", diagnosis=diagnosis, status=status, **fields)


def desk_urls(case: Case) -> list[str]:
    return ["/desk/", "/desk/?status=resolved", f"/desk/cases/{case.reference}/", "/desk/insights/"]


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.content, "html.parser")


# Permissions ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_people_are_sent_to_the_login_for_every_desk_url(client):
    case = make_case(name="Secret Person")
    for url in desk_urls(case):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/?next="), url
        assert b"Secret Person" not in response.content


@pytest.mark.django_db
def test_signed_in_people_who_are_not_staff_are_denied(client, django_user_model):
    case = make_case(name="Secret Person")
    client.force_login(django_user_model.objects.create_user("visitor", password="pw"))
    for url in desk_urls(case):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/"), url
    response = client.post(f"/desk/cases/{case.reference}/", {"status": "resolved", "content_missing": "on"})
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == Case.Status.NEW and not case.content_missing


@pytest.mark.django_db
def test_staff_see_every_desk_page_uncached(staff_client):
    case = make_case()
    for url in desk_urls(case):
        response = staff_client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"], url


@pytest.mark.django_db
def test_an_unknown_case_is_a_404(staff_client):
    assert staff_client.get("/desk/cases/KB-NOPE/").status_code == 404


# Case queue ----------------------------------------------------------------------------------


def queue_references(response) -> list[str]:
    return [th.get_text(strip=True) for th in soup(response).select(".desk-table tbody th")]


@pytest.mark.django_db
def test_queue_tabs_filter_by_status_newest_first_with_counts(staff_client):
    older_new = make_case()
    newer_new = make_case()
    Case.objects.filter(pk=older_new.pk).update(created_at=timezone.now() - timedelta(hours=1))
    in_progress = make_case(status=Case.Status.IN_PROGRESS)
    resolved = make_case(status=Case.Status.RESOLVED)

    assert queue_references(staff_client.get("/desk/")) == [newer_new.reference, older_new.reference]
    assert queue_references(staff_client.get("/desk/?status=in_progress")) == [in_progress.reference]
    assert queue_references(staff_client.get("/desk/?status=resolved")) == [resolved.reference]
    assert len(queue_references(staff_client.get("/desk/?status=all"))) == 4
    # A status that does not exist shows the default tab rather than failing.
    assert queue_references(staff_client.get("/desk/?status=%3Cx%3E")) == [newer_new.reference, older_new.reference]

    tabs = {a["href"]: a.get_text(" ", strip=True) for a in soup(staff_client.get("/desk/")).select(".desk-tabs a")}
    assert tabs == {"?status=new": "New 2", "?status=in_progress": "In progress 1",
                    "?status=waiting": "Waiting on requester 0", "?status=resolved": "Resolved 1", "?status=all": "All 4"}


@pytest.mark.django_db
def test_queue_rows_show_codes_escaped_first_line_and_assignee(staff_client, staff):
    make_case(error_text=f"\n\n  {HOSTILE}\nsecond line", codes=["AccessDenied", "<b>Bold</b>"], assignee=staff)
    response = staff_client.get("/desk/")
    assert b"<script>" not in response.content and b"<b>Bold" not in response.content
    cells = [td.get_text(strip=True) for td in soup(response).select(".desk-table tbody td")]
    assert cells[1] == "AccessDenied,<b>Bold</b>"
    assert cells[2] == HOSTILE
    assert cells[3:] == ["New", "staffer"]


@pytest.mark.django_db
def test_queue_pages(staff_client, monkeypatch):
    monkeypatch.setattr(desk_cases, "PAGE_SIZE", 2)
    for _ in range(3):
        make_case()
    assert len(queue_references(staff_client.get("/desk/?page=2"))) == 1
    assert len(queue_references(staff_client.get("/desk/?page=abc"))) == 2
    assert 'href="?page=2"' in staff_client.get("/desk/").content.decode()


def test_first_line_skips_blank_lines_and_shortens():
    assert first_line("\n  \n  An error occurred\nmore") == "An error occurred"
    assert first_line("") == ""
    assert len(first_line("x" * 1000)) == desk_cases.FIRST_LINE_CHARS


# Case page -----------------------------------------------------------------------------------


@pytest.fixture
def full_case(guide) -> Case:
    """A case as the guided flow leaves it: analysis, recommendations, feedback, contact."""
    case = make_case(
        error_text=f"An error occurred (AccessDenied) when calling the AssumeRole operation\n{HOSTILE}",
        name=f"Pat {HOSTILE}",
        details=f"I tried twice {HOSTILE}",
    )
    diagnosis = case.diagnosis
    diagnosis.context = {"activity": "api", "service": "<i>sts</i>"}
    diagnosis.analysis = {
        "codes": ["AccessDenied"],
        "actions": ["sts:AssumeRole"],
        "operations": [],
        "summary": ["The role's trust policy does not allow you.", f"Odd {HOSTILE}"],
        "denial": "implicit",
        "access_denied": True,
        "sign_in": False,
        "principal": {"type": "IAM user", "name": "alice"},
    }
    diagnosis.recommendations = [
        {"guide": "g", "article": "troubleshoot", "anchor": "assume-role", "title": "I cannot assume a role",
         "url": "/kb/g/troubleshoot/#assume-role", "snippet": "Check the <mark>trust</mark> policy &lt;script&gt;",
         "score": 3.2, "why": ["action sts:AssumeRole", "code AccessDenied"]},
        {"guide": "g", "article": "troubleshoot", "anchor": "access-denied", "title": f"Denied {HOSTILE}",
         "url": "javascript:alert(1)", "snippet": HOSTILE, "score": 1.0, "why": [HOSTILE]},
    ]
    diagnosis.save()
    for anchor, vote in [("assume-role", Feedback.Vote.NOT_THIS), ("lost-keys", Feedback.Vote.HELPED)]:
        feedback = Feedback(diagnosis=diagnosis, vote=vote, signature=diagnosis.signature)
        feedback.point_at(section(anchor))
        feedback.save()
    return case


@pytest.mark.django_db
def test_case_page_shows_everything_the_person_left(staff_client, full_case):
    response = staff_client.get(f"/desk/cases/{full_case.reference}/")
    page = soup(response)
    assert page.select_one("pre.desk-paste").get_text().endswith(HOSTILE)
    text = page.get_text(" ", strip=True)
    for shown in ["Pat", "pat@example.com", "I tried twice", "The role's trust policy does not allow you.",
                  "sts:AssumeRole", "implicit", "Doing calling an API, the CLI or an SDK", "name: alice; type: IAM user", "<i>sts</i>",
                  "action sts:AssumeRole; code AccessDenied", "Check the trust policy <script>"]:
        assert shown in text, shown
    # Empty keys are left out; the others keep the analyser's order on every database.
    assert [dt.get_text() for dt in page.select("#analysis-heading ~ .desk-facts dt")] == [
        "Error codes", "Actions", "Principal", "Access denied", "Denial"]
    first, second = page.select(".desk-recommendations > li")
    assert first.select_one("h3 a")["href"] == "/kb/g/troubleshoot/#assume-role"
    assert "Not this" in first.select_one(".desk-votes").get_text()
    assert second.select_one("h3 a") is None  # a javascript: URL is not linked
    other = page.find("h3", string="Other feedback in this run").find_next("ul")
    assert "This fixed it" in other.get_text() and other.a["href"] == "/kb/g/keys/#lost-keys"
    assert page.select_one('a[href="mailto:pat@example.com"]')


@pytest.mark.django_db
def test_case_page_escapes_pasted_text_names_and_recommendations(staff_client, full_case):
    main = soup(staff_client.get(f"/desk/cases/{full_case.reference}/")).main
    assert main.find_all(["script", "img", "i", "b", "mark"]) == []
    assert main.find_all(attrs={"onerror": True}) == []
    assert main.get_text().count(HOSTILE) == 6  # paste, name, details, summary, a title, a why


# Resolving a case ----------------------------------------------------------------------------


def post_case(client: Client, case: Case, **data):
    return client.post(f"/desk/cases/{case.reference}/", {"status": case.status, **data})


@pytest.mark.django_db
@pytest.mark.parametrize(
    "reference",
    ["/kb/g/troubleshoot/#assume-role", "https://portal.example.com/kb/g/troubleshoot/#assume-role",
     "g/troubleshoot#assume-role", "  /kb/g/troubleshoot.html#assume-role  "],
)
def test_resolving_with_a_section_link(staff_client, staff, guide, reference):
    case = make_case()
    response = post_case(staff_client, case, status="resolved", section=reference, note="Told them to fix the trust policy.",
                         assign_to_me="on")
    assert response.status_code == 302 and response["Location"] == f"/desk/cases/{case.reference}/"
    case.refresh_from_db()
    assert case.status == Case.Status.RESOLVED and case.section == section("assume-role")
    assert (case.guide_slug, case.article_slug, case.anchor) == ("g", "troubleshoot", "assume-role")
    assert case.assignee == staff and not case.content_missing
    note = case.events.get(kind=CaseEvent.Kind.NOTE)
    assert (note.author, note.body) == (staff, "Told them to fix the trust policy.")
    page = soup(staff_client.get(response["Location"]))
    assert "saved" in page.select_one(".desk-messages").get_text()
    assert page.find("a", string="I cannot assume a role", href="/kb/g/troubleshoot/#assume-role")
    assert page.select_one("#id_section")["value"] == "g/troubleshoot#assume-role"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "reference",
    ["/kb/g/troubleshoot/#no-such-anchor", "/kb/g/nope/#assume-role", "/search/?q=x", "g/troubleshoot/extra#x",
     "http://[broken/", "/kb/g/troubleshoot/#%00", "javascript:alert(1)", "x" * 700],
)
def test_a_link_that_is_not_a_section_is_a_form_error(staff_client, guide, reference):
    case = make_case()
    response = post_case(staff_client, case, status="resolved", section=reference)
    assert response.status_code == 400
    error = soup(response).select_one(".errorlist")
    assert "No section of the portal is at that address" in error.get_text()
    case.refresh_from_db()
    assert case.status == Case.Status.NEW and case.section is None


@pytest.mark.django_db
def test_content_missing_resolves_the_case(staff_client, guide):
    case = make_case()
    assert post_case(staff_client, case, status="resolved", content_missing="on").status_code == 302
    case.refresh_from_db()
    assert case.status == Case.Status.RESOLVED and case.content_missing and case.section is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"status": "resolved", "section": "g/troubleshoot#assume-role", "content_missing": "on"}, "content_missing", "not both"),
        ({"status": "new", "section": "g/troubleshoot#assume-role"}, "status", "choose Resolved"),
        ({"status": "closed"}, "status", "Select a valid choice"),
        ({"status": "new", "note": "nul \x00 byte"}, "note", "Null characters are not allowed"),
    ],
)
def test_inconsistent_or_hostile_input_is_a_form_error_not_a_500(staff_client, guide, data, field, message):
    case = make_case()
    response = staff_client.post(f"/desk/cases/{case.reference}/", data)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert message in soup(response).select_one("form[data-case-form]").get_text()


@pytest.mark.django_db
def test_update_case_keeps_every_note_and_reopening_clears_the_resolution(guide, staff, django_user_model):
    case = make_case()
    update_case(case, user=staff, status="resolved", section=section("lost-keys"), note="first")
    other = django_user_model.objects.create_user("other", is_staff=True)
    case = update_case(case, user=other, status="in_progress", note="  second  ", assign_to_me=True)
    assert case.status == Case.Status.IN_PROGRESS and case.assignee == other
    assert case.section is None and (case.guide_slug, case.article_slug, case.anchor) == ("", "", "")
    notes = case.events.filter(kind=CaseEvent.Kind.NOTE)
    assert [(note.author, note.body) for note in notes] == [(staff, "first"), (other, "second")]
    statuses = case.events.filter(kind=CaseEvent.Kind.STATUS)
    assert [(e.author, e.old_status, e.new_status) for e in statuses] == [
        (staff, "new", "resolved"), (other, "resolved", "in_progress")
    ]


@pytest.mark.django_db
def test_section_references(guide):
    assert section_from_reference("g/troubleshoot#access-denied") == section("access-denied")
    # Without an anchor: the article's title section.
    assert section_from_reference("/kb/g/keys/") == section("access-keys")
    assert section_from_reference("/kb/g/troubleshoot/#assume%2Drole") == section("assume-role")
    assert section_from_reference("") is None
    assert section_from_reference("/desk/") is None


@pytest.mark.django_db
def test_the_case_form_needs_a_csrf_token(staff, guide):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    case = make_case()
    response = client.post(f"/desk/cases/{case.reference}/", {"status": "resolved", "content_missing": "on"})
    assert response.status_code == 403
    case.refresh_from_db()
    assert case.status == Case.Status.NEW
    assert soup(client.get(f"/desk/cases/{case.reference}/")).select_one("form input[name=csrfmiddlewaretoken]")


# Admin ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_lists_and_shows_the_guided_rows_escaped_and_read_only(client, django_user_model, full_case):
    client.force_login(django_user_model.objects.create_superuser("root", password="pw"))
    SearchLog.objects.create(query=HOSTILE, result_count=0)
    feedback = Feedback.objects.first()
    for url in ["/admin/kb/searchlog/", "/admin/kb/diagnosis/", "/admin/kb/feedback/", "/admin/kb/case/",
                f"/admin/kb/diagnosis/{full_case.diagnosis.pk}/change/", f"/admin/kb/case/{full_case.pk}/change/",
                f"/admin/kb/feedback/{feedback.pk}/change/"]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"<script>alert" not in response.content, url
    case_page = client.get(f"/admin/kb/case/{full_case.pk}/change/").content.decode()
    assert f'href="/desk/cases/{full_case.reference}/"' in case_page
    assert 'name="status"' not in case_page  # read-only: the desk page is where cases change
    assert full_case.diagnosis.token not in client.get(f"/admin/kb/diagnosis/{full_case.diagnosis.pk}/change/").content.decode()
    assert client.get("/admin/kb/case/add/").status_code == 403


# The whole flow, ending at the desk ---------------------------------------------------------


@pytest.mark.django_db
def test_from_a_paste_to_a_resolved_case_that_teaches_recommendations(staff_client, guide):
    paste = (f"An error occurred (AccessDenied) when calling the AssumeRole operation: not authorized to perform "
             f"sts:AssumeRole {HOSTILE} key AKIAIOSFODNN7EXAMPLE")
    public = Client()
    answer = public.post("/troubleshoot/", {"error_text": paste, "activity": "api", "service": ""})
    token = answer["Location"].rstrip("/").rsplit("/", 1)[-1]
    diagnosis = Diagnosis.objects.get(token=token)
    first = diagnosis.recommendations[0]
    public.post(f"/troubleshoot/{token}/feedback/", {"section": first["section_id"], "vote": "not_this"})
    public.post(f"/troubleshoot/{token}/case/", {"name": f"Pat {HOSTILE}", "email": "pat@example.com", "details": ""})
    case = Case.objects.get(diagnosis=diagnosis)

    assert queue_references(staff_client.get("/desk/")) == [case.reference]
    page = soup(staff_client.get(f"/desk/cases/{case.reference}/"))
    assert "AKIAIOSFODNN7EXAMPLE" not in page.get_text() and "[REDACTED]" in page.select_one("pre.desk-paste").get_text()
    assert page.main.find_all("script") == []
    assert "Not this" in page.select_one(".desk-recommendations > li .desk-votes").get_text()

    def score(key: tuple[str, str, str]) -> float:
        shown = recommend(paste, {"activity": "api", "service": ""}).as_dict()["recommendations"]
        return next((r["score"] for r in shown if (r["guide"], r["article"], r["anchor"]) == key), 0.0)

    key = ("g", "keys", "lost-keys")
    before = score(key)
    response = post_case(staff_client, case, status="resolved", section="/kb/g/keys/#lost-keys")
    assert response.status_code == 302
    assert score(key) > before


@pytest.mark.django_db
def test_desk_pages_query_a_fixed_number_of_times(staff_client, staff, full_case, django_assert_max_num_queries):
    for _ in range(5):
        make_case(assignee=staff)  # assigned cases print their assignee: one query, not one per case
    # At most: the session (read from Redis instead when it is the cache), user, count,
    # page of cases, counts per status.
    with django_assert_max_num_queries(5):
        staff_client.get("/desk/?status=all")
    update_case(full_case, user=staff, status="waiting", note="a note", reply="a reply")
    with django_assert_max_num_queries(5):  # session, user, case, its feedback, its timeline with authors
        staff_client.get(f"/desk/cases/{full_case.reference}/")
