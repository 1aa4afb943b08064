"""Recommendations for a pasted error: search, context, and what helped others, each explained.

Ranking starts from section search, adds the person's context to the query, and then
adjusts by what people with the same error signature reported: "This fixed it" votes and
resolved cases raise a section, "Not this" lowers it. The adjustment is bounded so a few
votes cannot bury the text match, and every reason is shown to the person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.db.models import Count

from kb.models import Case, Feedback, Section, is_troubleshooting
from kb.search import AnalysedQuery, Result, search
from kb.search.query import tokens
from kb.search.results import result_dict

from .analysis import ErrorAnalysis, explain

RECOMMENDATIONS = 5
CANDIDATES = 30
# A resolved case counts as this many "This fixed it" votes.
RESOLUTION_WEIGHT = 2
# Learned evidence moves a score by at most this fraction either way.
LEARNED_CAP = 0.5
LEARNED_SATURATION = 5  # net votes at which the cap is reached

ACTIVITIES = {
    "console": ("signing in to the console", "sign in console password"),
    "api": ("calling an API, the CLI or an SDK", "api cli sdk request"),
    "temporary": ("using temporary credentials or a role", "temporary security credentials role assume"),
    "policies": ("changing policies", "policy changes permissions"),
    "other": ("something else", ""),
}
ACTIVITY_WORDS = {label: tuple(words.split()) for label, words in ACTIVITIES.values() if words}

Key = tuple[str, str, str]
WORDS = re.compile(r"[^\W_]+")


@dataclass
class Recommended:
    section: Section
    score: float
    snippet: str
    why: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {**result_dict(self.section, self.snippet, self.score), "why": self.why}


@dataclass
class Recommendation:
    analysis: ErrorAnalysis
    query: AnalysedQuery
    items: list[Recommended]

    def as_dict(self) -> dict:
        return {
            "analysis": self.analysis.as_dict(),
            "recommendations": [item.as_dict() for item in self.items],
        }


def section_key(section: Section) -> Key:
    return (section.article.guide.slug, section.article.slug, section.anchor)


def learned_votes(signature: str) -> dict[Key, int]:
    """Net votes per section from people whose error had this signature."""
    net: dict[Key, int] = {}
    votes = (
        Feedback.objects.filter(signature=signature)
        .values_list("guide_slug", "article_slug", "anchor", "vote")
        .annotate(n=Count("id"))
    )
    for guide, article, anchor, vote, n in votes:
        sign = 1 if vote == Feedback.Vote.HELPED else -1
        net[(guide, article, anchor)] = net.get((guide, article, anchor), 0) + sign * n
    resolved = (
        Case.objects.filter(diagnosis__signature=signature, status=Case.Status.RESOLVED)
        .exclude(anchor="", article_slug="")
        .values_list("guide_slug", "article_slug", "anchor")
        .annotate(n=Count("id"))
    )
    for guide, article, anchor, n in resolved:
        net[(guide, article, anchor)] = net.get((guide, article, anchor), 0) + RESOLUTION_WEIGHT * n
    return net


def learned_factor(net: int) -> float:
    return 1 + LEARNED_CAP * max(-LEARNED_SATURATION, min(LEARNED_SATURATION, net)) / LEARNED_SATURATION


def recommend(error_text: str, context: dict | None = None, *, limit: int = RECOMMENDATIONS) -> Recommendation:
    """Up to `limit` sections for an error, each with the reasons it was chosen."""
    context = context or {}
    activity = ACTIVITIES.get(context.get("activity", ""), ("", ""))
    service = str(context.get("service", ""))[:100]
    query_text = " ".join(part for part in (error_text, activity[1], service) if part)
    found = search(query_text, limit=CANDIDATES)
    query = found.query
    # The analysis reads the error alone; reuse the query's analysis when nothing was added to it.
    analysis = explain(error_text, query if query_text == error_text else None)
    net = learned_votes(analysis.signature) if analysis.is_specific else {}
    ranked: dict[Key, Result] = {}
    for result in found.results:
        key = section_key(result.section)
        result.score *= learned_factor(net.get(key, 0))
        ranked[key] = result
    _add_learned_sections(ranked, net, tuple(query.terms))
    order = sorted(ranked.values(), key=lambda result: -result.score)[:limit]
    items = [
        Recommended(r.section, r.score, str(r.snippet),
                    _why(r.section, analysis, query, activity[0], service, net.get(section_key(r.section), 0)))
        for r in order
    ]
    return Recommendation(analysis, query, items)


def _add_learned_sections(ranked: dict[Key, Result], net: dict[Key, int], terms: tuple[str, ...]) -> None:
    """Sections that fixed this error for others are recommended even when the text match missed them."""
    missing = [key for key, votes in net.items() if votes > 0 and key not in ranked]
    if not missing:
        return
    floor = min((result.score for result in ranked.values()), default=1.0)
    sections = Section.objects.with_article().filter(
        article__guide__slug__in={k[0] for k in missing}, article__slug__in={k[1] for k in missing},
        anchor__in={k[2] for k in missing},
    )
    for section in sections:
        key = section_key(section)
        if key in missing:
            ranked[key] = Result(section, floor * learned_factor(net[key]), terms)


def _mentions(text: str, value: str) -> bool:
    return re.search(rf"(?<![\w:-]){re.escape(value.lower())}(?![\w-])", text) is not None


def _why(section: Section, analysis: ErrorAnalysis, query: AnalysedQuery, activity: str, service: str,
         votes: int) -> list[str]:
    text = f"{section.title}\n{section.text}".lower()
    words = set(WORDS.findall(text))  # lower-cased already: nothing for tokens() to split
    reasons = []
    for label, values in (("error code", analysis.codes), ("action", analysis.actions),
                          ("operation", analysis.operations)):
        matched = [v for v in values if _mentions(text, v)]
        if matched:
            reasons.append(f"Mentions the {label} {', '.join(matched)}")
    policies = [p for p in analysis.policy_types if _mentions(text, p.split()[0]) and p.split()[-1][:6] in text]
    if policies:
        reasons.append(f"Covers {', '.join(policies)} denials")
    title_words = set(tokens(section.title))
    matched_title = [t for t in query.terms if len(t) > 2 and t in title_words]
    if matched_title:
        reasons.append(f"Its heading matches: {' '.join(matched_title[:6])}")
    activity_words = ACTIVITY_WORDS.get(activity, ())
    if activity_words and sum(word in words for word in activity_words) >= min(2, len(activity_words)):
        reasons.append(f"Fits what you were doing: {activity}")
    if service and service.lower() in words:
        reasons.append(f"About {service}")
    if is_troubleshooting(section.article.slug, section.article.title):
        reasons.append("From a troubleshooting article")
    if votes > 0:
        reasons.append(f"Fixed the same error for others ({votes} net vote{'s' if votes != 1 else ''})")
    elif votes < 0:
        reasons.append("Ranked lower: others with this error said it did not help")
    return reasons or ["Matches words in your message"]

