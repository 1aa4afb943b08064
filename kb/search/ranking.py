"""Ranking: candidates from several sources, the features that relate each to the query, and
the two linear models (a cascade) that score them.

Candidates come from the full-text engine, from an entity lookup (sections whose heading
or first words name the paste's action, operation or error code) and, when its model is
installed, the semantic retriever. Each candidate gets one feature vector (FEATURES); the
cascade's weights in ranker.json, fitted on judged cases by `manage.py train_ranker`
(kb.search.training), turn it into a score. The features say why a section fits, so the
reasons shown to a person are read off each feature's contribution (kb.guided.recommend).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from operator import mul
from pathlib import Path

from . import semantic
from .engines import get_engine
from .entities import BODY, HEADING, LEAD, KINDS, split_camel
from .facts import Facts, Words, corpus, load_facts, stem
from .query import FUNCTION_WORDS, AnalysedQuery

logger = logging.getLogger(__name__)

WEIGHTS_FILE = Path(__file__).with_name("ranker.json")
LEXICAL_CANDIDATES = 200
ENTITY_CANDIDATES = 30
SEMANTIC_CANDIDATES = 50
HEADING_CANDIDATES = 50
HEAD_CANDIDATES = 8  # the first model's best, re-ordered by the head model
# A typed query of this many terms or fewer is a topic to look up: full text and entities
# rank it well, and the semantic stage would cost more than its whole budget.
KEYWORD_TERMS = 3
SPECIFIC = ("action", "operation", "code")  # entity kinds that identify one error or call
HEADING_COVERAGE_TERMS = 10
UNMATCHED_RARITY = 30.0  # rarity of the heading words a paste leaves unmatched that counts in full

FEATURES = (
    "lexical", "lexical_rank", "article_lexical", "semantic", "semantic_rank", "article_semantic", "question_semantic",
    "heading_semantic", "heading_semantic_rank",
    "heading_coverage", "heading_rarity", "heading_operation_words", "heading_code_words",
    "heading_precision", "heading_unmatched", "article_precision", "article_unmatched",
    "troubleshooting_error", "troubleshooting_article", "top_level",
    *(f"kind_{kind}" for kind in KINDS if kind != "troubleshooting"),
    "names_entity_heading", "names_entity_lead", "names_entity_body", "contradicts_heading",
    "contradicted_lexical", "contradicted_coverage",
    "policy_match", "policy_heading", "policy_contradiction", "policy_contradiction_heading", "service_guide", "service_elsewhere",
    "entity_guide", "entity_article", "article_candidates", "entity_candidate",
)
INDEX = {name: i for i, name in enumerate(FEATURES)}
FIRST_STAGE = "first_stage"  # the head model's extra feature: the first model's score
HEAD_FEATURES = (*FEATURES, FIRST_STAGE)
SEMANTIC_FEATURES = frozenset(name for name in FEATURES if "semantic" in name)


@dataclass
class Scored:
    facts: Facts
    features: list[float]
    score: float = 0.0
    contributions: tuple[float, ...] = ()  # weight x feature: what moved the section, for its reasons

    @property
    def section_id(self) -> int:
        return self.facts.section_id


@dataclass(frozen=True)
class Model:
    """A linear scorer; `weights` align with `features` by name."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def ignores_semantic(self) -> bool:
        return not any(w for name, w in zip(self.features, self.weights) if name in SEMANTIC_FEATURES)

    def to_json(self) -> dict:
        return {"features": list(self.features), "weights": [round(w, 6) for w in self.weights], **self.meta}

    @classmethod
    def from_json(cls, data: dict, names: tuple[str, ...] = FEATURES) -> "Model":
        named = dict(zip(data["features"], data["weights"]))
        unknown = set(named) - set(names)
        if unknown:
            raise ValueError(f"ranker weights name unknown features: {', '.join(sorted(unknown))}")
        # A feature added since the weights were fitted counts for nothing until the next fit.
        meta = {k: v for k, v in data.items() if k not in ("features", "weights")}
        return cls(names, tuple(float(named.get(name, 0.0)) for name in names), meta)


