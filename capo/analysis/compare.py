"""A study's comparisons from pair-level scores (pure; the lab's report service feeds it).

An *arm* is one setting of a study's factors other than the seed (``capo``,
``capo, alpha=2``…); an arm's runs differ only in their training seed. The *base* arm is
the untrained model: the step-0 scores every run starts from (paper Fig. 5's base bar).

A pair's *outcome* under an endpoint (``ENDPOINTS``; TRL's key names, see
``capo/evaluation.py``) is 1 when the trained model prefers the post-edit, else 0. A tie
(post-edit and MT the same text, decided from text at import) is always 0, explicitly.

The pair is the unit of inference (``capo.analysis.stats``): an arm's outcomes form a
``[seeds, pairs]`` table, seeds are matched by value between arms (a seed one arm lacks is
named, not silently dropped), and each pair enters through its seed mean.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from capo.analysis.regimes import regime
from capo.analysis.stats import (
    Correlation,
    Interval,
    holm,
    minimum_detectable_effect,
    paired_difference_interval,
    pearson,
    proportion_interval,
    sign_flip_test,
)

ALL = "all"
BASE = "base"
ENDPOINTS = ("accuracies", "accuracies_per_token", "accuracies_vs_base")
PRIMARY, PER_DIRECTION = "primary (all directions)", "per direction"


@dataclass(frozen=True)
class ScoredPair:
    pair_id: int
    direction: str
    lw: float
    ll: float
    lw0: float | None  # the base model's (adapters disabled)
    ll0: float | None
    n_chosen: int = 1  # response tokens
    n_rejected: int = 1
    tie: bool = False  # chosen and rejected are the same text

    def correct(self, endpoint: str = "accuracies") -> bool:
        if self.tie:
            return False
        if endpoint == "accuracies":
            return self.lw > self.ll
        if endpoint == "accuracies_per_token":
            return self.lw / self.n_chosen > self.ll / self.n_rejected
        if endpoint == "accuracies_vs_base":
            shift = self.base_shift
            return shift is not None and shift > 0
        raise ValueError(f"unknown endpoint {endpoint!r}; choose from {', '.join(ENDPOINTS)}")

    @property
    def delta(self) -> float:
        return self.lw - self.ll

    @property
    def base_delta(self) -> float | None:
        return None if self.lw0 is None or self.ll0 is None else self.lw0 - self.ll0

    @property
    def base_shift(self) -> float | None:
        """(lw − lw₀) − (ll − ll₀): how far training moved the margin from the base model's."""
        base = self.base_delta
        return None if base is None else self.delta - base


@dataclass(frozen=True)
class ArmScores:
    """One run's pairs at one step; ``seed`` None for the base arm (the same for every seed)."""

    arm: str
    seed: int | None
    run_id: int
    step: int
    pairs: tuple[ScoredPair, ...]
    objective: str = "capo"
    params: Mapping[str, float] = field(default_factory=lambda: {"alpha": 2.0, "beta": 0.1})


def base_arm(step_zero: Sequence[ArmScores]) -> list[ArmScores]:
    """The base arm from the runs' step-0 scores (identical across runs: one base model)."""
    return [replace(step_zero[0], arm=BASE, seed=None)] if step_zero else []


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
    difference: Interval  # mean over pairs of (seed-mean outcome A − seed-mean outcome B)
    only_a: int  # pairs whose seed mean is higher under A
    only_b: int
    p_value: float  # raw
    test: str
    p_holm: float = 1.0  # Holm-adjusted within ``family``
    family: str = PER_DIRECTION
    mde: float = 0.0  # smallest |difference| detectable with 80 % power at α = 0.05
    seeds: tuple[int, ...] = ()  # matched seeds used
    unmatched: tuple[str, ...] = ()  # runs left out because the other arm lacks their seed


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


def _outcomes(runs: Sequence[ArmScores], arm: str, direction: str, endpoint: str) -> dict:
    """seed → {pair id → 0/1} of one arm's pairs in ``direction``."""
    return {
        r.seed: {p.pair_id: float(p.correct(endpoint)) for p in _by_direction(r.pairs).get(direction, [])}
        for r in runs
        if r.arm == arm
    }


def _table(by_seed: dict, seeds: Sequence, pair_ids: Sequence[int]) -> np.ndarray:
    return np.array([[by_seed[s][p] for p in pair_ids] for s in seeds])


def _common_pairs(*tables: dict) -> list[int]:
    sets = [set(pairs) for table in tables for pairs in table.values()]
    return sorted(set.intersection(*sets)) if sets else []


def accuracy_table(runs: Sequence[ArmScores], endpoint: str = "accuracies") -> list[AccuracyCell]:
    """Accuracy per arm and direction (and ``all``): pairs scored under every seed of the arm."""
    cells = []
    for arm in arms_of(runs):
        for direction in directions_of(runs):
            by_seed = _outcomes(runs, arm, direction, endpoint)
            pair_ids = _common_pairs(by_seed)
            if pair_ids:
                table = _table(by_seed, list(by_seed), pair_ids)
                cells.append(AccuracyCell(arm, direction, proportion_interval(table)))
    return cells


def _matched(a: dict, b: dict, arm_a: str, arm_b: str) -> tuple[list, list, tuple[str, ...]]:
    """Seeds of A and B matched by value; the base (seed None) matches every seed."""
    if None in a and None in b:
        return [None], [None], ()
    if None in b:
        return list(a), [None] * len(a), ()
    if None in a:
        return [None] * len(b), list(b), ()
    common = sorted(set(a) & set(b))
    unmatched = [f"{arm_a} seed {s}" for s in sorted(set(a) - set(b))]
    unmatched += [f"{arm_b} seed {s}" for s in sorted(set(b) - set(a))]
    return common, common, tuple(unmatched)


