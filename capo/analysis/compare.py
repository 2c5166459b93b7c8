"""A study's comparisons from pair-level scores (pure; the lab's report service feeds it).

An *arm* is one setting of a study's factors other than the seed (``capo``,
``capo, alpha=2``…); an arm's runs differ only in their training seed. A pair's
*outcome* is the paper's reward-accuracy test, lw > ll. Δr = lw − ll; the base
model's Δr₀ = lw₀ − ll₀ comes from the base scores every run stores.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from capo.analysis.regimes import regime_from_gradients
from capo.analysis.stats import (
    Correlation,
    Interval,
    bootstrap_ci,
    mcnemar_exact,
    paired_difference_ci,
    pearson,
)

ALL = "all"


@dataclass(frozen=True)
class ScoredPair:
    pair_id: int
    direction: str
    lw: float
    ll: float
    lw0: float | None
    ll0: float | None
    dl_dlw: float
    dl_dll: float

    @property
    def correct(self) -> bool:
        return self.lw > self.ll

    @property
    def delta(self) -> float:
        return self.lw - self.ll

    @property
    def base_delta(self) -> float | None:
        return None if self.lw0 is None or self.ll0 is None else self.lw0 - self.ll0


@dataclass(frozen=True)
class ArmScores:
    """One run's pairs at the reported step."""

    arm: str
    seed: int
    run_id: int
    step: int
    pairs: tuple[ScoredPair, ...]


@dataclass(frozen=True)
class AccuracyCell:
    arm: str
    direction: str
    interval: Interval


@dataclass(frozen=True)
class Comparison:
    arm_a: str
    arm_b: str
    direction: str
    difference: Interval  # mean over (seed, pair) of correct_a − correct_b
    only_a: int
    only_b: int
    p_value: float
    test: str


@dataclass(frozen=True)
class RegimeShare:
    arm: str
    direction: str
    at: str  # "base" (step 0 of the same runs) or "trained"
    chosen_down: float
    rejected_up: float
    toward_rejected: float
    n: int


def _by_direction(pairs: Sequence[ScoredPair]) -> dict[str, list[ScoredPair]]:
    groups: dict[str, list[ScoredPair]] = defaultdict(list)
    for p in pairs:
        groups[p.direction].append(p)
    groups[ALL] = list(pairs)
    return groups


def directions_of(runs: Sequence[ArmScores]) -> list[str]:
    return sorted({p.direction for r in runs for p in r.pairs}) + [ALL]


def arms_of(runs: Sequence[ArmScores]) -> list[str]:
    return list(dict.fromkeys(r.arm for r in runs))


def _outcomes(runs: Sequence[ArmScores], arm: str, direction: str) -> list[list[float]]:
    """Per seed (sorted), the 0/1 outcomes of the direction's pairs in pair-id order."""
    seeds = sorted((r for r in runs if r.arm == arm), key=lambda r: r.seed)
    return [
        [float(p.correct) for p in sorted(_by_direction(r.pairs).get(direction, []), key=lambda p: p.pair_id)]
        for r in seeds
    ]


def accuracy_table(runs: Sequence[ArmScores], resamples: int = 10_000) -> list[AccuracyCell]:
    """Reward accuracy per arm and direction (and ``all``), with a 95 % bootstrap interval."""
    cells = []
    for arm in arms_of(runs):
        for direction in directions_of(runs):
            outcomes = _outcomes(runs, arm, direction)
            if any(outcomes):
                cells.append(AccuracyCell(arm, direction, bootstrap_ci(outcomes, resamples=resamples)))
    return cells


def compare(runs: Sequence[ArmScores], arm_a: str, arm_b: str, resamples: int = 10_000) -> list[Comparison]:
    """arm_a − arm_b per direction on the same pairs (seed-matched): interval and exact McNemar p."""
    rows = []
    for direction in directions_of(runs):
        a = [x for seed in _outcomes(runs, arm_a, direction) for x in seed]
        b = [x for seed in _outcomes(runs, arm_b, direction) for x in seed]
        if not a or len(a) != len(b):
            continue
        test = mcnemar_exact([x > 0 for x in a], [x > 0 for x in b])
        diff = paired_difference_ci(a, b, resamples=resamples)
        rows.append(
            Comparison(arm_a, arm_b, direction, diff, test.only_a, test.only_b, test.p_value, test.test)
        )
    return rows


