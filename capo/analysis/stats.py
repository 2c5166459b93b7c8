"""Uncertainty for pair-level outcomes, with the *pair* as the unit of inference.

A study scores the same pairs under every seed, so two seeds are not twice the data: an
arm's outcomes are a table ``[seeds, pairs]`` and each pair carries its *seed mean*
m_i = mean over seeds of its 0/1 outcomes. Duplicating a run leaves every m_i as it was,
so it can never narrow an interval or lower a p-value.

- ``proportion_interval``: an arm's accuracy p̂ = mean m_i. Clopper–Pearson (exact, never
  below its nominal coverage) on an effective number of pairs n_eff = p̂(1 − p̂) / Var(p̂):
  with one seed n_eff = n and the interval is the textbook one. Var(p̂) = Var(m_i)/n
  (pairs resampled), plus, with at least ``MIN_SEEDS_FOR_SEED_VARIANCE`` seeds,
  Var(seed means)/k (seeds resampled too). At p̂ = 0 or 1, n_eff = n.
- ``paired_difference_interval``: mean(m_a − m_b) over the same pairs, seeds matched, by
  Tango's score interval for a paired difference (Statist. Med. 1998). It never collapses
  to [0, 0] when no pair is discordant (0 of 64 discordant: ±0.057).
- ``sign_flip_test``: exact permutation test of d_i = m_a,i − m_b,i: under H0 each d_i's
  sign is a fair coin; two-sided p = P(|Σ ±|d_i|| ≥ |Σ d_i|), computed exactly by
  convolution (k·d_i is an integer). With one seed and 0/1 outcomes it *is* exact McNemar.
- ``minimum_detectable_effect``: the smallest mean difference a two-sided paired test at
  level α detects with the given power, from n and the observed E[d²] (the discordance
  rate with one seed): √n·δ = z_{1−α/2}·√E[d²] + z_{power}·√(E[d²] − δ²) (Connor 1987).
- ``holm``: Holm's step-down adjustment of a family of p-values.
- ``pearson``: r, its p-value and n (scipy). ``kde``: Gaussian kernel density (scipy).

Each method's coverage or error rate is measured by seeded simulations in
``tests/capo/test_calibration.py`` (``capo.analysis.calibration``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_SEEDS_FOR_SEED_VARIANCE = 3  # fewer seeds give a seed variance with one or no degree of freedom
LEVEL = 0.95


def _scipy_stats():
    """``scipy.stats``, imported by the functions that compute with it: it takes over a second to
    import, and every CLI command imports this module through the lab's services."""
    from scipy import stats

    return stats


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    n: int  # pairs: the unit of inference
    seeds: int = 1


@dataclass(frozen=True)
class PairedTest:
    only_a: int  # pairs whose seed mean is higher under A
    only_b: int
    p_value: float
    test: str = "exact sign-flip test on per-pair seed means (one seed: exact McNemar)"


