"""Fitting the ranker's weights on judged cases, and measuring them honestly.

A judged case is a text with graded sections (2: the answer, 1: helps, 0: not this). They
come from evaluation files (../shared/eval's format) and from the help desk's own work:
a case resolved with a section, "This fixed it" and "Not this" votes. Each of the cascade's
two models is a pairwise logistic regression (each better-graded candidate should outscore
each worse one), fitted with numpy: the first on all candidates, the head on the first's
best few; `cross_validate()` ranks every case with weights fitted without it. A query
adapter (kb.search.semantic.QueryAdapter), fitted on the same cases, moves a paste's vector
toward the sections that answered pastes like it before the semantic stage compares it.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from kb.models import Case, Feedback, Section

from . import semantic
from .query import analyse
from .ranking import (
    FEATURES, HEAD_FEATURES, INDEX, SEMANTIC_FEATURES, Cascade, Model, Ranker, Scored, candidates,
    first_order,
)
from .results import limit_per_article

Key = tuple[str, str, str]  # (guide, article slug, anchor)
T = TypeVar("T")
# The cascades' pull toward zero weights. Since the query adapter, the similarity features
# carry much of a score; a stronger pull spreads it over the features that say why a section
# fits (mean of four 5-fold splits: 0.3 -> 3 gave nDCG@5 +.01 on both databases, S@1 +.02 on
# PostgreSQL; 1 and 10 did no better).
L2 = 3.0
STEPS = 600
FOLDS = 5
# The query adapter's fit (fit_adapter): chosen by nested cross-validation on the shared cases
# for the sections' matrix; the headings' matrix shares them (not selected on its own).
ADAPTER_L2 = 0.03
ADAPTER_STEPS = 50
ADAPTER_RATE = 1e-3
TEMPERATURE = 20.0  # sharpens the softmax over cosine similarities


@dataclass
class Judged:
    id: str
    text: str
    grades: dict[Key, int] = field(default_factory=dict)
    source: str = "eval"


@dataclass
class Featurised:
    case: Judged
    keys: list[Key]
    matrix: np.ndarray  # one row of FEATURES per candidate
    semantic_ran: bool = True  # else ranking takes the lexical cascade (a typed topic skips the stage)

    @property
    def id(self) -> str:
        return self.case.id

    @property
    def grades(self) -> np.ndarray:
        return np.array([self.case.grades.get(key, 0) for key in self.keys], dtype=float)


def load_judged(cases: Path, qrels: Path | None = None) -> list[Judged]:
    """Cases from an evaluation file; graded judgments (qrels) when given, else each case's gold labels."""
    judged = []
    with cases.open(encoding="utf-8") as lines:
        for line in filter(str.strip, lines):
            record = json.loads(line)
            grades = {(g["guide"], g["file"].removesuffix(".md"), g["anchor"]): int(g["grade"])
                      for g in record.get("gold", [])}
            judged.append(Judged(record["id"], record["query"], grades))
    if qrels is not None:
        by_id = {case.id: case for case in judged}
        for case in judged:
            case.grades = {}
        with qrels.open(encoding="utf-8") as lines:
            for line in filter(str.strip, lines):
                q = json.loads(line)
                if q["id"] in by_id:
                    by_id[q["id"]].grades[(q["guide"], q["file"].removesuffix(".md"), q["anchor"])] = int(q["grade"])
    return judged


def desk_judged() -> list[Judged]:
    """The help desk's signals as judged cases: per diagnosis, its resolved section and votes."""
    judged: dict[int, Judged] = {}

    def case_for(diagnosis) -> Judged:
        return judged.setdefault(diagnosis.pk, Judged(f"desk-{diagnosis.pk}", diagnosis.error_text, source="desk"))

    for case in Case.objects.filter(status=Case.Status.RESOLVED).exclude(anchor="").select_related("diagnosis"):
        case_for(case.diagnosis).grades[(case.guide_slug, case.article_slug, case.anchor)] = 2
    # One vote per person and section for each error signature, as ranking counts them.
    for vote in Feedback.objects.filter(diagnosis__isnull=False).select_related("diagnosis").one_per_voter():
        grades = case_for(vote.diagnosis).grades
        key = (vote.guide_slug, vote.article_slug, vote.anchor)
        # "Not this" is a 0 unless a resolution or another vote made the section the answer.
        grades[key] = max(grades.get(key, 0), 2 if vote.vote == Feedback.Vote.HELPED else 0)
    return [case for case in judged.values() if any(g == 2 for g in case.grades.values())]


