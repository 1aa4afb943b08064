"""The desk's insights and content gaps: signatures on search logs, grouping, trends, the date
range, CSV exports and the pages, on whichever database the suite runs.

Rows are created directly (searches through the real search page where the signature at
log time matters); ages are set afterwards, as auto_now_add stamps them with now.
"""

import csv
import importlib
import io
from datetime import timedelta
from itertools import count

import pytest
from bs4 import BeautifulSoup
from django.apps import apps
from django.utils import timezone

from kb.desk.export import cell
from kb.desk.gaps import content_gaps
from kb.desk.insights import VAGUE_SIGNATURE, cases_by_code, not_this_sections, resolution, search_tables
from kb.desk.period import Period
from kb.desk.trends import activity, daily_activity, top_signatures, weekly_outcomes
from kb.guided.analysis import explain
from kb.importer import import_content
from kb.models import Case, Diagnosis, Feedback, SearchLog, Section
from kb.search.insights import error_signature

HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'
DENIED = ("An error occurred (AccessDenied) when calling the GetObject operation: User: arn:aws:iam::{account}:user/{user} "
          "is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::{bucket}/key")
EXPIRED = "An error occurred (ExpiredToken) when calling the ListBuckets operation: The security token included has expired"
_numbers = count(1)

TROUBLESHOOT = """\
# Troubleshooting access<a name="troubleshoot_access"></a>

## I get "access denied"<a name="access-denied"></a>

Check the policy\\.

## I cannot assume a role<a name="assume-role"></a>

Check the trust policy\\.
"""


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("staffer", password="pw", is_staff=True))
    return client


@pytest.fixture
def period() -> Period:
    return Period.last()


def aged(row, days: float = 0, hours: float = 0):
    type(row).objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(days=days, hours=hours))
    return row


def search_log(query: str, results: int = 1, days: float = 0, **fields) -> SearchLog:
    log = SearchLog.objects.create(query=query, signature=error_signature(query), result_count=results, **fields)
    return aged(log, days)


def diagnosis(text: str, outcome: str = "open", recommendations=None, days: float = 0, hours: float = 0) -> Diagnosis:
    analysis = explain(text)
    run = Diagnosis.objects.create(
        error_text=text, signature=analysis.signature, analysis=analysis.as_dict(), outcome=outcome,
        recommendations=[{"title": "x"}] if recommendations is None else recommendations, token=f"t{next(_numbers)}",
    )
    return aged(run, days, hours)


def make_case(run: Diagnosis, **fields) -> Case:
    return Case.objects.create(reference=f"KB-{next(_numbers):06d}", diagnosis=run, name="Pat", email="p@example.com",
                               **fields)


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.content, "html.parser")


