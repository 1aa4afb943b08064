"""The outbox: every mail and webhook call is a row first, so a mail server or endpoint
that is down loses nothing; `manage.py deliver` retries what is due, with backoff."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.db import models
from django.utils import timezone

# Waits before the 2nd, 3rd, ... attempt: 1 minute doubling up to 6 hours, so 12 attempts
# span about 20 hours; after the last, the row is left failed for staff to see in the admin.
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=6)
MAX_ATTEMPTS = 12


class DeliveryQuerySet(models.QuerySet):
    def due(self, now: datetime | None = None) -> DeliveryQuerySet:
        """Not yet sent, not given up, and its next attempt is now or past."""
        return self.exclude(state=Delivery.State.SENT).filter(next_attempt_at__lte=now or timezone.now())


class Delivery(models.Model):
    """What one message needs to be sent until it is: state, attempts, the last error."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, default=timezone.now, db_index=True,
        help_text="Empty once sent, or after the last attempt failed.",
    )
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-created_at", "-pk"]

    def record(self, error: str = "", *, now: datetime | None = None) -> None:
        """Note one attempt: sent when there is no error, else failed and rescheduled with
        exponential backoff (or given up after MAX_ATTEMPTS)."""
        now = now or timezone.now()
        self.attempts += 1
        self.last_error = error[:2000]
        if not error:
            self.state, self.sent_at, self.next_attempt_at = self.State.SENT, now, None
        else:
            self.state = self.State.FAILED
            wait = min(FIRST_RETRY * 2 ** (self.attempts - 1), LONGEST_RETRY)
            self.next_attempt_at = now + wait if self.attempts < MAX_ATTEMPTS else None
        self.save()


class OutgoingEmail(Delivery):
    """One mail to one address, rendered when it was queued (what happened then is what it says)."""

    case = models.ForeignKey("kb.Case", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=40, help_text="Which template: kb/mail/<kind>.txt and .html.")
    to = models.EmailField()
    subject = models.CharField(max_length=300)
    text_body = models.TextField()
    html_body = models.TextField()

    class Meta(Delivery.Meta):
        verbose_name = "outgoing email"

    def __str__(self) -> str:
        return self.subject


class Webhook(models.Model):
    """A URL told about case events: a ticket system, a chat channel."""

    class Event(models.TextChoices):
        OPENED = "case.opened", "A case is opened"
        REPLIED = "case.replied", "The desk replies"
        ANSWERED = "case.answered", "The person answers"
        RESOLVED = "case.resolved", "A case is resolved"

    url = models.URLField(max_length=500, help_text="Receives a POST of JSON for each event.")
    secret = models.CharField(
        max_length=100, default=secrets.token_urlsafe,
        help_text="Signs each body (HMAC-SHA256, header X-KB-Signature); give the same secret to the receiver.",
    )
    active = models.BooleanField(default=True)
    events = models.JSONField(default=list, blank=True, help_text="Event names; empty means every event.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["url"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event: str) -> bool:
        return self.active and (not self.events or event in self.events)


class WebhookDelivery(Delivery):
    """One event posted to one webhook: the exact body that was signed, and how each attempt went."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    case = models.ForeignKey("kb.Case", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    event = models.CharField(max_length=40, choices=Webhook.Event.choices)
    body = models.TextField(help_text="The JSON posted, byte for byte what was signed.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="The last answer's HTTP status.")

    class Meta(Delivery.Meta):
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook}"
