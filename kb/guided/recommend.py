"""Recommendations for a pasted error: search, context, and what helped others, each explained.

Ranking is section search's (kb.search.ranking) on the error plus the person's context,
then adjusted by what the ranker was not fitted on: what people with the same error
signature reported ("This fixed it" votes and resolved cases raise a section, "Not this"
lowers it) and what the person said they were doing. The adjustments are bounded so they
cannot bury the text match, and made before the per-article limit, so they can bring in a
section that search would have folded under its article. Every reason shown is read off
the features that moved the section in the ranker, so none is claimed that did not count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.db.models import Count

from kb.models import Case, Feedback, Section
from kb.search import AnalysedQuery, Result, search
from kb.search.entities import BODY, HEADING, LEAD, action_value, code_value
from kb.search.facts import Facts, load_facts
from kb.search.query import tokens
from kb.search.ranking import FEATURES, call_names, name_stems
from kb.search.results import CANDIDATES, limit_per_article, result_dict

from .activities import Activity
from .activities import find as find_activity
from .analysis import ErrorAnalysis, explain

RECOMMENDATIONS = 5
# A resolved case counts as this many "This fixed it" votes.
RESOLUTION_WEIGHT = 2
# Learned evidence moves a score by at most this much either way, in the ranker's units
# (a difference of 1.5 is odds of about 4.5 to 1 that one section is the better answer).
LEARNED_CAP = 1.5
LEARNED_SATURATION = 5  # net votes, one per person, at which the cap is reached
# A section that fits what the person said they were doing: their own word counts as much
# as several others' votes.
ACTIVITY_ADJUSTMENT = LEARNED_CAP
# A feature "moved" a section when it added at least this much to its score: only those are given as reasons.
REASON_THRESHOLD = 0.15

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
    """Net votes per section from people whose error had this signature, each person counted
    once (Feedback.objects.one_per_voter), so the cap takes several people agreeing."""
    net: dict[Key, int] = {}
    for vote in Feedback.objects.filter(signature=signature).one_per_voter():
        key = (vote.guide_slug, vote.article_slug, vote.anchor)
        net[key] = net.get(key, 0) + (1 if vote.vote == Feedback.Vote.HELPED else -1)
    resolved = (
        Case.objects.filter(diagnosis__signature=signature, status=Case.Status.RESOLVED)
        .exclude(anchor="", article_slug="")
        .values_list("guide_slug", "article_slug", "anchor")
        .annotate(n=Count("id"))
    )
    for guide, article, anchor, n in resolved:
        net[(guide, article, anchor)] = net.get((guide, article, anchor), 0) + RESOLUTION_WEIGHT * n
    return net


def learned_adjustment(net: int) -> float:
    return LEARNED_CAP * max(-LEARNED_SATURATION, min(LEARNED_SATURATION, net)) / LEARNED_SATURATION


def recommend(error_text: str, context: dict | None = None, *, limit: int = RECOMMENDATIONS) -> Recommendation:
    """Up to `limit` sections for an error, each with the reasons it was chosen."""
    context = context or {}
    activity = find_activity(str(context.get("activity") or "")) or Activity("", "")
    service = str(context.get("service", ""))[:100]
    query_text = " ".join(part for part in (error_text, " ".join(activity.words), service) if part)
    # Search's candidates without its per-article limit, which comes after the adjustments.
    found = search(query_text, limit=CANDIDATES, per_article=CANDIDATES)
    query = found.query
    # The analysis reads the error alone; reuse the query's analysis when nothing was added to it.
    analysis = explain(error_text, query if query_text == error_text else None)
    net = learned_votes(analysis.signature) if analysis.is_specific else {}
    ranked: dict[Key, Result] = {}
    for result in found.results:
        key = section_key(result.section)
        result.score += learned_adjustment(net.get(key, 0))
        if fits_activity(result.section, activity):
            result.score += ACTIVITY_ADJUSTMENT
        ranked[key] = result
    _add_learned_sections(ranked, net, tuple(query.terms))
    order = limit_per_article(sorted(ranked.values(), key=lambda result: -result.score),
                              lambda result: result.section.article_id)[:limit]
    facts = load_facts([r.section.pk for r in order])
    items = [
        Recommended(r.section, r.score, str(r.snippet),
                    _why(r, facts.get(r.section.pk), analysis, query, activity, service, net.get(section_key(r.section), 0)))
        for r in order
    ]
    return Recommendation(analysis, query, items)


def section_words(section: Section) -> set[str]:
    """The words of the section's heading and text, lower-cased (as an activity's words are)."""
    return set(WORDS.findall(f"{section.title}\n{section.text}".lower()))


def fits_activity(section: Section, activity: Activity) -> bool:
    """The section says what the person was doing: it has two of the activity's words (its only one, if one)."""
    if not activity.words:
        return False
    present = section_words(section)
    return sum(word in present for word in activity.words) >= min(2, len(activity.words))


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
            ranked[key] = Result(section, floor + learned_adjustment(net[key]), terms)


