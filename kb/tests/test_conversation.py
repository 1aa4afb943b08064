"""The conversation on a case (kb/desk/conversation.py): replies, internal notes, the
person's answers and status changes as one timeline, on the desk's page and the person's.

Sections come from a tiny guide loaded with the real importer (test_desk's fixtures).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from kb.desk.conversation import add_note, reply, requester_answer, timeline, update_case
from kb.models import Case, CaseEvent

from .test_desk import HOSTILE, guide, make_case, section, soup, staff, staff_client  # noqa: F401

Kind, Status = CaseEvent.Kind, Case.Status


def person_page(client, case: Case):
    return client.get(f"/troubleshoot/{case.diagnosis.token}/case/")


@pytest.mark.django_db
def test_the_person_sees_replies_and_status_changes_but_never_notes(client, staff):
    staff.first_name, staff.last_name = "Sam", "Desk"
    staff.save()
    case = make_case()
    add_note(case, staff, "Internal: they look confused")
    reply(case, staff, "Which region were you in?")
    update_case(case, user=staff, status=Status.WAITING)

    response = person_page(client, case)
    assert response.status_code == 200 and response["X-Robots-Tag"] == "noindex, nofollow"
    page = soup(response)
    entries = [li.get_text(" ", strip=True) for li in page.select("#conversation .timeline > li")]
    assert len(entries) == 2
    assert "Sam Desk wrote" in entries[0] and "Which region were you in?" in entries[0]
    assert "Status: Waiting on requester" in entries[1]
    assert "Internal" not in page.get_text() and "confused" not in page.get_text()
    assert [e.kind for e in timeline(case)] == [Kind.NOTE, Kind.REPLY, Kind.STATUS]


@pytest.mark.django_db
def test_the_person_answers_redacted_and_escaped_and_a_waiting_case_goes_back_to_the_desk(client, staff_client, staff):
    case = make_case(status=Status.WAITING)
    secret = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    response = client.post(f"/troubleshoot/{case.diagnosis.token}/case/", {"body": f"Still failing {HOSTILE}\n{secret}"})
    assert response.status_code == 302 and response["Location"].endswith("/case/#conversation")

    case.refresh_from_db()
    assert case.status == Status.IN_PROGRESS
    answer = case.events.get(kind=Kind.ANSWER)
    assert answer.author is None and "wJalrXUtnFEMI" not in answer.body and "[REDACTED]" in answer.body
    status = case.events.get(kind=Kind.STATUS)
    assert (status.author, status.old_status, status.new_status) == (None, Status.WAITING, Status.IN_PROGRESS)
    for page in (person_page(client, case), staff_client.get(f"/desk/cases/{case.reference}/")):
        assert b"<script>alert" not in page.content and b"&lt;script&gt;alert" in page.content
        assert soup(page).find("img", src="x") is None


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "message"), [("   ", "Write your answer"), ("x" * 20_001, "at most 20000")])
def test_an_empty_or_too_long_answer_is_a_form_error(client, body, message):
    case = make_case()
    response = client.post(f"/troubleshoot/{case.diagnosis.token}/case/", {"body": body})
    assert response.status_code == 400 and message in soup(response).select_one("#conversation form").get_text()
    assert not case.events.exists()


@pytest.mark.django_db
def test_resolving_with_a_section_shows_it_as_the_answer_and_an_answer_reopens(client, staff, guide):
    case = make_case()
    resolved = update_case(case, user=staff, status=Status.RESOLVED, section=section("assume-role"))
    assert resolved.status == Status.RESOLVED and resolved.section == section("assume-role")
    answer = soup(person_page(client, case)).select_one(".case-answer")
    assert answer.find("a", href="/kb/g/troubleshoot/#assume-role", string="I cannot assume a role")
    assert "Check the trust policy." in answer.select_one(".case-answer-section").get_text()

    requester_answer(case, "It did not work")
    case.refresh_from_db()
    assert case.status == Status.IN_PROGRESS and case.section is None  # a resolution that did not hold
    assert soup(person_page(client, case)).select_one(".case-answer") is None


@pytest.mark.django_db
def test_status_changes_are_recorded_once_and_resolve_takes_a_section_or_missing_content(staff, guide):
    case = make_case()
    update_case(case, user=staff, status=Status.IN_PROGRESS)
    update_case(case, user=staff, status=Status.IN_PROGRESS)  # unchanged: nothing recorded
    update_case(case, user=staff, status=Status.RESOLVED)  # resolved without naming a section
    assert [(e.old_status, e.new_status) for e in case.events.all()] == [
        (Status.NEW, Status.IN_PROGRESS), (Status.IN_PROGRESS, Status.RESOLVED)
    ]
    with pytest.raises(ValueError):
        update_case(case, user=staff, status=Status.RESOLVED, section=section("assume-role"), content_missing=True)
    with pytest.raises(ValueError):
        update_case(case, user=staff, status="closed")
    with pytest.raises(ValueError):
        reply(case, staff, "  \n ")
    assert update_case(case, user=staff, status=Status.RESOLVED, content_missing=True).content_missing


@pytest.mark.django_db
def test_the_desk_form_replies_and_sets_waiting_in_one_save(staff_client, staff):
    case = make_case()
    response = staff_client.post(f"/desk/cases/{case.reference}/", {"status": "waiting", "reply": "Try again?"})
    assert response.status_code == 302
    assert [(e.kind, e.body, e.new_status) for e in timeline(case)] == [
        (Kind.REPLY, "Try again?", ""), (Kind.STATUS, "", Status.WAITING)
    ]
    page = soup(staff_client.get(response["Location"]))
    assert "staffer replied" in page.select_one(".timeline").get_text(" ", strip=True)
    # update_case and the form agree: a blank reply and note add nothing.
    update_case(case, user=staff, status="waiting", reply="  ", note="")
    assert case.events.count() == 2


@pytest.mark.django_db
def test_a_note_or_an_assignment_from_the_desk_form_does_not_move_the_persons_last_change(staff_client, staff):
    case = make_case()
    earlier = timezone.now() - timedelta(days=2)
    Case.objects.filter(pk=case.pk).update(updated_at=earlier)
    staff_client.post(f"/desk/cases/{case.reference}/", {"status": "new", "note": "Looks like SCP", "assign_to_me": "on"})
    case.refresh_from_db()
    assert (case.updated_at, case.assignee, case.events.get().kind) == (earlier, staff, Kind.NOTE)
    add_note(case, staff, "another")
    assert Case.objects.get(pk=case.pk).updated_at == earlier
    update_case(case, user=staff, status="new", reply="Which account?")  # the person sees a reply
    assert Case.objects.get(pk=case.pk).updated_at > earlier


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_staff_notes_into_the_timeline():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("kb", "0006_guide_activities")], [("kb", "0007_case_conversation")]
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        diagnosis = old.get_model("kb", "Diagnosis").objects.create(error_text="e", signature="s", token="t")
        old.get_model("kb", "Case").objects.create(
            reference="KB-1", diagnosis=diagnosis, name="P", email="p@example.com",
            staff_notes="[2026-01-01 10:00 sam]\nfirst\n\n[2026-01-02 sam]\nsecond",
        )
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
        new = executor.loader.project_state(after).apps
        note = new.get_model("kb", "CaseEvent").objects.get()
        assert (note.kind, note.case.reference) == ("note", "KB-1") and note.body.endswith("second")
    finally:
        # Back to the latest schema: tests after this one (the corpus, the desk, ...) need
        # the migrations that follow 0007, and the test database is shared.
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert not MigrationExecutor(connection).migration_plan(executor.loader.graph.leaf_nodes())
