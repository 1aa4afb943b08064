"""Forms validating what people and tools send: search parameters and, later, the guided flow."""

from django import forms

from kb.search.query import MAX_QUERY_CHARS


class SearchForm(forms.Form):
    q = forms.CharField(label="Search", max_length=MAX_QUERY_CHARS, required=False, strip=True)
    guide = forms.SlugField(max_length=200, required=False)
    limit = forms.IntegerField(min_value=1, max_value=50, required=False)

    def clean_q(self) -> str:
        # Control characters are never meaningful in a query; NUL even breaks some drivers.
        return "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in self.cleaned_data["q"])
