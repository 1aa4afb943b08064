"""Mail and webhooks about cases (kb/notify): the whole conversation through the test client,
signed webhook deliveries to a real HTTP server on 127.0.0.1, and a mail server or endpoint
that is down losing nothing and failing no request, until `manage.py deliver` sends it.
"""

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from kb.desk.conversation import add_note, reply, update_case
from kb.models import Case, Diagnosis, OutgoingEmail, Webhook, WebhookDelivery
from kb.notify import models as outbox_models
from kb.notify.outbox import deliver

from .test_desk import guide, make_case, soup, staff, staff_client  # noqa: F401

SITE = "https://kb.example.com"
DESK = "desk@example.com"


class DownBackend(BaseEmailBackend):
    """A mail server that refuses every connection."""

    def send_messages(self, messages):
        raise ConnectionRefusedError(111, "Connection refused")


@pytest.fixture(autouse=True)
def mail_settings(settings) -> None:
    settings.KB_SITE_URL = SITE
    settings.KB_DESK_EMAIL = [DESK]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.KB_DELIVER_AFTER_COMMIT = True


# Tests that send after commit run with real transactions (django_db(transaction=True)), so
# each change commits and its on-commit delivery runs where it would in production.
committing = pytest.mark.django_db(transaction=True)


def serve(port: int = 0) -> SimpleNamespace:
    """An HTTP server on 127.0.0.1 in a thread: records each POST, answers with the next of
    `answers` (200 once they run out)."""
    received, answers = [], []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(SimpleNamespace(headers=self.headers, body=body, path=self.path))
            self.send_response(answers.pop(0) if answers else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}/hook", received=received, answers=answers,
                           server=server)


@pytest.fixture
def receiver() -> Iterator[SimpleNamespace]:
    endpoint = serve()
    yield endpoint
    endpoint.server.shutdown()
    endpoint.server.server_close()


def verified(request, secret: str) -> dict:
    """The body, after checking its signature as the README tells receivers to."""
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-KB-Signature"], expected)
    return json.loads(request.body)


def diagnosis() -> Diagnosis:
    return Diagnosis.objects.create(
        error_text="An error occurred (AccessDenied) aws_secret_access_key=[REDACTED]", signature="sig",
        analysis={"codes": ["AccessDenied"]}, token="the-private-token-0123456789",
    )


def escalate(client, found: Diagnosis):
    return client.post(f"/troubleshoot/{found.token}/case/",
                       {"name": "Pat", "email": "pat@example.com", "details": "It worked yesterday"})


def make_due(model) -> None:
    model.objects.exclude(state="sent").update(next_attempt_at=timezone.now() - timedelta(seconds=1))


# The whole conversation ----------------------------------------------------------------------


@committing
def test_the_conversation_mails_each_side_and_calls_the_webhook(client, staff_client, guide, receiver):
    hook = Webhook.objects.create(url=receiver.url)
    found = diagnosis()
    private = f"{SITE}/troubleshoot/{found.token}/case/"

    assert escalate(client, found).status_code == 302
    case = Case.objects.get()
    to_person, to_desk = sorted(mail.outbox, key=lambda m: m.to != ["pat@example.com"])
    assert to_person.to == ["pat@example.com"] and case.reference in to_person.subject
    assert private in to_person.body and private in to_person.alternatives[0].content
    assert to_desk.to == [DESK] and f"{SITE}/desk/cases/{case.reference}/" in to_desk.body
    assert found.token not in to_desk.body + to_desk.alternatives[0].content

    staff_client.post(f"/desk/cases/{case.reference}/",
                      {"status": "waiting", "reply": "Which <b>role</b> did you assume?", "note": "staff-only words"})
    replied = mail.outbox[2]
    assert replied.to == ["pat@example.com"] and "Which <b>role</b> did you assume?" in replied.body
    assert "Which &lt;b&gt;role&lt;/b&gt; did you assume?" in replied.alternatives[0].content

    assert client.post(private.removeprefix(SITE), {"body": "The admin role"}).status_code == 302
    answered = mail.outbox[3]
    assert answered.to == [DESK] and "Pat answered" in answered.body and "The admin role" not in answered.body

    staff_client.post(f"/desk/cases/{case.reference}/", {"status": "resolved", "section": "g/troubleshoot#assume-role"})
    resolved = mail.outbox[4]
    assert resolved.to == ["pat@example.com"] and "I cannot assume a role" in resolved.body
    assert f"{SITE}/kb/g/troubleshoot/#assume-role" in resolved.body
    page = soup(client.get(private.removeprefix(SITE)))
    assert "Check the trust policy." in page.select_one(".case-answer").get_text()

    assert len(mail.outbox) == 5
    for message in mail.outbox:  # no staff notes, no pasted text, in either body
        for body in (message.body, message.alternatives[0].content):
            assert "staff-only words" not in body and "AccessDenied" not in body and "It worked yesterday" not in body

    events = [verified(request, hook.secret) for request in receiver.received]
    assert [e["event"] for e in events] == ["case.opened", "case.replied", "case.answered", "case.resolved"]
    assert {r.headers["X-KB-Event"] for r in receiver.received} == {e["event"] for e in events}
    assert events[1]["message"] == {**events[1]["message"], "from": "desk", "body": "Which <b>role</b> did you assume?"}
    assert events[2]["message"]["from"] == "requester" and events[2]["message"]["body"] == "The admin role"
    assert events[3]["case"]["resolved_by"] == {"title": "I cannot assume a role",
                                               "url": f"{SITE}/kb/g/troubleshoot/#assume-role"}
    assert all(e["case"]["url"] == f"{SITE}/desk/cases/{case.reference}/" for e in events)
    raw = b"".join(r.body for r in receiver.received).decode()
    assert found.token not in raw and "pat@example.com" not in raw and "staff-only words" not in raw
    assert set(WebhookDelivery.objects.values_list("state", "status_code", "attempts")) == {("sent", 200, 1)}
    assert set(OutgoingEmail.objects.values_list("state", "attempts")) == {("sent", 1)}


