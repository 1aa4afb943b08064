"""The staff form on a case page: status, assignment, a reply, a note and what resolved the case."""

from __future__ import annotations

from typing import Any

from django import forms

from kb.models import Case, Section

from .cases import section_from_reference


class SectionReferenceField(forms.CharField):
    """A section named as staff write it (a portal link or `guide/article#anchor`); cleans to the Section."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 700)
        kwargs.setdefault("help_text", "A portal link such as /kb/guide/article/#anchor, or guide/article#anchor.")
        super().__init__(**kwargs)

    def clean(self, value: Any) -> Section | None:
        reference = super().clean(value)
        if not reference:
            return None
        section = section_from_reference(reference)
        if section is None:
            raise forms.ValidationError(
                "No section of the portal is at that address. Paste a section's link, such as "
                "/kb/guide/article/#anchor, or write guide/article#anchor.", code="unknown",
            )
        return section


class CaseUpdateForm(forms.Form):
    status = forms.ChoiceField(choices=Case.Status.choices)
    assign_to_me = forms.BooleanField(required=False, label="Assign to me")
    reply = forms.CharField(
        required=False, max_length=10_000, label="Reply to the person",
        help_text="Shown on their case page and mailed to them.", widget=forms.Textarea(attrs={"rows": 5}),
    )
    note = forms.CharField(
        required=False, max_length=10_000, label="Add an internal note",
        help_text="Staff only: never shown or sent to the person.", widget=forms.Textarea(attrs={"rows": 3}),
    )
    section = SectionReferenceField(required=False, label="Section that resolved it")
    content_missing = forms.BooleanField(required=False, label="Content is missing: no section covers this")

    @classmethod
    def for_case(cls, case: Case, data: Any = None) -> CaseUpdateForm:
        """The form bound to `data` (a POST) or showing the case as it is."""
        key = f"{case.guide_slug}/{case.article_slug}#{case.anchor}" if case.guide_slug else ""
        initial = {"status": case.status, "section": key, "content_missing": case.content_missing}
        return cls(data, initial=initial, label_suffix="")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        section, missing = data.get("section"), data.get("content_missing")
        if section and missing:
            self.add_error("content_missing", "Either a section resolved the case or content is missing, not both.")
        elif (section or missing) and data.get("status") != Case.Status.RESOLVED:
            self.add_error(
                "status",
                "A resolving section or missing content resolves the case: choose Resolved, "
                "or clear them to reopen it.",
            )
        return data