def _named(analysis: ErrorAnalysis, zones: dict[str, str], where: tuple[str, ...]) -> list[tuple[str, str]]:
    """(label, value as the paste wrote it) for each of the paste's actions, operations and codes
    that the section names in `where`."""
    found = []
    for label, kind, values, normal in (
        ("action", "action", analysis.actions, lambda v: action_value(*v.split(":", 1))),
        ("operation", "operation", analysis.operations, str.lower),
        ("error code", "code", analysis.codes, code_value),
    ):
        for value in values:
            if zones.get(f"{kind}:{normal(value)}") in where:
                found.append((label, value))
    return found


def _matches(query: AnalysedQuery, title: str) -> str:
    """The query's words (up to six) that the title contains, as a reason line shows them."""
    words = set(tokens(title))
    return " ".join([t for t in query.terms if len(t) > 2 and t in words][:6])


def _why(result: Result, facts: Facts | None, analysis: ErrorAnalysis, query: AnalysedQuery, activity: Activity,
         service: str, votes: int) -> list[str]:
    section = result.section
    zones = facts.zones if facts else {}
    moved = {name for name, contribution in zip(FEATURES, result.contributions) if contribution >= REASON_THRESHOLD}
    reasons = []
    if moved & {"names_entity_heading", "names_entity_lead"}:
        reasons.extend(f"About {value}, the {label} in your error" for label, value in _named(analysis, zones, (HEADING, LEAD)))
    elif "names_entity_body" in moved:
        reasons.extend(f"Mentions {value}, the {label} in your error" for label, value in _named(analysis, zones, (BODY,)))
    if moved & {"heading_operation_words", "heading_code_words"} and facts:
        names = call_names(query) + query.codes
        spelled = [name for name in dict.fromkeys(names) if (words := name_stems(name)) and words <= facts.stems
                   and not any(name in reason for reason in reasons)]  # not if a line above names it already
        reasons.extend(f"Its heading spells out {name} from your error" for name in spelled[:2])
    if moved & {"policy_match", "policy_heading"}:
        policies = [p for p in query.entities.policy_types if zones.get(f"policy:{p}") in (HEADING, LEAD)]
        reasons.extend(f"Covers the {policy} your error names" for policy in policies)
    if moved & {"service_guide", "entity_guide"}:
        reasons.append(f"From the {section.article.guide.title}, which documents what your error names")
    if moved & {"heading_coverage", "heading_rarity", "heading_precision"} and (words := _matches(query, section.title)):
        reasons.append(f"Its heading matches: {words}")
    # A top-level section's heading is its article's title: the line above says it.
    if "article_precision" in moved and section.level > 1 and (words := _matches(query, section.article.title)):
        reasons.append(f"Its article's title matches: {words}")
    if moved & {"semantic", "semantic_rank"}:
        reasons.append("Close in meaning to your message")
    if moved & {"troubleshooting_article", "troubleshooting_error"}:
        reasons.append("From a troubleshooting article")
    if moved & {"lexical", "lexical_rank", "article_lexical"} and not reasons:
        reasons.append("Shares the distinctive words of your message")
    if fits_activity(section, activity):
        reasons.append(f"Fits what you were doing: {activity.label}")
    if service and service.lower() in section_words(section):
        reasons.append(f"About {service}")
    if votes > 0:
        reasons.append(f"Fixed the same error for others ({votes} net vote{'s' if votes != 1 else ''})")
    elif votes < 0:
        reasons.append("Ranked lower: others with this error said it did not help")
    return reasons or ["Matches words in your message"]