def _shares(pairs: Sequence[ScoredPair]) -> tuple[float, float, float]:
    regimes = [regime_from_gradients(p.dl_dlw, p.dl_dll) for p in pairs]
    n = len(regimes)
    return (
        sum(r.chosen_pushed_down for r in regimes) / n,
        sum(r.rejected_pushed_up for r in regimes) / n,
        sum(r.toward_rejected for r in regimes) / n,
    )


def regime_table(base: Sequence[ArmScores], trained: Sequence[ArmScores]) -> list[RegimeShare]:
    """Shares of pairs in each gradient regime, per arm and direction, at step 0 and at the reported step."""
    rows = []
    for at, runs in (("base", base), ("trained", trained)):
        for arm in arms_of(runs):
            pairs = [p for r in runs if r.arm == arm for p in r.pairs]
            for direction, group in sorted(_by_direction(pairs).items()):
                rows.append(RegimeShare(arm, direction, at, *_shares(group), len(group)))
    return rows


@dataclass(frozen=True)
class ShiftCorrelation:
    """Per direction: MT-vs-post-edit BLEU against the shift in mean Δr of arm_a over arm_b (paper Fig. 7).

    The paper correlates BLEU with "the difference in KDE-weighted means"; for a symmetric kernel
    the mean of a KDE is the sample mean, so the shift is the difference of sample means of Δr."""

    arm_a: str
    arm_b: str
    directions: tuple[str, ...]
    bleu: tuple[float, ...]
    shift: tuple[float, ...]
    correlation: Correlation | None


def mean_delta(runs: Sequence[ArmScores], arm: str, direction: str) -> float | None:
    values = [p.delta for r in runs if r.arm == arm for p in r.pairs if p.direction == direction]
    return float(np.mean(values)) if values else None


def shift_correlation(
    runs: Sequence[ArmScores], arm_a: str, arm_b: str, bleu_by_direction: dict[str, float]
) -> ShiftCorrelation:
    directions, bleu, shift = [], [], []
    for d in directions_of(runs)[:-1]:
        a, b = mean_delta(runs, arm_a, d), mean_delta(runs, arm_b, d)
        if a is not None and b is not None and d in bleu_by_direction:
            directions.append(d)
            bleu.append(bleu_by_direction[d])
            shift.append(a - b)
    correlation = pearson(bleu, shift) if len(directions) >= 3 else None
    return ShiftCorrelation(arm_a, arm_b, tuple(directions), tuple(bleu), tuple(shift), correlation)


@dataclass(frozen=True)
class RegimeAccuracy:
    """Pairs in a regime at the start (step 0), and their reward accuracy then and at the reported step."""

    arm: str
    direction: str
    regime: str  # chosen_down | rejected_up | toward_rejected | none
    n: int
    accuracy_base: float
    accuracy_trained: float


def _regime_name(p: ScoredPair) -> list[str]:
    regime = regime_from_gradients(p.dl_dlw, p.dl_dll)
    flags = {
        "chosen_down": regime.chosen_pushed_down,
        "rejected_up": regime.rejected_pushed_up,
        "toward_rejected": regime.toward_rejected,
    }
    return [name for name, on in flags.items() if on] or ["none"]


def regime_accuracy(base: Sequence[ArmScores], trained: Sequence[ArmScores]) -> list[RegimeAccuracy]:
    """Accuracy change within each starting regime, per arm and direction (runs matched by run id)."""
    start = {(r.run_id, p.pair_id): p for r in base for p in r.pairs}
    groups: dict[tuple[str, str, str], list[tuple[bool, bool]]] = defaultdict(list)
    for run in trained:
        for p in run.pairs:
            before = start.get((run.run_id, p.pair_id))
            if before is None:
                continue
            for name in _regime_name(before):
                for direction in (p.direction, ALL):
                    groups[(run.arm, direction, name)].append((before.correct, p.correct))
    return [
        RegimeAccuracy(arm, d, name, len(v), sum(a for a, _ in v) / len(v), sum(b for _, b in v) / len(v))
        for (arm, d, name), v in sorted(groups.items())
    ]
