"""Absolute links for mail and webhooks, which leave the site: KB_SITE_URL plus a path."""

from django.conf import settings
from django.urls import reverse

from kb.models import Case


def absolute(path: str) -> str:
    return settings.KB_SITE_URL.rstrip("/") + path


def private_link(case: Case) -> str:
    """The person's own case page (the diagnosis token is its secret): only ever sent to them."""
    return absolute(reverse("guided:case", args=[case.diagnosis.token]))


def desk_link(case: Case) -> str:
    return absolute(reverse("desk:case", args=[case.reference]))


def section_link(case: Case) -> str:
    """The section that resolved the case, or "" when none did."""
    return absolute(case.section.get_absolute_url()) if case.section_id else ""
