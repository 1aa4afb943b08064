"""Scoring rankings against a labelled error set (../shared/eval), for the benchmark and the floor test.

Scores follow shared/eval/README.md: a case is a pasted error or question with gold
sections (guide, file, anchor); section-level and article-level Recall@1/3 and MRR@10.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from kb.models import Section

Key = tuple[str, str, str]


def load_cases(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def section_keys(sections: Iterable[Section]) -> list[Key]:
    return [(s.article.guide.slug, s.article.source_path, s.anchor) for s in sections]


def run(cases: list[dict], rank: Callable[[str], list[Section]]) -> dict[str, list[Key]]:
    """Each case's ranking: `rank` maps the pasted text to sections, best first."""
    return {case["id"]: section_keys(rank(case["query"])) for case in cases}


def first_hit(keys: list, gold: set, k: int = 10) -> int | None:
    return next((rank for rank, key in enumerate(keys[:k], 1) if key in gold), None)


def score(cases: list[dict], ranking: dict[str, list[Key]]) -> dict[str, dict[str, float]]:
    out = {}
    for level in ("section", "article"):
        r1 = r3 = mrr = 0.0
        for case in cases:
            ranked = ranking.get(case["id"], [])
            if level == "section":
                gold = {(g["guide"], g["file"], g["anchor"]) for g in case["gold"]}
                keys = [tuple(key) for key in ranked]
            else:
                gold = {(g["guide"], g["file"]) for g in case["gold"]}
                keys = list(dict.fromkeys((key[0], key[1]) for key in ranked))
            rank = first_hit(keys, gold)
            r1 += rank == 1
            r3 += rank is not None and rank <= 3
            mrr += 1 / rank if rank else 0
        n = len(cases) or 1
        out[level] = {"R@1": r1 / n, "R@3": r3 / n, "MRR@10": mrr / n}
    return out


def misses(cases: list[dict], ranking: dict[str, list[Key]], k: int = 3) -> list[tuple[dict, list[Key]]]:
    """Cases with no gold section in the first `k` results, with those results."""
    found = []
    for case in cases:
        gold = {(g["guide"], g["file"], g["anchor"]) for g in case["gold"]}
        top = [tuple(key) for key in ranking.get(case["id"], [])[:k]]
        if not gold & set(top):
            found.append((case, top))
    return found