@committing
def test_webhooks_get_only_the_events_they_want_and_inactive_ones_nothing(staff, receiver):
    wants_resolved = Webhook.objects.create(url=receiver.url, events=["case.resolved"])
    Webhook.objects.create(url=receiver.url + "/off", active=False)
    case = make_case()
    reply(case, staff, "hello")
    add_note(case, staff, "internal")
    assert receiver.received == []
    update_case(case, user=staff, status=Case.Status.RESOLVED, content_missing=True)
    assert [verified(r, wants_resolved.secret)["event"] for r in receiver.received] == ["case.resolved"]


# Down, then back ------------------------------------------------------------------------------


@committing
def test_a_mail_server_that_is_down_fails_no_request_and_deliver_sends_later(client, settings, caplog):
    settings.EMAIL_BACKEND = "kb.tests.test_notify.DownBackend"
    found = diagnosis()
    assert escalate(client, found).status_code == 302
    case = Case.objects.get()
    assert soup(client.get(f"/troubleshoot/{found.token}/case/")).h1.get_text() == f"Case {case.reference}"
    rows = list(OutgoingEmail.objects.order_by("to"))
    assert [(r.to, r.state, r.attempts) for r in rows] == [(DESK, "failed", 1), ("pat@example.com", "failed", 1)]
    assert all("Connection refused" in r.last_error and r.next_attempt_at > timezone.now() for r in rows)
    assert "Connection refused" in caplog.text

    call_command("deliver")  # not due yet: nothing tried
    assert OutgoingEmail.objects.filter(attempts=1).count() == 2

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    make_due(OutgoingEmail)
    call_command("deliver")
    assert sorted(m.to[0] for m in mail.outbox) == [DESK, "pat@example.com"]
    assert set(OutgoingEmail.objects.values_list("state", "attempts")) == {("sent", 2)}
    call_command("deliver")  # sent rows are never sent again
    assert len(mail.outbox) == 2


@committing
def test_a_failing_endpoint_is_logged_and_retried_until_it_answers(staff, receiver, caplog):
    hook = Webhook.objects.create(url=receiver.url)
    receiver.answers.extend([500, 503])
    case = make_case()
    reply(case, staff, "first try")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.status_code, delivery.attempts) == ("failed", 500, 1)
    assert "HTTP 500" in delivery.last_error and "HTTP 500" in caplog.text

    make_due(WebhookDelivery)
    call_command("deliver")
    delivery.refresh_from_db()
    assert (delivery.state, delivery.status_code, delivery.attempts) == ("failed", 503, 2)
    make_due(WebhookDelivery)
    call_command("deliver")
    delivery.refresh_from_db()
    assert (delivery.state, delivery.status_code, delivery.attempts, delivery.next_attempt_at) == ("sent", 200, 3, None)
    bodies = [verified(r, hook.secret) for r in receiver.received]
    assert len(bodies) == 3 and bodies[0] == bodies[2]  # the same signed body each time
    assert len({r.headers["X-KB-Delivery"] for r in receiver.received}) == 1