def rows_of(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


# Signatures on search logs ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_logged_search_keeps_the_signature_the_guided_form_gives_the_same_error(client, write_guide):
    import_content([write_guide("g", {"troubleshoot.md": TROUBLESHOOT})])
    pasted = DENIED.format(account="123456789012", user="bob", bucket="photos")
    client.get("/search/", {"q": pasted})
    client.get("/search/", {"q": "how do I rotate my keys"})
    logged = dict(SearchLog.objects.values_list("query", "signature"))
    assert logged["how do I rotate my keys"] == ""  # a question names no error: not lumped into one group
    assert logged[next(q for q in logged if "AccessDenied" in q)] == explain(pasted).signature


@pytest.mark.django_db
def test_the_migration_backfills_signatures_from_the_stored_text():
    migration = importlib.import_module("kb.migrations.0010_searchlog_signature")
    old = SearchLog.objects.create(query=EXPIRED, result_count=0)
    question = SearchLog.objects.create(query="mfa reset steps please", result_count=0)
    migration.backfill(apps, None)
    old.refresh_from_db(), question.refresh_from_db()
    assert old.signature == explain(EXPIRED).signature
    assert question.signature == error_signature("mfa reset steps please")


# Search tables ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_searches_naming_an_error_are_grouped_by_signature_with_the_latest_example(period):
    for n, (user, bucket) in enumerate([("bob", "photos"), ("alice", "logs"), ("carol", "data")]):
        search_log(DENIED.format(account=f"11112222333{n}", user=user, bucket=bucket), results=0 if n else 2, days=3 - n)
    search_log(EXPIRED)
    for text in ["Rotate keys", "  rotate keys ", "sso"]:
        search_log(text)
    search_log("rotate keys", days=40)  # outside the period

    top = search_tables(period).top
    assert [(row["label"], row["count"], row["no_results"]) for row in top] == [
        ("AccessDenied · s3:GetObject · GetObject", 3, 2), ("", 2, 0),
        ("ExpiredToken · ListBuckets · credentials: expired", 1, 0), ("", 1, 0),
    ]
    assert "carol" in top[0]["text"] and top[0]["signature"] == explain(DENIED).signature
    assert [row["text"] for row in top if not row["signature"]] == ["rotate keys", "sso"]


@pytest.mark.django_db
def test_searches_with_no_result_and_with_none_opened(period):
    for query, results in [("access key lost", 0), ("access key lost", 0), ("sso", 0), ("sso", 4), ("mfa", 2)]:
        search_log(query, results)
    search_log("opened", 4, opened_url="/kb/g/keys/#lost-keys")
    search_log("old", 0, days=31)
    tables = search_tables(period)
    assert [(row["text"], row["count"]) for row in tables.unanswered] == [("access key lost", 2), ("sso", 1)]
    # "mfa" names a credential problem, so it has a signature; ties go by group key.
    assert [(row["label"] or row["text"], row["count"]) for row in tables.unopened] == [("credentials: mfa", 1), ("sso", 1)]
    assert len(search_tables(period, limit=1).unanswered) == 1


# Trends -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_searches_and_pastes_per_day_fill_every_day_of_the_period():
    search_log(EXPIRED, days=1)
    search_log("sso", days=1)
    search_log("sso")
    diagnosis(EXPIRED)
    search_log("sso", days=3)  # before the period
    days = daily_activity(activity(Period.last(2)))
    assert [(d.day, d.searches, d.error_searches, d.guided) for d in days] == [
        (timezone.localdate() - timedelta(days=1), 2, 1, 0), (timezone.localdate(), 1, 0, 1),
    ]
    assert len(daily_activity(activity(Period.last(30)))) == 30


@pytest.mark.django_db
def test_a_row_at_midnight_counts_for_the_day_it_starts():
    period = Period.last(2)
    midnight = period.since + timedelta(days=1)
    for moment in [midnight - timedelta(microseconds=1), midnight, period.since, period.until - timedelta(microseconds=1)]:
        SearchLog.objects.filter(pk=search_log("sso").pk).update(created_at=moment)
    search_log("sso", days=-1)  # tomorrow: outside
    assert [d.searches for d in daily_activity(activity(period))] == [2, 2]


@pytest.mark.django_db
def test_weekly_outcomes_call_old_open_runs_abandoned(settings):
    settings.KB_ABANDONED_HOURS = 24
    diagnosis("e", outcome="fixed")
    diagnosis("e", outcome="escalated")
    diagnosis("e", hours=2)  # still open: the person may come back
    diagnosis("e", hours=30)  # abandoned
    weeks = weekly_outcomes(Period.last(14))
    assert all(week.week.weekday() == 0 for week in weeks)
    assert (sum(w.fixed for w in weeks), sum(w.escalated for w in weeks)) == (1, 1)
    assert (sum(w.abandoned for w in weeks), sum(w.open for w in weeks)) == (1, 1)
    settings.KB_ABANDONED_HOURS = 1
    weeks = weekly_outcomes(Period.last(14))
    assert (sum(w.abandoned for w in weeks), sum(w.open for w in weeks)) == (2, 0)


@pytest.mark.django_db
def test_top_signatures_add_searches_and_guided_pastes_with_a_trend_per_day():
    search_log(DENIED.format(account="111122223333", user="a", bucket="b"), days=2)
    diagnosis(DENIED.format(account="444455556666", user="c", bucket="d"))
    diagnosis(DENIED.format(account="444455556666", user="e", bucket="f"))
    diagnosis(EXPIRED, days=1)
    diagnosis("it does not work")  # names no error: not a signature
    search_log("sso")
    top = top_signatures(activity(Period.last(3)))
    assert [(row["label"].split(" · ")[0], row["searches"], row["guided"], row["count"], row["trend"]) for row in top] == [
        ("AccessDenied", 1, 2, 3, [1, 0, 2]), ("ExpiredToken", 0, 1, 1, [0, 1, 0]),
    ]
    assert "user/a" in top[0]["example"]  # a search's example where there is one
    assert VAGUE_SIGNATURE not in [row["signature"] for row in top]


# The other insights ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_resolution_rate_of_the_guided_flow(period):
    for outcome in ["fixed", "fixed", "fixed", "escalated", "open", "open", "open", "open"]:
        diagnosis("e", outcome=outcome)
    diagnosis("old", outcome="escalated", days=40)
    shares = {share.outcome: (share.count, share.percent) for share in resolution(period)}
    assert shares == {"open": (4, 50.0), "fixed": (3, 37.5), "escalated": (1, 12.5)}
    Diagnosis.objects.all().delete()
    assert {share.percent for share in resolution(period)} == {0.0}


@pytest.mark.django_db
def test_sections_most_often_marked_not_this(write_guide, period):
    import_content([write_guide("g", {"troubleshoot.md": TROUBLESHOOT})])
    for anchor, vote in [("assume-role", "not_this"), ("assume-role", "not_this"), ("assume-role", "helped"),
                         ("access-denied", "helped")]:
        feedback = Feedback(vote=vote)
        feedback.point_at(Section.objects.select_related("article__guide").get(anchor=anchor))
        feedback.save()
    Feedback(vote="not_this", guide_slug="g", article_slug="removed", anchor="old").save()
    rows = [(row["title"], row["url"], row["not_this"], row["helped"]) for row in not_this_sections(period)]
    assert rows == [("I cannot assume a role", "/kb/g/troubleshoot/#assume-role", 2, 1), (None, "/kb/g/removed/#old", 1, 0)]


@pytest.mark.django_db
def test_cases_by_first_error_code(period):
    make_case(diagnosis("An error occurred (AccessDenied) ... UnauthorizedOperation", outcome="escalated"))
    make_case(diagnosis("An error occurred (AccessDenied)", outcome="escalated"), status="resolved", content_missing=True)
    make_case(diagnosis("it broke", outcome="escalated"))
    aged(make_case(diagnosis("An error occurred (ExpiredToken)", outcome="escalated")), days=31)
    assert cases_by_code(period) == [
        {"code": "AccessDenied", "cases": 2, "open": 1, "content_missing": 1},
        {"code": None, "cases": 1, "open": 1, "content_missing": 0},
    ]


# Content gaps -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_content_gaps_group_what_nothing_answered_by_signature(period):
    denied = DENIED.format(account="111122223333", user="a", bucket="b")
    nothing = diagnosis(denied, recommendations=[])  # no recommendation
    escalated = diagnosis(denied, outcome="escalated")
    missing = make_case(escalated, content_missing=True, status="resolved")
    rejected = diagnosis(denied)  # "Not this" and nothing that fixed it
    Feedback.objects.create(diagnosis=rejected, vote="not_this", guide_slug="g", article_slug="a", anchor="x")
    mixed = diagnosis(denied)  # "Not this" on one, "This fixed it" on another: answered
    Feedback.objects.create(diagnosis=mixed, vote="not_this", guide_slug="g", article_slug="a", anchor="x")
    Feedback.objects.create(diagnosis=mixed, vote="helped", guide_slug="g", article_slug="a", anchor="y")
    diagnosis(denied, outcome="fixed")  # answered
    search_log(denied, results=0)
    search_log(denied, results=3)  # found something
    search_log(EXPIRED, results=0)
    diagnosis(denied, recommendations=[], days=40)  # before the period

    gaps = content_gaps(period)
    assert [(g["label"].split(" · ")[0], g["missing"], g["runs"], g["escalated"], g["searches"]) for g in gaps] == [
        ("AccessDenied", 1, 3, 1, 1), ("ExpiredToken", 0, 0, 0, 1),
    ]
    assert gaps[0]["cases"] == [{"reference": missing.reference, "content_missing": True, "status": "resolved"}]
    assert gaps[0]["example"].startswith("An error occurred (AccessDenied)")
    assert nothing.signature == gaps[0]["signature"]


@pytest.mark.django_db
def test_gaps_page_links_the_cases_escaped_and_exports_them(staff_client):
    run = diagnosis(f"An error occurred (AccessDenied) {HOSTILE}", outcome="escalated")
    case = make_case(run, content_missing=True, status="resolved")
    page = staff_client.get("/desk/gaps/")
    assert page.status_code == 200
    assert b"<script>" not in page.content
    assert soup(page).find("a", href=f"/desk/cases/{case.reference}/")
    exported = rows_of(staff_client.get("/desk/export/gaps.csv"))
    assert exported[0][:3] == ["Error signature", "Signature id", "Example"]
    assert exported[1][-1] == case.reference


# The date range -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("query, message", [
    ({"from": "2024-13-01"}, "Enter a valid date."),
    ({"from": "2024-05-10", "to": "2024-05-01"}, "The start date is after the end date."),
    ({"from": "2020-01-01", "to": "2024-01-01"}, "Choose at most 366 days."),
    ({"from": "1999-12-31", "to": "2000-01-02"}, "Choose dates between 2000-01-01 and a year from now."),
    ({"to": "9999-12-31"}, "Choose dates between 2000-01-01 and a year from now."),
])
def test_a_bad_date_range_gets_a_message_and_the_default_range(staff_client, query, message):
    for url in ["/desk/insights/", "/desk/gaps/"]:
        response = staff_client.get(url, query)
        assert response.status_code == 400
        page = soup(response)
        assert message in page.select_one("form.desk-period").get_text()
        assert f"Showing the default range instead: {Period.last().start:%Y-%m-%d}" in page.get_text()
    exported = staff_client.get("/desk/export/activity.csv", query)
    assert exported.status_code == 400 and message in exported.content.decode()