def _compare_one(runs, arm_a: str, arm_b: str, direction: str, endpoint: str) -> Comparison | None:
    a, b = _outcomes(runs, arm_a, direction, endpoint), _outcomes(runs, arm_b, direction, endpoint)
    seeds_a, seeds_b, unmatched = _matched(a, b, arm_a, arm_b)
    if not seeds_a:
        return None
    pair_ids = _common_pairs({s: a[s] for s in seeds_a}, {s: b[s] for s in seeds_b})
    if not pair_ids:
        return None
    ta, tb = _table(a, seeds_a, pair_ids), _table(b, seeds_b, pair_ids)
    test = sign_flip_test(ta, tb)
    second_moment = float(np.mean((ta.mean(axis=0) - tb.mean(axis=0)) ** 2))
    seeds = tuple(s for s in (seeds_a if seeds_a[0] is not None else seeds_b) if s is not None)
    return Comparison(
        arm_a, arm_b, direction, paired_difference_interval(ta, tb), test.only_a, test.only_b,
        test.p_value, test.test, family=PRIMARY if direction == ALL else PER_DIRECTION,
        mde=minimum_detectable_effect(len(pair_ids), second_moment), seeds=seeds, unmatched=unmatched,
    )  # fmt: skip


def compare(
    runs: Sequence[ArmScores], arm_a: str, arm_b: str, endpoint: str = "accuracies"
) -> list[Comparison]:
    """arm_a − arm_b per direction on the same pairs, seeds matched (raw p-values only)."""
    rows = (_compare_one(runs, arm_a, arm_b, d, endpoint) for d in directions_of(runs))
    return [r for r in rows if r is not None]


def compare_all(runs: Sequence[ArmScores], endpoint: str = "accuracies") -> list[Comparison]:
    """Every pair of arms (the base last), each direction, with Holm-adjusted p-values.

    Two families, each adjusted on its own: the primary endpoint (``all`` directions) of every
    pair of arms, and the per-direction comparisons."""
    arms = [a for a in arms_of(runs) if a != BASE] + [a for a in arms_of(runs) if a == BASE]
    rows = [c for i, a in enumerate(arms) for b in arms[i + 1 :] for c in compare(runs, a, b, endpoint)]
    adjusted = {}
    for family in (PRIMARY, PER_DIRECTION):
        members = [i for i, r in enumerate(rows) if r.family == family]
        adjusted.update(zip(members, holm([rows[i].p_value for i in members]), strict=True))
    return [replace(r, p_holm=adjusted[i]) for i, r in enumerate(rows)]


@dataclass(frozen=True)
class RegimeShare:
    arm: str
    direction: str
    at: str  # "base" (step 0 of the same runs) or "trained"
    chosen_down: float
    rejected_up: float
    toward_rejected: float
    n: int


def _regime_of(run: ArmScores, p: ScoredPair):
    return regime(run.objective, p.lw, p.ll, run.params)


def regime_table(base: Sequence[ArmScores], trained: Sequence[ArmScores]) -> list[RegimeShare]:
    """Shares of pairs in each gradient regime (closed form), per arm and direction, at step 0
    and at the reported step; step 0 is read with each arm's own objective."""
    rows = []
    for at, runs in (("base", base), ("trained", trained)):
        for arm in arms_of(runs):
            flags = [(p.direction, _regime_of(r, p)) for r in runs if r.arm == arm for p in r.pairs]
            groups: dict[str, list] = defaultdict(list)
            for direction, g in flags:
                groups[direction].append(g)
                groups[ALL].append(g)
            for direction, gs in sorted(groups.items()):
                n = len(gs)
                rows.append(RegimeShare(
                    arm, direction, at, sum(g.chosen_pushed_down for g in gs) / n,
                    sum(g.rejected_pushed_up for g in gs) / n, sum(g.toward_rejected for g in gs) / n, n,
                ))  # fmt: skip
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
    """Pairs in a regime at the start (step 0), and their accuracy then and at the reported step."""

    arm: str
    direction: str
    regime: str  # chosen_down | rejected_up | toward_rejected | none
    n: int
    accuracy_base: float
    accuracy_trained: float


def _regime_names(run: ArmScores, p: ScoredPair) -> list[str]:
    r = _regime_of(run, p)
    flags = {
        "chosen_down": r.chosen_pushed_down,
        "rejected_up": r.rejected_pushed_up,
        "toward_rejected": r.toward_rejected,
    }
    return [name for name, on in flags.items() if on] or ["none"]


def regime_accuracy(
    base: Sequence[ArmScores], trained: Sequence[ArmScores], endpoint: str = "accuracies"
) -> list[RegimeAccuracy]:
    """Accuracy change within each starting regime, per arm and direction (runs matched by run id)."""
    start = {(r.run_id, p.pair_id): (r, p) for r in base for p in r.pairs}
    groups: dict[tuple[str, str, str], list[tuple[bool, bool]]] = defaultdict(list)
    for run in trained:
        for p in run.pairs:
            found = start.get((run.run_id, p.pair_id))
            if found is None:
                continue
            before_run, before = found
            outcome = (before.correct(endpoint), p.correct(endpoint))
            for name in _regime_names(before_run, before):
                for direction in (p.direction, ALL):
                    groups[(run.arm, direction, name)].append(outcome)
    return [
        RegimeAccuracy(arm, d, name, len(v), sum(a for a, _ in v) / len(v), sum(b for _, b in v) / len(v))
        for (arm, d, name), v in sorted(groups.items())
    ]
