"""The conversation on a case: the desk's replies and internal notes, the person's answers,
status changes and resolution, as one timeline of CaseEvents.

Each function locks the case row, writes its events and queues the mail and webhooks
that announce it in one transaction (they are sent after it commits), so two staff
members saving at once lose nothing and nothing is announced that did not happen.
Input a form would reject (a blank message, an unknown status) raises ValueError.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from kb.models import Case, CaseEvent, Section, Webhook
from kb.notify.outbox import announce
from kb.redaction import redact

Status = Case.Status
# The person's answer gives the desk work again on a case that waited on them or was closed.
REOPENED_BY_ANSWER = {Status.WAITING, Status.RESOLVED}


def timeline(case: Case, *, for_requester: bool = False) -> list[CaseEvent]:
    """The case's events oldest first; the person's view leaves out internal notes."""
    events = case.events.select_related("author")
    return list(events.for_requester() if for_requester else events)


@transaction.atomic
def opened(case: Case) -> CaseEvent:
    """Start the timeline of a case just raised, and tell the person and the desk."""
    event = _add(case, CaseEvent.Kind.STATUS, None, new_status=case.status)
    announce(case, Webhook.Event.OPENED, event)
    return event


@transaction.atomic
def reply(case: Case, user: User, body: str) -> CaseEvent:
    """A message from the desk to the person: shown on their case page and mailed to them."""
    locked = _lock(case)
    event = _add(locked, CaseEvent.Kind.REPLY, user, _message(body))
    locked.save(update_fields=["updated_at"])
    announce(locked, Webhook.Event.REPLIED, event)
    return event


@transaction.atomic
def add_note(case: Case, user: User, body: str) -> CaseEvent:
    """An internal note: staff only, never shown or sent to the person (nor does the
    "last change" their page shows move)."""
    return _add(_lock(case), CaseEvent.Kind.NOTE, user, _message(body))


@transaction.atomic
def requester_answer(case: Case, body: str) -> CaseEvent:
    """The person's answer from their case page, stored with secrets redacted (as a paste is).

    A case waiting on them, or resolved, goes back to in progress: the desk has work again.
    """
    locked = _lock(case)
    event = _add(locked, CaseEvent.Kind.ANSWER, None, redact(_message(body)))
    if locked.status in REOPENED_BY_ANSWER:
        _set_status(locked, None, Status.IN_PROGRESS)
    locked.save()
    announce(locked, Webhook.Event.ANSWERED, event)
    return event


@transaction.atomic
def update_case(
    case: Case,
    *,
    user: User,
    status: str,
    section: Section | None = None,
    content_missing: bool = False,
    note: str = "",
    reply: str = "",
    assign_to_me: bool = False,
) -> Case:
    """Apply the desk form: assignment, a note, a reply, then the status (so the timeline
    reads "replied, then waiting on requester"). Blank notes and replies are ignored.

    Resolved takes the section that answers the case, or content missing (not both), and
    the person is told when the case becomes resolved. Any other status clears a
    resolution, so a reopened case does not keep teaching recommendations one that did not hold.

    As with add_note(), a note or an assignment alone leaves `updated_at` (the "last
    change" on the person's page) where it was: only what the person can see moves it.
    """
    if section is not None and content_missing:
        raise ValueError("a case is resolved by a section or has content missing, not both")
    locked = _lock(case)
    shown_before = _shown_to_requester(locked)
    if assign_to_me:
        locked.assignee = user
    if note.strip():
        _add(locked, CaseEvent.Kind.NOTE, user, note.strip())
    replied = bool(reply.strip())
    if replied:
        announce(locked, Webhook.Event.REPLIED, _add(locked, CaseEvent.Kind.REPLY, user, reply.strip()))
    if status == Status.RESOLVED:
        _resolve(locked, user, section, content_missing)
    else:
        _set_status(locked, user, status)
    if replied or _shown_to_requester(locked) != shown_before:
        locked.save()
    else:
        locked.save(update_fields=["assignee"])
    return locked


def _shown_to_requester(case: Case) -> tuple:
    """What of a case the person's page shows (its status and the section that resolved it)."""
    return (case.status, case.section_id, case.guide_slug, case.article_slug, case.anchor)


def _message(body: str) -> str:
    if not body.strip():
        raise ValueError("a message needs some text")
    return body.strip()


def _lock(case: Case) -> Case:
    return Case.objects.select_for_update().get(pk=case.pk)


def _add(case: Case, kind: str, user: User | None, body: str = "", *, old_status: str = "",
         new_status: str = "") -> CaseEvent:
    return CaseEvent.objects.create(
        case=case, kind=kind, author=user, body=body, old_status=old_status, new_status=new_status
    )


def _set_status(case: Case, user: User | None, status: str) -> CaseEvent | None:
    """Change a locked case's status in memory and record it (nothing when unchanged)."""
    if status not in Status.values:
        raise ValueError(f"no such status: {status!r}")
    if status != Status.RESOLVED:
        case.point_at(None)
        case.content_missing = False
    if case.status == status:
        return None
    event = _add(case, CaseEvent.Kind.STATUS, user, old_status=case.status, new_status=status)
    case.status = status
    return event


def _resolve(case: Case, user: User, section: Section | None, content_missing: bool) -> None:
    event = _set_status(case, user, Status.RESOLVED)
    case.point_at(section)
    case.content_missing = content_missing and section is None
    if event is not None:
        announce(case, Webhook.Event.RESOLVED, event)
