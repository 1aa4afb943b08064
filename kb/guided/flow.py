"""The guided flow's writes: a diagnosis, votes on its recommendations, and escalation to a case.

Each step is one small transaction. Pasted text is redacted before it is stored; a
"fixed" outcome is set only on an open diagnosis (a conditional update), and escalation
wins over it, so concurrent clicks never lose a case.
"""

from __future__ import annotations

import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone

from kb.desk.conversation import opened
from kb.models import Case, Diagnosis, Feedback, Section
from kb.redaction import redact

from .activities import find as find_activity
from .recommend import recommend

REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread


def clean_context(context: dict) -> dict:
    """Keep only the context fields the form offers, as short strings (an activity no longer offered is dropped)."""
    activity = str(context.get("activity") or "")
    return {
        "activity": activity if find_activity(activity) else "",
        "service": redact(str(context.get("service") or ""))[:100],
    }


def start_diagnosis(error_text: str, context: dict) -> Diagnosis:
    """Analyse and recommend, and store what the person is shown (redacted)."""
    context = clean_context(context)
    recommendation = recommend(error_text, context)
    result = recommendation.as_dict()
    for item, shown in zip(recommendation.items, result["recommendations"]):
        shown["section_id"] = item.section.pk  # what the vote buttons post
    analysis = result["analysis"]
    # Analysis fields quote the pasted text (principal ARNs, resources), so they are redacted too.
    analysis["summary"] = [redact(line) for line in analysis["summary"]]
    analysis["resource"] = redact(analysis["resource"])
    return Diagnosis.objects.create(
        error_text=redact(error_text),
        context=context,
        signature=recommendation.analysis.signature,
        analysis=analysis,
        recommendations=result["recommendations"],
        token=secrets.token_urlsafe(24),
    )


def recommended_section(diagnosis: Diagnosis, section_id: int) -> Section | None:
    """The section, if it was among the diagnosis's recommendations (votes only count for those)."""
    section = Section.objects.with_article().filter(pk=section_id).first()
    if section is None:
        return None
    shown = {(r["guide"], r["article"], r["anchor"]) for r in diagnosis.recommendations}
    key = (section.article.guide.slug, section.article.slug, section.anchor)
    return section if key in shown else None


def record_feedback(section: Section, vote: str, diagnosis: Diagnosis | None = None) -> Feedback:
    """Store a vote; "This fixed it" on a recommendation ends the diagnosis as fixed.

    On a recommendation a person has one vote, which a second click changes; article-page
    votes are anonymous rows, one per click.
    """
    feedback = Feedback(diagnosis=diagnosis, signature=diagnosis.signature if diagnosis else "", vote=vote)
    feedback.point_at(section)
    try:
        with transaction.atomic():
            feedback.save()
    except IntegrityError:  # this recommendation already has this person's vote
        Feedback.objects.filter(
            diagnosis=diagnosis, guide_slug=feedback.guide_slug, article_slug=feedback.article_slug,
            anchor=feedback.anchor,
        ).update(vote=vote)
    if diagnosis is not None and vote == Feedback.Vote.HELPED:
        Diagnosis.objects.filter(pk=diagnosis.pk, outcome=Diagnosis.Outcome.OPEN).update(
            outcome=Diagnosis.Outcome.FIXED
        )
    return feedback


def open_case(diagnosis: Diagnosis, *, name: str, email: str, details: str = "") -> Case:
    """Escalate to the help desk with everything attached; one case per diagnosis. The
    person and the desk are mailed (and webhooks called) once it commits."""
    existing = Case.objects.filter(diagnosis=diagnosis).first()
    if existing:
        return existing
    for _ in range(5):
        reference = f"KB-{timezone.now():%y%m}-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))
        try:
            with transaction.atomic():
                case = Case.objects.create(
                    reference=reference, diagnosis=diagnosis, name=name, email=email, details=redact(details)
                )
                Diagnosis.objects.filter(pk=diagnosis.pk).update(outcome=Diagnosis.Outcome.ESCALATED)
                opened(case)
                return case
        except IntegrityError:
            existing = Case.objects.filter(diagnosis=diagnosis).first()
            if existing:  # a concurrent submit created it first
                return existing
    raise RuntimeError("could not allocate a unique case reference")