def featurise(cases: Iterable[Judged],
              adapters: Mapping[str, semantic.QueryAdapter | None] | None = None) -> list[Featurised]:
    """Each case's candidates and their feature rows, as ranking sees them with the case's
    query adapter (none when `adapters` has none for it)."""
    out = []
    for case in cases:
        scored, ran = candidates(analyse(case.text), adapter=(adapters or {}).get(case.id))
        matrix = np.array([s.features for s in scored], dtype=float).reshape(len(scored), len(FEATURES))
        out.append(Featurised(case, section_keys(scored), matrix, ran))
    return out


def section_keys(scored: list[Scored]) -> list[Key]:
    keys = {pk: (g, a, anchor) for pk, g, a, anchor in Section.objects.filter(
        pk__in=[s.section_id for s in scored]).values_list("pk", "article__guide__slug", "article__slug", "anchor")}
    return [keys.get(s.section_id, ("", "", "")) for s in scored]


def fit(data: list[Featurised], *, l2: float = L2, steps: int = STEPS, names: tuple[str, ...] = FEATURES) -> Model:
    """Weights under which each case's better-graded candidates outscore its worse ones.

    Each case weighs the same however many pairs it has; features are standardised for the
    fit and the weights mapped back, so the stored model scores raw feature vectors.
    """
    usable = [d for d in data if len(d.keys) and d.grades.max() > 0]
    if not usable:
        raise ValueError("no judged case has a graded section among its candidates")
    rows = np.vstack([d.matrix for d in usable])
    mean, std = rows.mean(axis=0), rows.std(axis=0)
    std[std == 0] = 1.0
    pairs, weights = [], []
    offset = 0
    for d in usable:
        g = d.grades
        better, worse = np.nonzero(g[:, None] > g[None, :])
        if len(better):
            pairs.append(np.stack([better + offset, worse + offset], axis=1))
            weights.append(np.full(len(better), 1.0 / len(better)))
        offset += len(g)
    pair_index = np.vstack(pairs)
    pair_weight = np.concatenate(weights)
    x = (rows - mean) / std
    diff = x[pair_index[:, 0]] - x[pair_index[:, 1]]
    w = np.zeros(x.shape[1])
    # Gradient descent with Nesterov momentum on a smooth, convex loss: plain numpy suffices.
    velocity = np.zeros_like(w)
    rate, momentum, n = 0.5, 0.9, len(usable)
    for _ in range(steps):
        ahead = w + momentum * velocity
        margin = diff @ ahead
        slope = -pair_weight / (1 + np.exp(np.clip(margin, -30, 30)))
        gradient = diff.T @ slope / n + l2 * ahead / n
        velocity = momentum * velocity - rate * gradient
        w = w + velocity
    return Model(names, tuple(float(v) for v in w / std))


def fit_cascade(data: list[Featurised], *, l2: float = L2) -> Cascade:
    """The first model on every candidate, then the head model on the first's best."""
    first = fit(data, l2=l2)
    return Cascade(first, fit([head_of(d, first) for d in data], l2=l2, names=HEAD_FEATURES))


def head_of(d: Featurised, first: Model) -> Featurised:
    """The case's HEAD_CANDIDATES best candidates by the first model, its score a last column."""
    scores = d.matrix @ np.array(first.weights)
    top, _ = first_order(scores.tolist(), range(len(scores)))
    return Featurised(d.case, [d.keys[i] for i in top], np.hstack([d.matrix[top], scores[top, None]]))


def fit_ranker(data: list[Featurised], *, l2: float = L2) -> Ranker:
    """Both cascades: one with the semantic stage's features, one fitted as if it had not run."""
    return Ranker(fit_cascade(data, l2=l2), fit_cascade(without_semantic(data), l2=l2))


def train(cases: list[Judged], *, l2: float = L2, adapters: Adapters | None = None) -> Ranker:
    """The ranker fitted on `cases`: the query adapter on all of them, and the cascades on
    feature rows whose similarities come from adapters fitted without the case's fold, as a
    new paste gets them (an adapter that saw the case would make similarity look surer than it is)."""
    adapters = adapters or Adapters(cases)
    data = featurise(cases, adapters.cross_fitted(cases))
    return replace(fit_ranker(data, l2=l2), adapter=adapters.fit(cases))


def fit_adapter(vectors: np.ndarray, answers: list[list[int]], sections: np.ndarray, headings: np.ndarray, *,
                l2: float = ADAPTER_L2, steps: int = ADAPTER_STEPS) -> semantic.QueryAdapter:
    """The query adapter that moves each query toward its answers (rows of `sections`, and of
    `headings`: the same sections' headings), one matrix for each."""
    return semantic.QueryAdapter(_fit_move(vectors, answers, sections, l2, steps),
                                 _fit_move(vectors, answers, headings, l2, steps))


