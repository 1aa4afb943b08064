"""The conversation on a case in a real browser: the person escalates, the desk replies,
the person answers, the desk resolves with a section; mail goes out at each step.

Uses conftest's Chromium; the live server commits for real, so mail is sent after commit.
"""

import pytest
from django.core import mail

from kb.importer import import_content
from kb.models import Case, Diagnosis

from .test_desk import KEYS, TROUBLESHOOT

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def people(browser, live_server, transactional_db, write_guide, django_user_model, settings):
    """Two browser contexts, the person's and a staff member's (signed in through the admin login)."""
    settings.KB_DESK_EMAIL = ["desk@example.com"]
    settings.KB_SITE_URL = live_server.url
    import_content([write_guide("g", {"troubleshoot.md": TROUBLESHOOT, "keys.md": KEYS})])
    django_user_model.objects.create_user("sam", password="a-long-test-password", is_staff=True)
    contexts = [browser.new_context(base_url=live_server.url) for _ in range(2)]
    person, staff = (context.new_page() for context in contexts)
    staff.goto("/admin/login/")
    staff.get_by_label("Username").fill("sam")
    staff.get_by_label("Password").fill("a-long-test-password")
    staff.get_by_role("button", name="Log in").click()
    staff.wait_for_url("**/admin/")
    yield person, staff
    for context in contexts:
        context.close()


def test_escalate_reply_answer_resolve(people):
    person, staff = people
    diagnosis = Diagnosis.objects.create(error_text="An error occurred (AccessDenied)", signature="s", token="tok-123")
    person.goto(f"/troubleshoot/{diagnosis.token}/case/")
    person.get_by_label("Name").fill("Pat")
    person.get_by_label("Email").fill("pat@example.com")
    person.get_by_role("button", name="Send to the help desk").click()
    reference = Case.objects.get().reference
    sync_api.expect(person.get_by_role("heading", level=1)).to_have_text(f"Case {reference}")
    assert sorted(m.to[0] for m in mail.outbox) == ["desk@example.com", "pat@example.com"]

    staff.goto(f"/desk/cases/{reference}/")
    staff.get_by_label("Status").select_option("waiting")
    staff.get_by_label("Reply to the person").fill("Which role did you assume?")
    staff.get_by_label("Add an internal note").fill("probably the trust policy")
    staff.get_by_role("button", name="Save").click()
    sync_api.expect(staff.locator(".timeline")).to_contain_text("sam replied")
    assert mail.outbox[-1].to == ["pat@example.com"] and "Which role did you assume?" in mail.outbox[-1].body

    person.reload()
    conversation = person.locator("#conversation")
    sync_api.expect(conversation).to_contain_text("Which role did you assume?")
    sync_api.expect(conversation).not_to_contain_text("trust policy")
    person.get_by_label("Your answer").fill("The admin role")
    person.get_by_role("button", name="Send your answer").click()
    entries = conversation.locator(".timeline > li")
    sync_api.expect(entries.nth(-2)).to_contain_text("You wrote")
    sync_api.expect(entries.nth(-2)).to_contain_text("The admin role")
    sync_api.expect(entries.last).to_contain_text("Status: In progress")  # the desk has work again
    assert mail.outbox[-1].to == ["desk@example.com"]

    staff.reload()
    staff.get_by_label("Section that resolved it").fill("/kb/g/troubleshoot/#assume-role")
    staff.get_by_label("Section that resolved it").blur()  # desk.js picks Resolved
    staff.get_by_role("button", name="Save").click()
    sync_api.expect(staff.locator(".desk-status")).to_have_text("Resolved")
    assert "I cannot assume a role" in mail.outbox[-1].body and len(mail.outbox) == 5

    person.reload()
    sync_api.expect(person.locator(".case-answer")).to_contain_text("Check the trust policy.")