@pytest.mark.django_db
def test_the_date_range_selects_the_rows_and_carries_into_exports(staff_client):
    search_log("sso", days=10)
    search_log("mfa")
    start, end = timezone.localdate() - timedelta(days=12), timezone.localdate() - timedelta(days=5)
    response = staff_client.get("/desk/insights/", {"from": start.isoformat(), "to": end.isoformat()})
    assert response.status_code == 200
    page = soup(response)
    assert page.select_one("input[name=from]")["value"] == start.isoformat()
    link = page.find("a", href=lambda href: href and href.startswith("/desk/export/top-searches.csv"))
    assert link["href"].endswith(f"?from={start}&to={end}")
    exported = rows_of(staff_client.get(link["href"]))
    assert [row[1] for row in exported[1:]] == ["sso"]
    assert len(rows_of(staff_client.get("/desk/export/activity.csv", {"from": start, "to": end}))) == 1 + 8


def test_the_default_range_is_the_last_30_days_both_ends_included():
    period = Period.last()
    assert (period.end, len(period.days)) == (timezone.localdate(), 30)
    assert period.until - period.since == timedelta(days=30)


# CSV exports --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, written", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1", "'+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tcmd", "'\tcmd"), ("plain = text", "plain = text"), (None, ""), (7, "7"),
])
def test_csv_cells_never_start_a_formula(value, written):
    assert cell(value) == written


