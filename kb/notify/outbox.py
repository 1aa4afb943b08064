"""Queue and deliver: announce() stores the mail and webhook calls for a case event in the
caller's transaction; they are attempted after it commits, and `manage.py deliver` retries
what failed (kb.notify.models has the backoff). A failure is logged and recorded, never raised.

A row is claimed before it is sent (its next attempt moved LEASE ahead by a conditional
update), so a request and the command running at once never send it twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from kb.models import Case, CaseEvent, OutgoingEmail, WebhookDelivery

from . import mail, webhooks
from .models import Delivery

logger = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
BATCH = 500
SENDERS: dict[type[Delivery], Callable] = {OutgoingEmail: mail.send, WebhookDelivery: webhooks.post}


def announce(case: Case, event: str, message: CaseEvent | None = None) -> None:
    """Queue what `event` sends; attempt it once the transaction commits (unless
    KB_DELIVER_AFTER_COMMIT is off, leaving it all to `manage.py deliver`)."""
    rows = [*mail.queue(case, event, message), *webhooks.queue(case, event, message)]
    if rows and settings.KB_DELIVER_AFTER_COMMIT:
        transaction.on_commit(partial(deliver, rows), robust=True)


def deliver(rows: Iterable[Delivery]) -> Counter:
    """Attempt each row once (skipping any another process holds); counts by outcome."""
    outcomes: Counter = Counter()
    for row in rows:
        if _claim(row):
            outcomes[_attempt(row)] += 1
    return outcomes


def deliver_due() -> dict[str, Counter]:
    """Attempt every due mail and webhook call (the management command's work)."""
    report = {}
    for model in SENDERS:
        due = model.objects.due().order_by("next_attempt_at", "pk")
        if model is WebhookDelivery:  # a hook switched off keeps its log but gets no calls
            due = due.filter(webhook__active=True).select_related("webhook")
        report[model._meta.verbose_name_plural] = deliver(list(due[:BATCH]))
    return report


def _claim(row: Delivery) -> bool:
    now = timezone.now()
    taken = type(row).objects.due(now).filter(pk=row.pk, next_attempt_at=row.next_attempt_at).update(
        next_attempt_at=now + LEASE
    )
    return taken == 1


def _attempt(row: Delivery) -> str:
    try:
        SENDERS[type(row)](row)
    except Exception as error:  # any failure of the server or endpoint: record it and retry later
        logger.warning("delivery of %s %s failed (attempt %d): %s",
                       row._meta.verbose_name, row.pk, row.attempts + 1, error)
        row.record(f"{type(error).__name__}: {error}")
        return "failed"
    row.record()
    return "sent"
