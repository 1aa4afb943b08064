"""Validation of what integrations send that the desk's forms do not already cover."""

from __future__ import annotations

from django import forms

from kb.desk.forms import CaseUpdateForm, SectionReferenceField
from kb.models import Case, Feedback

MAX_PER_PAGE = 100


class CaseListForm(forms.Form):
    """GET /api/v1/cases: every filter optional; `since` is ISO 8601 (a date alone means its midnight UTC)."""

    status = forms.ChoiceField(choices=Case.Status.choices, required=False)
    since = forms.DateTimeField(required=False)
    content_missing = forms.TypedChoiceField(
        choices=[("true", "true"), ("false", "false")], coerce=lambda value: value == "true", required=False,
        empty_value=None,
    )
    page = forms.IntegerField(min_value=1, required=False)
    per_page = forms.IntegerField(min_value=1, max_value=MAX_PER_PAGE, required=False)


class SectionVoteForm(forms.Form):
    """POST /api/v1/feedback: a section as the desk names it, and the vote."""

    section = SectionReferenceField()
    vote = forms.ChoiceField(choices=Feedback.Vote.choices)


class ReplyForm(forms.Form):
    """POST /api/v1/cases/<reference>/replies: the desk's message to the person (the desk form's limit)."""

    body = forms.CharField(max_length=CaseUpdateForm.base_fields["reply"].max_length)