@pytest.mark.django_db
def test_every_table_exports_as_csv_with_its_headers(staff_client):
    search_log('=HYPERLINK("http://evil.example","click")', results=0)
    for table, header in [("activity", "Day"), ("outcomes", "Week (Monday)"), ("signatures", "Error signature"),
                          ("top-searches", "Error signature"), ("unanswered-searches", "Error signature"),
                          ("unopened-searches", "Error signature"), ("resolution", "Outcome"),
                          ("not-this", "Section"), ("cases-by-code", "Code"), ("gaps", "Error signature")]:
        response = staff_client.get(f"/desk/export/{table}.csv")
        assert response.status_code == 200
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"].startswith(f'attachment; filename="{table}-')
        assert rows_of(response)[0][0] == header
    unanswered = rows_of(staff_client.get("/desk/export/unanswered-searches.csv"))
    assert unanswered[1][1] == "'=hyperlink(\"http://evil.example\",\"click\")"
    assert staff_client.get("/desk/export/nothing.csv").status_code == 404


@pytest.mark.django_db
def test_only_staff_see_insights_gaps_and_exports(client, django_user_model):
    urls = ["/desk/insights/", "/desk/gaps/", "/desk/export/gaps.csv"]
    for url in urls:
        assert client.get(url).status_code == 302
    client.force_login(django_user_model.objects.create_user("someone", password="pw"))
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


