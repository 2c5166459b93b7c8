"""A study's benchmark results, one section per suite: arms compared on the same items (pure).

Inputs are per-item scores of each run's benchmark job (``ArmItems``): the run's arm (one setting of
the study's factors other than the training seed) and seed, its adapter's scores per metric, and the
judge's outcome of its adapter against the base per item; the base model is its own arm (seed None).

- **Unit.** The item (an M-IFEval prompt, an XLSum article, an MT-Bench question). Training seeds are
  matched by value between arms, as for reward accuracy (``capo.analysis.compare``); the base matches
  every seed. An item enters once, as the mean of its scores over the matched seeds, and only items
  scored under every matched seed of both arms are compared (the others are counted as missing).
- **Scores** (``capo.benchmarks.paired``): each arm's mean per language and overall with a 95 %
  interval (Clopper–Pearson on the item means mapped to [0, 1]); each pair of arms: the difference with
  Tango's interval, the exact sign test, Holm within the primary family (all languages, every pair of
  arms) and within the per-language family, and the smallest detectable difference.
- **Judge** (XLSum, each arm's adapter against the base): an item is judged when every seed's verdict
  is; the others are counted as unjudged, never as wins or losses. A verdict that flips with the order
  of the answers is a tie and counts as inconsistent; the inconsistency rate is over judged verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from capo.analysis.stats import (
    Interval,
    holm,
    paired_difference_interval,
    proportion_interval,
    sign_flip_test,
)
from capo.benchmarks.paired import ALL, ArmComparison, WinComparison, compare_scores, detectable_difference

Key = tuple[str, str]  # (language, item id)
BASE = "base"
PRIMARY, PER_LANGUAGE = "primary (all languages)", "per language"
UNIT = "the item: each item enters once, as the mean of its scores over the matched training seeds"


@dataclass(frozen=True)
class ArmItems:
    """One run's (or the base model's) per-item results in one suite."""

    arm: str
    seed: int | None  # the run's training seed; None for the base model
    scores: Mapping[str, Mapping[Key, float]]  # metric → item → score
    verdicts: Mapping[Key, tuple[str, bool]] = field(default_factory=dict)  # item → (outcome, inconsistent)


@dataclass(frozen=True)
class ScoreCell:
    arm: str
    metric: str
    language: str
    interval: Interval  # the mean on the metric's scale, n items × seeds


@dataclass(frozen=True)
class JudgeRow:
    """An arm's adapter against the base by the judge, in one language (or ``all``)."""

    arm: str
    language: str
    comparison: WinComparison | None  # None when no item was judged
    ties: int
    unjudged: int
    inconsistent: int  # judged verdicts (item × seed) that flipped with the order
    verdicts: int  # judged verdicts (item × seed)
    inconsistency_rate: float | None = None  # inconsistent / verdicts; None when nothing was judged


@dataclass(frozen=True)
class SuiteSection:
    suite: str
    unit: str
    arms: list[str]
    cells: list[ScoreCell]
    comparisons: list[ArmComparison]  # p_holm within PRIMARY ("all") or PER_LANGUAGE
    judge: list[JudgeRow]
    jobs: list[str] = field(default_factory=list)  # which job each run's results come from
    notes: list[str] = field(default_factory=list)


def _seeds(runs: Sequence[ArmItems], arm: str) -> dict[int | None, ArmItems]:
    return {r.seed: r for r in runs if r.arm == arm}


def _matched(a: dict, b: dict) -> list[tuple]:
    """(seed of a, seed of b) pairs: by value; the base (None) matches every seed of the other arm."""
    if None in a or None in b:
        return [(sa, sb) for sa in a for sb in b]
    return [(s, s) for s in sorted(set(a) & set(b), key=str)]


def _by_seed(runs: dict, seeds: Sequence, metric: str) -> dict[Key, list[float]]:
    """item → its score under each of ``seeds``, for items scored under all of them."""
    tables = [runs[s].scores.get(metric, {}) for s in seeds]
    shared = set.intersection(*(set(t) for t in tables)) if tables else set()
    return {k: [t[k] for t in tables] for k in shared}


def arm_cells(runs: Sequence[ArmItems], metric: str, low: float, high: float) -> list[ScoreCell]:
    """Each arm's mean per language and overall, with its interval, items scored under every seed."""
    cells = []
    for arm in dict.fromkeys(r.arm for r in runs):
        seeds = _seeds(runs, arm)
        items = _by_seed(seeds, list(seeds), metric)
        for language in sorted({k[0] for k in items}) + [ALL]:
            keys = sorted(k for k in items if language in (ALL, k[0]))
            if keys:
                table = (np.array([items[k] for k in keys], dtype=float).T - low) / (high - low)
                i = proportion_interval(table)
                span = high - low
                scaled = Interval(
                    low + i.estimate * span, low + i.low * span, low + i.high * span, i.n, i.seeds
                )
                cells.append(ScoreCell(arm, metric, language, scaled))
    return cells


