"""The guided form's "What were you doing?" choices: a shipped default set and each guide's own.

The defaults are in activities.toml beside this module; a guide declares more with
`[[activities]]` in its guide.toml, which the importer checks with parse() and stores on
the Guide. A form key is a default's key ("console") or "<guide slug>/<key>"
("iam-user-guide/mfa"), so keys never collide; diagnoses store it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.text import capfirst

from kb.models import Guide

DEFAULTS_FILE = Path(__file__).with_name("activities.toml")
SEPARATOR = "/"  # between a guide's slug and its own key; neither can contain it
KEY = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*\Z")
MAX_KEY = 50
MAX_LABEL = 100
MAX_WORDS = 200  # characters
MAX_ACTIVITIES = 20  # per guide: a select longer than this is no help
FIELDS = ("key", "label", "words")

Choices = list[tuple[str, str] | tuple[str, list[tuple[str, str]]]]


class ActivityError(ValueError):
    """An activity list that cannot be used. `index` is the entry at fault (None: the list itself),
    so the importer can point at its line."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class Activity:
    key: str  # as declared, without the guide's slug
    label: str  # completes "What were you doing?", in lower case
    words: tuple[str, ...] = ()  # added to the search query, lower case

    def to_json(self) -> dict[str, str]:
        """The stored form, the same table guide.toml declares, so parse() reads it back."""
        return {"key": self.key, "label": self.label, "words": " ".join(self.words)}


def parse(entries: object) -> list[Activity]:
    """Check a list of {key, label, words} tables (guide.toml's `[[activities]]`, the defaults
    file, or what a Guide stores) and return them; raises ActivityError naming the entry."""
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ActivityError("activities must be an array of tables: [[activities]] with key, label and words")
    if len(entries) > MAX_ACTIVITIES:
        raise ActivityError(f"activities: at most {MAX_ACTIVITIES} may be declared, got {len(entries)}")
    activities: list[Activity] = []
    for index, entry in enumerate(entries):
        try:
            activity = _activity(entry)
            if any(activity.key == seen.key for seen in activities):
                raise ActivityError(f"key {activity.key!r} is declared twice")
        except ActivityError as exc:
            raise ActivityError(f"activity {index + 1}: {exc}", index) from None
        activities.append(activity)
    return activities


def _activity(entry: dict) -> Activity:
    if unknown := sorted(set(entry) - set(FIELDS)):
        raise ActivityError(f"unknown field {', '.join(map(repr, unknown))} (expected key, label and words)")
    key, label, words = entry.get("key"), entry.get("label"), entry.get("words", "")
    if not isinstance(key, str) or len(key) > MAX_KEY or not KEY.match(key):
        raise ActivityError(
            f"key must be a slug of at most {MAX_KEY} lower-case letters, digits and hyphens, got {key!r}"
        )
    if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL:
        raise ActivityError(f"label must be a string of 1 to {MAX_LABEL} characters")
    if not isinstance(words, str) or len(words) > MAX_WORDS:
        raise ActivityError(f"words must be a string of at most {MAX_WORDS} characters (search words and spaces)")
    # Lower case: the query would take "CloudFormation" for an error code, and reasons match lower-cased text.
    return Activity(key, " ".join(label.split()), tuple(words.lower().split()))


@cache
def defaults() -> tuple[Activity, ...]:
    """The default set, read once per process; a broken file is the project's bug, so it fails loudly."""
    try:
        return tuple(parse(tomllib.loads(DEFAULTS_FILE.read_text(encoding="utf-8")).get("activities")))
    except (OSError, tomllib.TOMLDecodeError, ActivityError) as exc:
        raise ImproperlyConfigured(f"{DEFAULTS_FILE}: {exc}") from exc


def _declared(stored: object) -> list[Activity]:
    # The importer stores only checked lists, but the admin can edit the column: a bad one offers nothing.
    try:
        return parse(stored)
    except ActivityError:
        return []


def choices() -> Choices:
    """The form's choices, labels capitalised: the defaults, then each guide's own grouped under
    its title (guides by title). One query."""
    offered: Choices = [(activity.key, capfirst(activity.label)) for activity in defaults()]
    for slug, title, stored in Guide.objects.values_list("slug", "title", "activities"):
        if own := _declared(stored):
            offered.append((title, [(f"{slug}{SEPARATOR}{a.key}", capfirst(a.label)) for a in own]))
    return offered


def find(key: str) -> Activity | None:
    """The activity a form key names, or None when nothing offers it (any more: a diagnosis keeps
    the key it was stored with after its guide drops the activity)."""
    if SEPARATOR not in key:
        return next((activity for activity in defaults() if activity.key == key), None)
    slug, _, own = key.partition(SEPARATOR)
    stored = Guide.objects.filter(slug=slug).values_list("activities", flat=True).first()
    return next((activity for activity in _declared(stored) if activity.key == own), None)
