"""Forms validating what people and tools send: search parameters and the guided flow."""

from django import forms

from kb.guided.recommend import ACTIVITIES
from kb.models import Feedback
from kb.search.query import MAX_QUERY_CHARS


class SearchForm(forms.Form):
    q = forms.CharField(label="Search", max_length=MAX_QUERY_CHARS, required=False, strip=True)
    guide = forms.SlugField(max_length=200, required=False)
    limit = forms.IntegerField(min_value=1, max_value=50, required=False)

    def clean_q(self) -> str:
        # Control characters are never meaningful in a query; NUL even breaks some drivers.
        return "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in self.cleaned_data["q"])


class TroubleshootForm(forms.Form):
    error_text = forms.CharField(
        label="Error message or symptom",
        max_length=MAX_QUERY_CHARS,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text="Paste the whole error output. Secrets such as access keys are removed before anything is stored.",
    )
    activity = forms.ChoiceField(
        label="What were you doing?",
        required=False,
        choices=[("", "Choose if you like")] + [(key, label.capitalize()) for key, (label, _) in ACTIVITIES.items()],
    )
    service = forms.CharField(
        label="Service or tool", max_length=100, required=False,
        help_text="Detected from the error where possible; change it if it is wrong.",
    )

    def clean_error_text(self) -> str:
        text = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in self.cleaned_data["error_text"])
        if not text.strip():
            raise forms.ValidationError("Paste the error message or describe the problem.")
        return text


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