@committing
def test_an_endpoint_that_is_down_loses_nothing(client):
    with socket.socket() as probe:  # a port nothing listens on, until the endpoint comes back
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hook = Webhook.objects.create(url=f"http://127.0.0.1:{port}/hook")
    assert escalate(client, diagnosis()).status_code == 302
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "failed" and delivery.status_code is None and "refused" in delivery.last_error.lower()

    endpoint = serve(port)
    try:
        make_due(WebhookDelivery)
        call_command("deliver")
    finally:
        endpoint.server.shutdown()
        endpoint.server.server_close()
    assert verified(endpoint.received[0], hook.secret)["event"] == "case.opened"
    assert WebhookDelivery.objects.get().state == "sent"


@committing
def test_with_delivery_after_commit_off_only_the_command_sends(client, settings):
    settings.KB_DELIVER_AFTER_COMMIT = False
    escalate(client, diagnosis())
    assert mail.outbox == [] and set(OutgoingEmail.objects.values_list("state", flat=True)) == {"pending"}
    call_command("deliver")
    assert len(mail.outbox) == 2


# The outbox -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_retries_back_off_exponentially_and_give_up_after_the_last_attempt():
    case = make_case()
    row = OutgoingEmail.objects.create(case=case, kind="x", to="a@example.com", subject="s", text_body="t", html_body="h")
    now = timezone.now()
    waits = []
    for _ in range(outbox_models.MAX_ATTEMPTS):
        row.record("down", now=now)
        waits.append(row.next_attempt_at - now if row.next_attempt_at else None)
    minute = timedelta(minutes=1)
    assert waits[:4] == [minute, 2 * minute, 4 * minute, 8 * minute]
    assert waits[-2] == outbox_models.LONGEST_RETRY and waits[-1] is None
    assert not OutgoingEmail.objects.due(now + timedelta(days=365)).exists()  # given up: left for the admin


@pytest.mark.django_db
def test_a_row_is_sent_once_even_when_two_senders_hold_it():
    case = make_case()
    row = OutgoingEmail.objects.create(case=case, kind="x", to="a@example.com", subject="s", text_body="t", html_body="h")
    stale = OutgoingEmail.objects.get(pk=row.pk)  # what a second process loaded at the same time
    assert deliver([row])["sent"] == 1
    assert deliver([stale]) == {}
    assert len(mail.outbox) == 1


@committing
def test_the_admin_lists_deliveries_and_edits_webhooks(admin_client, staff, receiver):
    receiver.answers.append(500)
    Webhook.objects.create(url=receiver.url)
    reply(make_case(), staff, "hi")
    page = admin_client.get("/admin/kb/webhookdelivery/")
    assert page.status_code == 200 and b"case.replied" in page.content and b"500" in page.content
    assert admin_client.get("/admin/kb/outgoingemail/").status_code == 200
    response = admin_client.post("/admin/kb/webhook/add/", {"url": "https://chat.example.com/hook", "active": "on",
                                                             "events": ["case.opened", "case.resolved"], "secret": "s3"})
    assert response.status_code == 302
    assert Webhook.objects.get(secret="s3").events == ["case.opened", "case.resolved"]
    refused = admin_client.post("/admin/kb/webhook/add/", {"url": "ftp://files.example.com/", "secret": "s4"})
    assert refused.status_code == 200 and not Webhook.objects.filter(secret="s4").exists()
    email = OutgoingEmail.objects.first()
    body = admin_client.get(f"/admin/kb/outgoingemail/{email.pk}/change/").content.decode()
    assert "/troubleshoot/" not in body  # the person's private link stays theirs


@pytest.mark.django_db
def test_the_delivery_log_takes_the_same_queries_however_many_rows_it_lists(admin_client):
    hook = Webhook.objects.create(url="http://127.0.0.1:9/hook")

    def queries_for_a_page_of(rows: int) -> int:
        WebhookDelivery.objects.bulk_create(
            [WebhookDelivery(webhook=hook, case=make_case(), event="case.opened", body="{}") for _ in range(rows)]
        )
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get("/admin/kb/webhookdelivery/").status_code == 200
        return len(queries)

    assert queries_for_a_page_of(1) == queries_for_a_page_of(5)
