"""The date range the insights and content-gap pages cover: its form and its bounds.

Dates are whole days in the site's time zone, both ends included; the default is the
last 30 days up to today.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.utils import timezone

DEFAULT_DAYS = 30
MAX_DAYS = 366
EARLIEST = date(2000, 1, 1)


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # included

    @classmethod
    def last(cls, days: int = DEFAULT_DAYS, today: date | None = None) -> Period:
        end = today or timezone.localdate()
        return cls(end - timedelta(days=days - 1), end)

    @property
    def since(self) -> datetime:
        """The first moment of the period (aware)."""
        return timezone.make_aware(datetime.combine(self.start, time.min))

    @property
    def until(self) -> datetime:
        """The first moment after the period (aware): filter with created_at__lt."""
        return timezone.make_aware(datetime.combine(self.end + timedelta(days=1), time.min))

    @cached_property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    @cached_property
    def weeks(self) -> list[date]:
        """The Mondays of the weeks the period touches (TruncWeek's buckets)."""
        first = self.start - timedelta(days=self.start.weekday())
        return [first + timedelta(weeks=n) for n in range((self.end - first).days // 7 + 1)]

    @property
    def query_string(self) -> str:
        """The GET parameters that select this period (for links such as CSV exports)."""
        return f"from={self.start.isoformat()}&to={self.end.isoformat()}"


class PeriodForm(forms.Form):
    """?from=YYYY-MM-DD&to=YYYY-MM-DD, both optional."""

    start = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data: Any = None, **kwargs: Any) -> None:
        super().__init__(data, label_suffix="", auto_id="period-%s", **kwargs)

    def add_prefix(self, field_name: str) -> str:
        # The query string says from/to; "from" is a Python keyword, so the fields are named apart.
        return {"start": "from", "end": "to"}.get(field_name, field_name)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        today = timezone.localdate()
        end = data.get("end") or today
        start = data.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise forms.ValidationError("The start date is after the end date.")
        if start < EARLIEST or end > today + timedelta(days=MAX_DAYS):
            raise forms.ValidationError(f"Choose dates between {EARLIEST:%Y-%m-%d} and a year from now.")
        if (end - start).days + 1 > MAX_DAYS:
            raise forms.ValidationError(f"Choose at most {MAX_DAYS} days.")
        data["period"] = Period(start, end)
        return data


def period_from(query: Any) -> tuple[Period, PeriodForm]:
    """The period a request's query string asks for, and the bound form; a bad one falls
    back to the default period and the form carries the message."""
    form = PeriodForm(query)
    if not form.is_valid():
        return Period.last(), form
    period = form.cleaned_data["period"]
    # Shown filled in, defaults included, so the boxes say which days the page covers.
    shown = PeriodForm({"from": period.start.isoformat(), "to": period.end.isoformat()})
    shown.is_valid()
    return period, shown
