"""Outgoing webhooks: a JSON event per case change, signed per hook, posted by urllib.

The receiver checks `X-KB-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw body with
the hook's secret (see README). Bodies name the case and link the desk's page; they never
carry the person's private link, email address or the desk's internal notes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request

from django.conf import settings
from django.utils import timezone

from kb.models import Case, CaseEvent, Webhook, WebhookDelivery

from .links import desk_link, section_link

SIGNATURE_HEADER = "X-KB-Signature"


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer to report, not to follow: the body was signed for one URL."""

    def redirect_request(self, *args, **kwargs) -> None:
        return None


_opener = urllib.request.build_opener(NoRedirects)


def queue(case: Case, event: str, message: CaseEvent | None = None) -> list[WebhookDelivery]:
    """Store one delivery of `event` per active webhook that wants it."""
    hooks = [hook for hook in Webhook.objects.filter(active=True) if hook.wants(event)]
    if not hooks:
        return []
    body = json.dumps(payload(case, event, message), ensure_ascii=False, separators=(",", ":"))
    return WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(webhook=hook, case=case, event=event, body=body) for hook in hooks]
    )


def payload(case: Case, event: str, message: CaseEvent | None = None) -> dict:
    """The event as JSON-ready data (documented in README)."""
    shown = message if message is not None and message.kind in {CaseEvent.Kind.REPLY, CaseEvent.Kind.ANSWER} else None
    return {
        "event": event,
        "occurred_at": timezone.now().isoformat(),  # retries send the same body
        "case": {
            "reference": case.reference,
            "status": case.status,
            "url": desk_link(case),
            "created_at": case.created_at.isoformat(),
            "resolved_by": (
                {"title": case.section.title, "url": section_link(case)} if case.section_id else None
            ),
            "content_missing": case.content_missing,
        },
        "message": None if shown is None else {
            "from": "requester" if shown.kind == CaseEvent.Kind.ANSWER else "desk",
            "author": shown.author.get_username() if shown.author else case.name,
            "body": shown.body,
            "created_at": shown.created_at.isoformat(),
        },
    }


def sign(secret: str, body: bytes) -> str:
    """The X-KB-Signature value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(delivery: WebhookDelivery) -> None:
    """POST the stored body; sets `status_code`, raises on anything but a 2xx answer."""
    body = delivery.body.encode()
    request = urllib.request.Request(
        delivery.webhook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "kb-webhooks/1",
            "X-KB-Event": delivery.event,
            "X-KB-Delivery": str(delivery.pk),
            SIGNATURE_HEADER: sign(delivery.webhook.secret, body),
        },
    )
    delivery.status_code = None
    try:
        with _opener.open(request, timeout=settings.KB_WEBHOOK_TIMEOUT) as response:
            delivery.status_code = response.status
    except urllib.error.HTTPError as error:  # 3xx, 4xx, 5xx
        delivery.status_code = error.code
        raise RuntimeError(f"HTTP {error.code} {error.reason}") from None