@dataclass(frozen=True)
class Cascade:
    """Two linear models in turn. `first` orders every candidate; `head` re-orders the first's
    HEAD_CANDIDATES best, with the first's score as one more feature (FIRST_STAGE). Fitted on
    those near misses alone, the head model learns what tells the answer from its neighbours
    (a heading about another action or policy type) where the first must mostly push the
    hundreds of unrelated candidates down."""

    first: Model
    head: Model

    @property
    def head_weights(self) -> tuple[float, ...]:
        """The head model's weights over FEATURES, the first stage's score expanded into them
        (it is linear in the features too), so each feature's share of a score is exact."""
        named = dict(zip(self.head.features, self.head.weights))
        via_first = named.get(FIRST_STAGE, 0.0)
        return tuple(named.get(name, 0.0) + via_first * w for name, w in zip(FEATURES, self.first.weights))

    def order(self, rows: list[list[float]], ties: list) -> list[tuple[int, float, tuple[float, ...]]]:
        """(row index, score, weight x feature per FEATURES) for every row, best first; `ties`
        orders rows of equal score."""
        first = [tuple(map(mul, self.first.weights, row)) for row in rows]
        scores = [sum(c) for c in first]
        top, rest = first_order(scores, ties)
        weights = self.head_weights
        head = {i: tuple(map(mul, weights, rows[i])) for i in top}
        head_scores = {i: sum(c) for i, c in head.items()}
        # The head stays above the rest whatever the two models' scales (recommend adds its
        # vote adjustment to these scores).
        lift = max(0.0, scores[rest[0]] - min(head_scores.values())) if rest and top else 0.0
        floor = scores[rest[0]] if rest else -math.inf  # a + (b - a) can fall an ulp short of b
        top.sort(key=lambda i: (-head_scores[i], ties[i]))
        return [(i, max(head_scores[i] + lift, floor), head[i]) for i in top] + [(i, scores[i], first[i]) for i in rest]

    def ignores_semantic(self) -> bool:
        return self.first.ignores_semantic() and self.head.ignores_semantic()

    def to_json(self) -> dict:
        return {"first": self.first.to_json(), "head": self.head.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> "Cascade":
        return cls(Model.from_json(data["first"]), Model.from_json(data["head"], HEAD_FEATURES))


def first_order(scores: list[float], ties) -> tuple[list[int], list[int]]:
    """Row indexes by the first model's scores, best first (`ties` orders equal scores), split
    into the HEAD_CANDIDATES the head model re-orders and the rest."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], ties[i]))
    return order[:HEAD_CANDIDATES], order[HEAD_CANDIDATES:]


@dataclass(frozen=True)
class Ranker:
    """The two fitted cascades ranker.json holds: one for when the semantic stage runs, one
    fitted without its features for when it cannot (model package absent, sections not yet
    embedded); and the adapter fitted with them that moves a query's vector before the
    semantic stage compares it (in a file of its own beside ranker.json)."""

    semantic: Cascade
    lexical: Cascade
    meta: dict = field(default_factory=dict, compare=False, hash=False)
    adapter: semantic.QueryAdapter | None = field(default=None, compare=False, hash=False)

    def cascade(self, semantic: bool) -> Cascade:
        return self.semantic if semantic else self.lexical

    @cached_property
    def fingerprint(self) -> str:
        """The weights and adapter's digest: what names this ranker in a cache key, the same
        in every process that loads them (rankings cached in Redis are shared by the workers)."""
        digest = hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode())
        if self.adapter is not None:
            digest.update(self.adapter.to_sections.tobytes())
            digest.update(self.adapter.to_headings.tobytes())
        return digest.hexdigest()

    def to_json(self) -> dict:
        return {**self.meta, "semantic": self.semantic.to_json(), "lexical": self.lexical.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> "Ranker":
        lexical = Cascade.from_json(data["lexical"])
        if not lexical.ignores_semantic():
            raise ValueError("ranker weights: the lexical model gives weight to semantic features")
        meta = {k: v for k, v in data.items() if k not in ("semantic", "lexical", "adapter")}
        return cls(Cascade.from_json(data["semantic"]), lexical, meta)

    def save(self, path: Path) -> None:
        """Write the weights to `path` and the adapter beside it, named in the weights with its model."""
        data = self.to_json()
        if self.adapter is not None:
            matrices = path.with_name(f"{path.stem}-adapter.npy")
            self.adapter.save(matrices)
            data["adapter"] = {"file": matrices.name, "model": semantic.MODEL_ID}
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "Ranker":
        data = json.loads(path.read_text(encoding="utf-8"))
        ranker = cls.from_json(data)
        about = data.get("adapter")
        if not about:
            return ranker
        if about.get("model") != semantic.MODEL_ID:
            # Fitted on another model's vectors: it would move queries anywhere.
            logger.warning("the query adapter was fitted for %s, not %s: not used",
                           about.get("model"), semantic.MODEL_ID)
            return ranker
        return replace(ranker, adapter=semantic.QueryAdapter.load(path.with_name(about["file"])))


@cache
def shipped_ranker() -> Ranker:
    """The weights in ranker.json (loaded once per process, at start-up by KbConfig.ready)."""
    return Ranker.load(WEIGHTS_FILE)


_override: list[Ranker] = []


@contextmanager
def using(ranker: Ranker) -> Iterator[None]:
    """Rank with `ranker` instead of the shipped weights inside the block (to measure a fit)."""
    _override.append(ranker)
    try:
        yield
    finally:
        _override.pop()


def current_ranker() -> Ranker:
    return _override[-1] if _override else shipped_ranker()


def specific_values(query: AnalysedQuery) -> set[str]:
    by_kind = query.entities.by_kind()
    return {f"{kind}:{value}" for kind in SPECIFIC for value in by_kind[kind]}


def candidates(query: AnalysedQuery, *, guide: str = "", use_semantic: bool = True,
               adapter: semantic.QueryAdapter | None = None) -> tuple[list[Scored], bool]:
    """Every candidate section for the query, with its feature vector (unscored, unordered),
    and whether the semantic stage ran (its features are all 0 when it did not)."""
    use_semantic = use_semantic and (query.is_error or len(query.terms) > KEYWORD_TERMS)
    vector = semantic.embed_query(query.cleaned, adapter) if use_semantic else None
    lexical = get_engine().search(query.terms, query.phrases, guide=guide, limit=LEXICAL_CANDIDATES)
    specific = specific_values(query)
    by_entity = entity_lookup(specific, guide=guide)
    relating = SectionFeatures(query, specific, set(by_entity))
    # While the query is still being embedded (in the semantic stage's thread), the full-text
    # and entity candidates get the features that relate them to the query alone.
    early = [c.section_id for c in lexical] + by_entity
    rows = {sid: relating.row(f) for sid, f in load_facts(early).items()}
    nearest = vector.nearest(guide=guide, limit=SEMANTIC_CANDIDATES) if vector else []
    by_heading = vector.nearest(guide=guide, limit=HEADING_CANDIDATES, headings=True) if vector else []
    ids = list(dict.fromkeys(early + [n[0] for n in nearest + by_heading]))
    facts = load_facts(ids)
    if not facts:
        return [], False
    top = max((c.score for c in lexical), default=0.0) or 1.0
    lexical_score = {c.section_id: c.score / top for c in lexical}
    lexical_rank = {c.section_id: rank for rank, c in enumerate(lexical)}
    similarity = vector.similarity(ids) if vector else {}
    semantic_score = {sid: body for sid, (body, _) in similarity.items()}
    semantic_rank = {sid: rank for rank, (sid, _) in enumerate(nearest)}
    heading_rank = {sid: rank for rank, (sid, _) in enumerate(by_heading)}
    per_article = Counter(f.article_id for f in facts.values())
    article_best: dict[int, float] = {}
    for sid, value in lexical_score.items():
        if sid in facts:
            article_best[facts[sid].article_id] = max(article_best.get(facts[sid].article_id, 0.0), value)
    semantic_best: dict[int, float] = {}
    for sid, value in semantic_score.items():
        if sid in facts:
            semantic_best[facts[sid].article_id] = max(semantic_best.get(facts[sid].article_id, 0.0), value)
    scored = []
    for sid in ids:
        f = facts.get(sid)
        if f is None:  # removed since the index was read
            continue
        row = rows[sid] if sid in rows else relating.row(f)

        def put(name: str, value: float) -> None:
            row[INDEX[name]] = float(value)

        put("lexical", lexical_score.get(sid, 0.0))
        put("lexical_rank", 1 / (2 + lexical_rank[sid]) if sid in lexical_rank else 0.0)
        put("semantic", semantic_score.get(sid, 0.0))
        put("semantic_rank", 1 / (2 + semantic_rank[sid]) if sid in semantic_rank else 0.0)
        put("article_semantic", semantic_best.get(f.article_id, 0.0))
        put("question_semantic", 0.0 if query.is_error else semantic_score.get(sid, 0.0))
        put("heading_semantic", similarity[sid][1] if sid in similarity else 0.0)
        put("heading_semantic_rank", 1 / (2 + heading_rank[sid]) if sid in heading_rank else 0.0)
        put("article_lexical", article_best.get(f.article_id, 0.0))
        put("article_candidates", math.log1p(per_article[f.article_id] - 1))
        put("contradicted_lexical", row[INDEX["lexical"]] * row[INDEX["contradicts_heading"]])
        scored.append(Scored(f, row))
    return scored, bool(similarity)


class SectionFeatures:
    """The features that relate one section to the query, whatever the other candidates are,
    with what they need from the query worked out once."""

    def __init__(self, query: AnalysedQuery, specific: set[str], entity_ids: set[int]) -> None:
        self.query = query
        self.specific = specific
        self.entity_ids = entity_ids
        self.rarity = term_rarity(query.terms)
        self.stems = {stem(t) for t in query.terms if len(t) > 2}
        self.stats = EntityStats.for_query(query, specific)
        self.operation_words = [name_stems(name) for name in call_names(query)]
        self.code_words = [name_stems(c) for c in query.codes]
        self.policies = {f"policy:{p}" for p in query.entities.policy_types}
        self.by_guide: dict[str, list[tuple[str, float]]] = {}
        self.by_article: dict[int, list[tuple[str, float]]] = {}

    def row(self, f: Facts) -> list[float]:
        """A feature vector with these features set (the others 0)."""
        query, stats, row = self.query, self.stats, [0.0] * len(FEATURES)

        def put(name: str, value: float) -> None:
            row[INDEX[name]] = float(value)

        put("heading_coverage", heading_coverage(self.stems, f.stems))
        put("heading_rarity", heading_rarity(self.rarity, f.stems))
        put("heading_operation_words", words_named(self.operation_words, f.stems))
        put("heading_code_words", words_named(self.code_words, f.stems))
        share, lacking = heading_match(self.stems, f.heading_words)
        put("heading_precision", share)
        put("heading_unmatched", lacking)
        put("troubleshooting_error", query.is_error and f.kind == "troubleshooting")
        put("troubleshooting_article", query.is_error and f.troubleshooting)
        put("top_level", f.level == 1)
        if f.kind != "troubleshooting" and f.kind:
            put(f"kind_{f.kind}", 1)
        named = {zone: 0 for zone in (HEADING, LEAD, BODY)}
        for value in self.specific:
            zone = f.zones.get(value)
            if zone:
                named[zone] += 1
        put("names_entity_heading", min(named[HEADING], 2) / 2)
        put("names_entity_lead", min(named[LEAD], 2) / 2)
        put("names_entity_body", min(named[BODY], 2) / 2)
        put("contradicts_heading", contradicts(query, f.heading))
        put("contradicted_coverage", row[INDEX["heading_coverage"]] * row[INDEX["contradicts_heading"]])
        if self.policies:
            put("policy_match", bool(self.policies & (f.heading | f.lead)))
            put("policy_heading", bool(self.policies & f.heading))
            put("policy_contradiction", _contradicts("policy", query.entities.policy_types, f.heading | f.lead))
            put("policy_contradiction_heading", _contradicts("policy", query.entities.policy_types, f.heading))
        for name, value in self.of_guide(f.guide) + self.of_article(f):
            put(name, value)
        put("entity_candidate", f.section_id in self.entity_ids)
        return row

    def of_guide(self, guide: str) -> list[tuple[str, float]]:
        """The features every candidate of a guide shares, worked out once per query."""
        if guide not in self.by_guide:
            share = self.stats.service_share(guide)
            self.by_guide[guide] = [("service_guide", share),
                                    ("service_elsewhere", bool(self.query.entities.services) and not share),
                                    ("entity_guide", self.stats.entity_share(guide))]
        return self.by_guide[guide]

    def of_article(self, f: Facts) -> list[tuple[str, float]]:
        """The features every candidate of an article shares, worked out once per query."""
        if f.article_id not in self.by_article:
            share, lacking = heading_match(self.stems, f.article_words)
            self.by_article[f.article_id] = [("article_precision", share), ("article_unmatched", lacking),
                                             ("entity_article", self.stats.article_share(f.article_id))]
        return self.by_article[f.article_id]


def rank(query: AnalysedQuery, *, guide: str = "") -> list[Scored]:
    """Candidates scored by the cascade that fits the stages that ran, best first."""
    ranker = current_ranker()
    scored, semantic_ran = candidates(query, guide=guide, adapter=ranker.adapter)
    ordered = ranker.cascade(semantic_ran).order([s.features for s in scored], [s.section_id for s in scored])
    for i, score, contributions in ordered:
        scored[i].score, scored[i].contributions = score, contributions
    return [scored[i] for i, _, _ in ordered]


def entity_lookup(values: set[str], *, guide: str = "") -> list[int]:
    """Sections whose heading or first words name one of `values`, rarest value first."""
    if not values:
        return []
    known = corpus()
    hits = [(sid, value, zone) for value in values for sid, zone in known.about.get(value, ())
            if not guide or known.sections[sid].guide == guide]
    frequency = Counter(value for _, value, _ in hits)
    best: dict[int, tuple] = {}
    for sid, value, zone in hits:
        key = (zone != HEADING, frequency[value])
        best[sid] = min(best.get(sid, key), key)
    return sorted(best, key=lambda sid: (best[sid], sid))[:ENTITY_CANDIDATES]


@dataclass
class EntityStats:
    """Where the corpus documents the paste's entities: shares per guide, and which articles."""

    services: list[dict[str, float]]
    specific: list[dict[str, float]]
    articles: list[tuple[Counter, int]]  # per specific value the corpus names: sections per article, and in all

    @classmethod
    def for_query(cls, query: AnalysedQuery, specific: set[str]) -> "EntityStats":
        known = corpus()
        table = known.guides
        services = [table[f"service:{s}"] for s in query.entities.services if f"service:{s}" in table]
        # In a fixed order: summed in set order, the shares would differ in their last bits from
        # one process to the next (string hashing is seeded per process), and so could near ties.
        ordered = sorted(specific)
        found = [table[v] for v in ordered if v in table]
        counts = [known.articles[v] for v in ordered if v in known.articles]
        return cls(services, found, [(c, sum(c.values())) for c in counts])

    def article_share(self, article_id: int) -> float:
        """The mean share of the corpus's mentions of the paste's entities that are in the article."""
        if not self.articles:
            return 0.0
        return sum(c[article_id] / total for c, total in self.articles) / len(self.articles)

    def service_share(self, guide: str) -> float:
        return max((shares.get(guide, 0.0) for shares in self.services), default=0.0)

    def entity_share(self, guide: str) -> float:
        if not self.specific:
            return 0.0
        return sum(shares.get(guide, 0.0) for shares in self.specific) / len(self.specific)


def contradicts(query: AnalysedQuery, named: frozenset[str]) -> bool:
    """The section's heading (`named`: the typed values it names) names an action, operation or
    code of a kind the paste names too, but none of the paste's: it is about another call or error."""
    if not named:
        return False
    by_kind = query.entities.by_kind()
    return any(_contradicts(kind, by_kind[kind], named) for kind in SPECIFIC)


def _contradicts(kind: str, values: list[str], named: frozenset[str]) -> bool:
    mine = {f"{kind}:{v}" for v in values}
    theirs = {v for v in named if v.startswith(kind + ":")}
    return bool(mine and theirs and not theirs & mine)


def term_rarity(terms: list[str]) -> dict[str, float]:
    """Each query term's stem -> its inverse document frequency (from the engine's cached counts)."""
    frequency = get_engine().document_frequencies(["", *terms])
    total = max(frequency.get("", 0), 1)
    rarity: dict[str, float] = {}
    for term in terms:
        if len(term) > 2 and frequency.get(term):
            key = stem(term)
            rarity[key] = max(rarity.get(key, 0.0), math.log(total / frequency[term]))
    return rarity


def heading_rarity(rarity: dict[str, float], stems: frozenset[str]) -> float:
    """Share of the query's rarity (summed IDF) that the heading's words carry."""
    total = sum(rarity.values())
    if not total:
        return 0.0
    return sum(value for word, value in rarity.items() if word in stems) / total


def heading_coverage(query_stems: set[str], heading_stems: frozenset[str]) -> float:
    """Share of the query's words (up to HEADING_COVERAGE_TERMS) that the heading contains."""
    if not query_stems:
        return 0.0
    shared = query_stems & heading_stems
    return len(shared) / min(len(query_stems), HEADING_COVERAGE_TERMS)


def heading_match(query_stems: set[str], words: Words) -> tuple[float, float]:
    """How much of a heading the query accounts for: the share of its words' rarity that the
    query's words carry, and the rarity of those it lacks (up to UNMATCHED_RARITY, as a share of it).
    "Troubleshooting SAML federation" shares "troubleshooting" with many pastes, but only one
    about SAML accounts for it; a heading about what the paste never mentions is about something else."""
    matched = unmatched = 0.0
    for word, rarity in words:
        if word in query_stems:
            matched += rarity
        else:
            unmatched += rarity
    total = matched + unmatched
    return (matched / total if total else 0.0), min(unmatched, UNMATCHED_RARITY) / UNMATCHED_RARITY


def call_names(query: AnalysedQuery) -> list[str]:
    """The API calls the paste names, as written: its actions' names and its operations."""
    return [a.split(":", 1)[1] for a in query.actions] + query.operations


def name_stems(name: str) -> frozenset[str]:
    """The stems of the words a CamelCase name is made of (AssumeRoleWithSAML -> assum, role, saml;
    KMS.NotFoundException -> not, found)."""
    words = (w.lower() for w in split_camel(name.rsplit(".", 1)[-1].removesuffix("Exception")))
    return frozenset(stem(w) for w in words if len(w) > 2 and not w.isdigit() and w not in FUNCTION_WORDS)


def words_named(names: list[frozenset[str]], heading_stems: frozenset[str]) -> bool:
    """Whether the heading spells out one of the names in words ("I can't assume a role" spells
    AssumeRole): headings name calls and errors in words more often than verbatim."""
    return any(words and words <= heading_stems for words in names)