def _fit_move(vectors: np.ndarray, answers: list[list[int]], targets: np.ndarray, l2: float,
              steps: int) -> np.ndarray:
    """The matrix under which each query's answers (rows of `targets`: one vector per section,
    of its text or of its heading) take the most of a softmax over every row: the other
    sections are the negatives. Adam on the smooth loss, from the identity; few steps and
    an L2 pull keep it near the model. (It moves and normalises as QueryAdapter does, keeping
    the norm the gradient needs.)"""
    matrix = np.zeros((vectors.shape[1], vectors.shape[1]))
    answer = np.zeros((len(vectors), len(targets)), dtype=bool)
    for row, rows in enumerate(answers):
        answer[row, rows] = True
    first, second = np.zeros_like(matrix), np.zeros_like(matrix)
    for step in range(1, steps + 1):
        moved = vectors + vectors @ matrix
        norm = np.linalg.norm(moved, axis=1, keepdims=True)
        unit = moved / norm
        logits = TEMPERATURE * unit @ targets.T
        weight = np.exp(logits - logits.max(axis=1, keepdims=True))
        on_answers = np.where(answer, weight, 0.0)
        slope = (weight / weight.sum(axis=1, keepdims=True)
                 - on_answers / on_answers.sum(axis=1, keepdims=True)) / len(vectors)
        toward = TEMPERATURE * slope @ targets
        gradient = vectors.T @ ((toward - unit * (unit * toward).sum(axis=1, keepdims=True)) / norm) + 2 * l2 * matrix
        first = 0.9 * first + 0.1 * gradient
        second = 0.999 * second + 0.001 * gradient ** 2
        matrix -= ADAPTER_RATE * (first / (1 - 0.9 ** step)) / (np.sqrt(second / (1 - 0.999 ** step)) + 1e-8)
    return matrix


class Adapters:
    """Fitting query adapters on judged cases, with what it needs worked out once: each
    case's query vector and the rows of its grade-2 sections in the semantic index."""

    def __init__(self, cases: list[Judged]) -> None:
        self.vectors: dict[str, np.ndarray] = {}
        self.answers: dict[str, list[int]] = {}
        self.sections = self.headings = np.zeros((0, semantic.DIMENSIONS), dtype=np.float32)
        vectors = semantic.query_vectors([analyse(case.text).cleaned for case in cases])
        if vectors is None:
            return
        index = semantic.load_index()
        self.sections, self.headings = index.matrix, index.headings
        rows = {(g, a, anchor): index.rows[pk] for pk, g, a, anchor in Section.objects.values_list(
            "pk", "article__guide__slug", "article__slug", "anchor") if pk in index.rows}
        for case, vector in zip(cases, vectors):
            answers = [rows[key] for key, grade in case.grades.items() if grade == 2 and key in rows]
            if answers:
                self.vectors[case.id], self.answers[case.id] = vector, answers

    def fit(self, cases: list[Judged]) -> semantic.QueryAdapter | None:
        """An adapter fitted on the cases with an embedded answer; None without any, or while
        the semantic stage is off (KB_SEMANTIC=0), when nothing would use it."""
        ids = [case.id for case in cases if case.id in self.answers]
        if not ids or not semantic.available():
            return None
        return fit_adapter(np.vstack([self.vectors[i] for i in ids]), [self.answers[i] for i in ids],
                           self.sections, self.headings)

    def cross_fitted(self, cases: list[Judged], k: int = FOLDS) -> dict[str, semantic.QueryAdapter | None]:
        """Each case's adapter, fitted on the other k - 1 folds."""
        parts = folds(cases, k)
        fitted = {}
        for i, part in enumerate(parts):
            adapter = self.fit([c for j, other in enumerate(parts) if j != i for c in other])
            fitted.update(dict.fromkeys((case.id for case in part), adapter))
        return fitted


def without_semantic(data: list[Featurised]) -> list[Featurised]:
    """The cases as ranked without the semantic stage: its features 0, and only the candidates
    that full text or the entity lookup found."""
    semantic = [INDEX[name] for name in FEATURES if name in SEMANTIC_FEATURES]
    found = INDEX["lexical_rank"], INDEX["entity_candidate"]
    out = []
    for d in data:
        keep = [i for i in range(len(d.keys)) if any(d.matrix[i, column] > 0 for column in found)]
        matrix = d.matrix[keep].copy()
        matrix[:, semantic] = 0.0
        out.append(Featurised(d.case, [d.keys[i] for i in keep], matrix))
    return out