def compare_arms(
    suite: str, runs: Sequence[ArmItems], metric: str, low: float, high: float
) -> list[ArmComparison]:
    """Every pair of arms (the base last) on the same items, seeds matched; raw p-values in p_holm."""
    arms = [a for a in dict.fromkeys(r.arm for r in runs) if a != BASE]
    arms += [BASE] if any(r.arm == BASE for r in runs) else []
    rows = []
    for i, arm_a in enumerate(arms):
        for arm_b in arms[i + 1 :]:
            a, b = _seeds(runs, arm_a), _seeds(runs, arm_b)
            pairs = _matched(a, b)
            if pairs:
                by_a = _by_seed(a, [sa for sa, _ in pairs], metric)
                by_b = _by_seed(b, [sb for _, sb in pairs], metric)
                rows += compare_scores(suite, metric, (arm_a, arm_b), by_a, by_b, low, high)
    return rows


def holm_families(rows: Sequence[ArmComparison]) -> list[ArmComparison]:
    """Holm within the primary family (every ``all`` row) and within the per-language rows."""
    adjusted: dict[int, float] = {}
    for primary in (True, False):
        members = [i for i, r in enumerate(rows) if (r.language == ALL) == primary]
        adjusted.update(zip(members, holm([rows[i].p_value for i in members]), strict=True))
    return [replace(r, p_holm=adjusted[i]) for i, r in enumerate(rows)]


def _judged(seeds: dict, language: str) -> tuple[dict[Key, list[tuple[str, bool]]], int]:
    """(item → each seed's verdict, for items judged under every seed; items left unjudged)."""
    keys = {k for r in seeds.values() for k in r.verdicts if language in (ALL, k[0])}
    judged = {
        k: [r.verdicts[k] for r in seeds.values()]
        for k in keys
        if all(k in r.verdicts and r.verdicts[k][0] != "unjudged" for r in seeds.values())
    }
    return judged, len(keys) - len(judged)


def _judge_row(arm: str, seeds: dict, language: str) -> JudgeRow:
    judged, unjudged = _judged(seeds, language)
    verdicts = [v for vs in judged.values() for v in vs]
    flipped = sum(inconsistent for _, inconsistent in verdicts)
    return JudgeRow(
        arm, language, _seed_means(judged, language), sum(o == "tie" for o, _ in verdicts), unjudged, flipped,
        len(verdicts), flipped / len(verdicts) if verdicts else None,
    )  # fmt: skip


def judge_rows(runs: Sequence[ArmItems]) -> list[JudgeRow]:
    """Each adapter arm against the base: wins, ties, losses, unjudged and inconsistency per language."""
    rows = []
    for arm in dict.fromkeys(r.arm for r in runs if r.arm != BASE and r.verdicts):
        seeds = _seeds(runs, arm)
        languages = sorted({k[0] for r in seeds.values() for k in r.verdicts}) + [ALL]
        rows += [_judge_row(arm, seeds, language) for language in languages]
    return _holm_judge(rows)


def _seed_means(judged: dict[Key, list[tuple[str, bool]]], language: str) -> WinComparison | None:
    """Wins against losses on item seed means: A_i = share of seeds the arm won item i, B_i = share it
    lost; ties are 0 in both (``compare_verdicts``' method, with seeds)."""
    if not judged:
        return None
    keys = sorted(judged)
    won = np.array([[o == "a" for o, _ in judged[k]] for k in keys], dtype=float).T
    lost = np.array([[o == "b" for o, _ in judged[k]] for k in keys], dtype=float).T
    test = sign_flip_test(won, lost)
    return WinComparison(
        language, len(keys), proportion_interval(won), paired_difference_interval(won, lost),
        test.only_a, test.only_b, test.p_value, mde=detectable_difference(won, lost),
    )  # fmt: skip


def _holm_judge(rows: list[JudgeRow]) -> list[JudgeRow]:
    """Holm over each arm's languages; ``all`` is its own family (as in ``compare_verdicts``)."""
    out = list(rows)
    for arm in dict.fromkeys(r.arm for r in rows):
        members = [i for i, r in enumerate(rows) if r.arm == arm and r.comparison and r.language != ALL]
        adjusted = holm([rows[i].comparison.p_value for i in members])
        for i, p in zip(members, adjusted, strict=True):
            out[i] = replace(rows[i], comparison=replace(rows[i].comparison, p_holm=p))
    return [
        replace(r, comparison=replace(r.comparison, p_holm=r.comparison.p_value))
        if r.language == ALL and r.comparison
        else r
        for r in out
    ]


def suite_section(
    suite: str,
    runs: Sequence[ArmItems],
    metrics: Sequence[tuple[str, float, float]],
    jobs: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> SuiteSection:
    """The suite's section: cells, comparisons (Holm within the section's families) and judge rows."""
    cells = [c for name, low, high in metrics for c in arm_cells(runs, name, low, high)]
    rows = [r for name, low, high in metrics for r in compare_arms(suite, runs, name, low, high)]
    return SuiteSection(
        suite, UNIT, list(dict.fromkeys(r.arm for r in runs)), cells, holm_families(rows),
        judge_rows(runs), list(jobs), list(notes),
    )  # fmt: skip
