"""Forms validating what people and tools send: search parameters and the guided flow."""

from django import forms

from kb.guided import activities
from kb.models import Feedback, Guide
from kb.search.query import MAX_QUERY_CHARS, printable


class PastedTextField(forms.CharField):
    """Text pasted from a terminal: control characters (NUL included) become spaces before
    validation, and a form shown again shows the text so cleaned.

    NUL would otherwise be rejected outright (or break a database driver). Browsers send a
    textarea's line breaks as CRLF: counted as two characters, a paste the field's
    maxlength allowed would go over the same limit here.
    """

    def to_python(self, value: object) -> str:
        text = printable(super().to_python(value))
        return text.strip() if self.strip else text

    def bound_data(self, data: object, initial: object) -> object:
        return printable(data) if isinstance(data, str) else super().bound_data(data, initial)


class SearchForm(forms.Form):
    q = PastedTextField(label="Search", max_length=MAX_QUERY_CHARS, required=False)
    guide = forms.SlugField(max_length=200, required=False)
    limit = forms.IntegerField(min_value=1, max_value=50, required=False)

    def clean_guide(self) -> str:
        slug = self.cleaned_data["guide"]
        if slug and not Guide.objects.filter(slug=slug).exists():
            raise forms.ValidationError("There is no guide called %(slug)s.", code="unknown", params={"slug": slug})
        return slug


class TroubleshootForm(forms.Form):
    error_text = PastedTextField(
        label="Error message or symptom",
        max_length=MAX_QUERY_CHARS,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text="Paste the whole error output. Secrets such as access keys are removed before anything is stored.",
        error_messages={"required": "Paste the error message or describe the problem."},
    )
    activity = forms.ChoiceField(label="What were you doing?", required=False)
    service = forms.CharField(
        label="Service or tool", max_length=100, required=False,
        help_text="Detected from the error where possible; change it if it is wrong.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Read per form, not at import: an import can add or remove a guide's own activities.
        self.fields["activity"].choices = [("", "Choose if you like"), *activities.choices()]


class FeedbackForm(forms.Form):
    section = forms.IntegerField(min_value=1)
    vote = forms.ChoiceField(choices=Feedback.Vote.choices)


class CaseForm(forms.Form):
    name = forms.CharField(max_length=200)
    email = forms.EmailField(max_length=254)
    details = forms.CharField(
        label="Anything else we should know?", max_length=5000, required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class AnswerForm(forms.Form):
    """The person's answer on their case page: a paste like any other (same limit; redacted when stored)."""

    body = PastedTextField(
        label="Your answer",
        max_length=MAX_QUERY_CHARS,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text="Secrets such as access keys are removed before anything is stored.",
        error_messages={"required": "Write your answer, or paste the new error."},
    )