def folds(items: list[T], k: int = FOLDS, *, seed: int | None = None) -> list[list[T]]:
    """k folds of judged (or featurised) cases, each case in one: spread by id, so the split is
    stable, or shuffled by `seed` (on 120 cases one split's figures move by a few cases:
    several show the spread)."""
    ordered = sorted(items, key=lambda item: item.id)
    if seed is not None:
        random.Random(seed).shuffle(ordered)
    return [ordered[i::k] for i in range(k)]


def cross_validate(cases: list[Judged], extra: list[Judged] | None = None, *, l2: float = L2,
                   k: int = FOLDS, seed: int | None = None, adapters: Adapters | None = None) -> dict[str, list[Key]]:
    """Each case's ranking by a ranker (query adapter and cascades) trained on the other folds
    plus `extra` (never scored), as `train` fits the shipped one: the held-out cases' feature
    rows are worked out again with that fold's adapter."""
    extra = extra or []
    adapters = adapters or Adapters(cases + extra)
    if not adapters.answers:  # no adapter to fit: the feature rows stay as they are
        return cross_validate_rows(featurise(cases), featurise(extra), l2=l2, k=k, seed=seed)
    ranking = {}
    parts = folds(cases, k, seed=seed)
    for i, held_out in enumerate(parts):
        ranker = train([c for j, part in enumerate(parts) if j != i for c in part] + extra, l2=l2, adapters=adapters)
        for d in featurise(held_out, dict.fromkeys((c.id for c in held_out), ranker.adapter)):
            ranking[d.case.id] = ranked_keys(d, ranker.cascade(d.semantic_ran))
    return ranking


def cross_validate_rows(data: list[Featurised], extra: list[Featurised] | None = None, *,
                        l2: float = L2, k: int = FOLDS, seed: int | None = None) -> dict[str, list[Key]]:
    """Each case's ranking by cascades fitted on the other folds' feature rows (plus `extra`,
    never scored), the rows as they are: for rows no adapter moves (without the semantic stage)."""
    ranking = {}
    parts = folds(data, k, seed=seed)
    for i, held_out in enumerate(parts):
        training = [d for j, part in enumerate(parts) if j != i for d in part] + (extra or [])
        cascade = fit_cascade(training, l2=l2)
        for d in held_out:
            ranking[d.case.id] = ranked_keys(d, cascade)
    return ranking


def ranked_keys(d: Featurised, cascade: Cascade) -> list[Key]:
    """The case's candidates in the cascade's order, at most PER_ARTICLE from one article (as search shows them)."""
    order = cascade.order(d.matrix.tolist(), list(range(len(d.keys)))) if len(d.keys) else []
    return limit_per_article((d.keys[i] for i, _, _ in order), lambda key: key[:2])


def metrics(cases: list[Judged], ranking: dict[str, list[Key]]) -> dict[str, float]:
    """The evaluation's figures over `cases`, as ../shared/eval/score.py defines them (top 10 per case):
    S@1, S@3 (a grade-2 section first / in the top 3), H@3 (grade >= 1 in the top 3), nDCG@5
    (gains 0/1/3), MRR@10 of the first grade-2 section, and unjudged@3 (top-3 sections nobody graded)."""
    totals = dict.fromkeys(("S@1", "S@3", "H@3", "nDCG@5", "MRR@10"), 0.0)
    unjudged = 0
    for case in cases:
        keys = ranking.get(case.id, [])[:10]
        grades = [case.grades.get(key, 0) for key in keys]
        unjudged += sum(1 for key in keys[:3] if key not in case.grades)
        totals["S@1"] += bool(grades) and grades[0] == 2
        totals["S@3"] += 2 in grades[:3]
        totals["H@3"] += any(g >= 1 for g in grades[:3])
        first = next((rank for rank, g in enumerate(grades, 1) if g == 2), None)
        totals["MRR@10"] += 1 / first if first else 0
        dcg = sum((2 ** g - 1) / math.log2(i + 2) for i, g in enumerate(grades[:5]))
        ideal = sorted((2 ** g - 1 for g in case.grades.values()), reverse=True)[:5]
        idcg = sum(v / math.log2(i + 2) for i, v in enumerate(ideal))
        totals["nDCG@5"] += dcg / idcg if idcg else 0
    n = max(len(cases), 1)
    return {**{name: value / n for name, value in totals.items()}, "unjudged@3": unjudged}


def candidate_recall(data: list[Featurised]) -> float:
    """Share of cases with a grade-2 section among the candidates the ranker scores: its ceiling."""
    return sum(1 for d in data if len(d.keys) and (d.grades == 2).any()) / max(len(data), 1)


def describe(figures: dict[str, float]) -> str:
    return "  ".join(f"{name} {value:.3f}" if name != "unjudged@3" else f"{name} {value}"
                     for name, value in figures.items())