def outcome_table(outcomes: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """``[seeds, pairs]`` as float; refuses an empty table or seeds with different pairs."""
    table = np.asarray(outcomes, dtype=float)
    if table.ndim == 1:
        table = table[None, :]
    if table.ndim != 2 or table.size == 0:
        raise ValueError("outcomes must be a non-empty [seeds, pairs] table")
    return table


def mean_variance(table: np.ndarray) -> float:
    """Var(p̂) of the grand mean: pairs resampled, and seeds too when there are enough of them."""
    k, n = table.shape
    variance = float(table.mean(axis=0).var()) / n
    if k >= MIN_SEEDS_FOR_SEED_VARIANCE:
        variance += float(table.mean(axis=1).var(ddof=1)) / k
    return variance


def effective_pairs(table: np.ndarray) -> float:
    """n_eff = p̂(1 − p̂)/Var(p̂), between 1 and seeds × pairs; n at p̂ ∈ {0, 1} or Var = 0."""
    k, n = table.shape
    p, variance = float(table.mean()), mean_variance(table)
    if p in (0.0, 1.0):
        return float(n)
    if variance == 0.0:  # every pair right in exactly the same share of seeds
        return float(n * k)
    return float(np.clip(p * (1 - p) / variance, 1.0, n * k))


def clopper_pearson(successes: float, n: float, level: float = LEVEL) -> tuple[float, float]:
    """Exact binomial interval (beta quantiles; fractional counts allowed)."""
    tail = (1 - level) / 2
    low = 0.0 if successes <= 0 else float(_scipy_stats().beta.ppf(tail, successes, n - successes + 1))
    high = 1.0 if successes >= n else float(_scipy_stats().beta.ppf(1 - tail, successes + 1, n - successes))
    return low, high


def proportion_interval(outcomes, level: float = LEVEL) -> Interval:
    """An arm's accuracy over pairs (seed means), with its Clopper–Pearson interval on n_eff."""
    table = outcome_table(outcomes)
    k, n = table.shape
    p, n_eff = float(table.mean()), effective_pairs(table)
    low, high = clopper_pearson(p * n_eff, n_eff, level)
    return Interval(p, min(low, p), max(high, p), n, k)


def _tango_z(b: float, c: float, n: float, delta: float) -> float:
    """Tango's score statistic for H0: p(A right, B wrong) − p(A wrong, B right) = delta."""
    w = -b - c + (2 * n - b + c) * delta
    q = (np.sqrt(max(w * w + 8 * n * c * delta * (1 - delta), 0.0)) - w) / (4 * n)  # restricted MLE
    variance, excess = n * (2 * q + delta * (1 - delta)), b - c - n * delta
    if variance <= 0:
        return float(np.sign(excess)) * np.inf if excess else 0.0
    return float(excess / np.sqrt(variance))


def tango_interval(b: float, c: float, n: float, level: float = LEVEL) -> tuple[float, float]:
    """Tango's score interval (Statist. Med. 1998) for (b − c)/n: b pairs right under A only, c under
    B only, of n. The set of deltas whose score statistic stays within ±z; counts may be fractional."""
    z, estimate = float(_scipy_stats().norm.ppf(1 - (1 - level) / 2)), (b - c) / n

    def root(low: float, high: float, target: float) -> float:  # the statistic falls as delta rises
        for _ in range(60):
            mid = (low + high) / 2
            low, high = (mid, high) if _tango_z(b, c, n, mid) > target else (low, mid)
        return (low + high) / 2

    edge = 1 - 1e-12
    low = -1.0 if _tango_z(b, c, n, -edge) <= z else root(-1.0, estimate, z)
    high = 1.0 if _tango_z(b, c, n, edge) >= -z else root(estimate, 1.0, -z)
    return min(low, estimate), max(high, estimate)


def paired_difference_interval(a, b, level: float = LEVEL) -> Interval:
    """mean(A − B) over the same pairs (seed-matched tables), by Tango's score interval.

    Per pair d_i = m_a,i − m_b,i; the counts are Σ max(d_i, 0) and Σ max(−d_i, 0), which is
    b and c with one seed and, with fractional d_i, overstates the variance (|d| ≥ d²). With
    enough seeds, the seed-to-seed variance of the difference shrinks the counts and n alike."""
    ta, tb = outcome_table(a), outcome_table(b)
    if ta.shape != tb.shape:
        raise ValueError("both arms must be scored on the same pairs and seeds")
    k, n = ta.shape
    diff = ta.mean(axis=0) - tb.mean(axis=0)
    scale = 1.0
    if k >= MIN_SEEDS_FOR_SEED_VARIANCE:
        pair_var = float(diff.var()) / n
        seed_var = float((ta.mean(axis=1) - tb.mean(axis=1)).var(ddof=1)) / k
        scale = pair_var / (pair_var + seed_var) if pair_var + seed_var > 0 else 1.0
    ups, downs = float(np.clip(diff, 0, None).sum()), float(np.clip(-diff, 0, None).sum())
    low, high = tango_interval(ups * scale, downs * scale, n * scale, level)
    return Interval(float(diff.mean()), low, high, n, k)


def _sign_flip_distribution(weights: np.ndarray) -> np.ndarray:
    """P(Σ s_i·w_i = t − Σ w_i) for fair signs s_i and integer weights w_i, t = 0 … 2Σw."""
    total = int(weights.sum())
    dist = np.zeros(2 * total + 1)
    dist[0] = 1.0
    span = 0
    for w in weights.astype(int):  # each weight moves the sum by −w or +w: shift by 0 or 2w
        new = np.zeros_like(dist)
        new[: span + 1] += 0.5 * dist[: span + 1]
        new[2 * w : 2 * w + span + 1] += 0.5 * dist[: span + 1]
        dist, span = new, span + 2 * w
    return dist


def sign_flip_test(a, b) -> PairedTest:
    """Exact two-sided sign-flip test of per-pair seed-mean differences (seed-matched tables)."""
    ta, tb = outcome_table(a), outcome_table(b)
    if ta.shape != tb.shape:
        raise ValueError("both arms must be scored on the same pairs and seeds")
    k = ta.shape[0]
    diff = ta.mean(axis=0) - tb.mean(axis=0)
    weights = np.rint(np.abs(diff) * k)
    weights = weights[weights > 0]
    only_a, only_b = int((diff > 0).sum()), int((diff < 0).sum())
    if not len(weights):
        return PairedTest(0, 0, 1.0)
    observed = abs(float(np.rint(diff * k).sum()))
    dist = _sign_flip_distribution(weights)
    sums = np.arange(len(dist)) - weights.sum()
    p = float(dist[np.abs(sums) >= observed - 1e-9].sum())
    return PairedTest(only_a, only_b, min(1.0, p))


def minimum_detectable_effect(n: int, second_moment: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest |mean difference| detected with ``power`` by a two-sided paired test at ``alpha``.

    ``second_moment`` is E[d²] of the per-pair differences (one seed: the share of discordant
    pairs); with none observed, one discordant pair is assumed (E[d²] = 1/n)."""
    if n <= 0:
        raise ValueError("no pairs")
    moment = max(second_moment, 1.0 / n)
    za, zb = _scipy_stats().norm.ppf(1 - alpha / 2), _scipy_stats().norm.ppf(power)
    low, high = 0.0, float(np.sqrt(moment))
    for _ in range(60):  # bisection: detectable when √n·δ ≥ za·√m + zb·√(m − δ²)
        mid = (low + high) / 2
        if np.sqrt(n) * mid >= za * np.sqrt(moment) + zb * np.sqrt(max(0.0, moment - mid * mid)):
            high = mid
        else:
            low = mid
    return float(high)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order."""
    order = np.argsort(p_values, kind="stable")
    m = len(p_values)
    adjusted, running = [0.0] * m, 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[index])))
        adjusted[index] = running
    return adjusted


@dataclass(frozen=True)
class Correlation:
    r: float
    p_value: float
    n: int


def pearson(x: Sequence[float], y: Sequence[float]) -> Correlation:
    result = _scipy_stats().pearsonr(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return Correlation(float(result.statistic), float(result.pvalue), len(x))


def kde(values: Sequence[float], grid: Sequence[float]) -> list[float] | None:
    """Density of ``values`` on ``grid``; None when it is undefined (fewer than 2 distinct values)."""
    data = np.asarray(values, dtype=float)
    if len(np.unique(data)) < 2:
        return None
    return _scipy_stats().gaussian_kde(data)(np.asarray(grid, dtype=float)).tolist()