# The page -----------------------------------------------------------------------------------------


def charts_of(response) -> list:
    return soup(response).select("figure.desk-chart svg[role=img]")


@pytest.mark.django_db
def test_insights_page_with_nothing_logged_draws_empty_charts(staff_client):
    response = staff_client.get("/desk/insights/")
    assert response.status_code == 200
    charts = charts_of(response)
    assert [chart.title.get_text() for chart in charts] == [
        "Searches and pasted errors per day", "Outcome of guided runs per week"]
    assert all(chart.find("text", class_="chart-empty") for chart in charts)
    assert "No errors in this period." in soup(response).get_text()
    # The range boxes show the default period they stand for.
    assert [soup(response).select_one(f"input[name={name}]")["value"] for name in ("from", "to")] == [
        Period.last().start.isoformat(), Period.last().end.isoformat()]


@pytest.mark.django_db
def test_insights_page_with_ten_thousand_searches(staff_client):
    now = timezone.now()
    pasted = [DENIED.format(account="111122223333", user=f"u{n}", bucket="b") for n in range(3)] + [EXPIRED, "sso"]
    signatures = {text: error_signature(text) for text in pasted}
    SearchLog.objects.bulk_create([
        SearchLog(query=pasted[n % 5], signature=signatures[pasted[n % 5]], result_count=n % 3) for n in range(10_000)
    ], batch_size=2000)
    # Spread over the last ten days, as bulk_create stamped them all with now.
    for day in range(10):
        SearchLog.objects.filter(pk__in=SearchLog.objects.filter(pk__gt=0).values("pk")[day * 1000:(day + 1) * 1000]
                                 ).update(created_at=now - timedelta(days=day))
    response = staff_client.get("/desk/insights/")
    assert response.status_code == 200
    activity_chart = charts_of(response)[0]
    assert not activity_chart.find("text", class_="chart-empty")
    assert "searches 10000" in activity_chart.desc.get_text()
    days = soup(response).select("#activity-heading ~ details tbody tr")
    assert sum(int(row.select("td")[0].get_text()) for row in days) == 10_000
    signatures_table = soup(response).select("#signatures-heading ~ div table tbody tr")
    assert [row.select("td")[3].get_text() for row in signatures_table] == ["6000", "2000"]
    assert all(row.select_one("svg.chart-sparkline title") for row in signatures_table)


@pytest.mark.django_db
def test_insights_page_prints_the_numbers_escaped(staff_client):
    search_log(HOSTILE, results=0)
    search_log(f"An error occurred (AccessDenied) {HOSTILE}", results=0)
    make_case(diagnosis("An error occurred (AccessDenied)", outcome="escalated"))
    page = staff_client.get("/desk/insights/")
    assert b"<script>" not in page.content
    text = soup(page).get_text(" ", strip=True)
    assert "AccessDenied 1 1 0" in text
    assert "Escalated to the help desk 1 100.0%" in text
