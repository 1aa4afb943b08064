"""Mail about cases: which event mails whom, rendered from templates/kb/mail/, sent with
Django's mail framework (backend from EMAIL_URL, see portal/mailurl.py).

Bodies carry no secrets: no staff notes and no pasted text; the private link goes only
to the person whose link it is, and the desk gets the desk's link.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from kb.models import Case, CaseEvent, OutgoingEmail, Webhook

from .links import desk_link, private_link, section_link

PERSON, DESK = "person", "desk"

# event -> (recipient, template name, subject); templates are kb/mail/<name>.txt and .html.
MAILS: dict[str, list[tuple[str, str, str]]] = {
    Webhook.Event.OPENED: [
        (PERSON, "case_opened", "Your case {reference} is open"),
        (DESK, "desk_case_opened", "New case {reference}"),
    ],
    Webhook.Event.REPLIED: [(PERSON, "case_replied", "The help desk replied on case {reference}")],
    Webhook.Event.ANSWERED: [(DESK, "desk_case_answered", "{reference}: the person answered")],
    Webhook.Event.RESOLVED: [(PERSON, "case_resolved", "Case {reference} is resolved")],
}


def queue(case: Case, event: str, message: CaseEvent | None = None) -> list[OutgoingEmail]:
    """Render and store the mail `event` sends (to KB_DESK_EMAIL's addresses if any are set)."""
    emails = []
    for recipient, name, subject in MAILS.get(event, []):
        addresses = [case.email] if recipient == PERSON else settings.KB_DESK_EMAIL
        context = {
            "case": case,
            "message": message if message is not None and message.kind == CaseEvent.Kind.REPLY else None,
            "link": private_link(case) if recipient == PERSON else desk_link(case),
            "section_link": section_link(case),
        }
        text, html = (render_to_string(f"kb/mail/{name}.{ext}", context) for ext in ("txt", "html"))
        emails += [
            OutgoingEmail(case=case, kind=name, to=address, subject=subject.format(reference=case.reference),
                          text_body=text, html_body=html)
            for address in addresses
        ]
    return OutgoingEmail.objects.bulk_create(emails)


def send(email: OutgoingEmail) -> None:
    """Send one stored mail, plain text with an HTML alternative; raises what the backend raises."""
    message = EmailMultiAlternatives(email.subject, email.text_body, to=[email.to])
    message.attach_alternative(email.html_body, "text/html")
    message.send()

