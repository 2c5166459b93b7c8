"""Uncertainty for pair-level outcomes: bootstrap intervals, an exact paired test, KDE, correlation.

- ``bootstrap_ci``: percentile interval of a mean over pairs (resampled with replacement);
  with several seeds, seeds are resampled first and pairs within each seed (two-level).
- ``mcnemar_exact``: two runs scored on the same pairs; only the pairs on which they
  disagree inform the test. With b = pairs only A gets right and c = pairs only B gets
  right, under H0 b ~ Binomial(b + c, ½); the two-sided p-value is scipy's ``binomtest``.
- ``paired_difference_ci``: bootstrap interval of mean(A − B) over the same pairs.
- ``pearson``: r, its p-value and n (scipy).
- ``kde``: Gaussian kernel density (scipy, Scott's bandwidth) on a grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

DEFAULT_RESAMPLES = 10_000


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class PairedTest:
    only_a: int  # pairs A gets right and B does not
    only_b: int
    p_value: float
    test: str = "exact McNemar (two-sided binomial on the discordant pairs)"


def _percentile(samples: np.ndarray, estimate: float, n: int, level: float) -> Interval:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high), n)


def bootstrap_ci(
    outcomes_by_seed: Sequence[Sequence[float]],
    level: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Mean over all outcomes with its percentile interval; one inner list per training seed."""
    groups = [np.asarray(g, dtype=float) for g in outcomes_by_seed if len(g)]
    if not groups:
        raise ValueError("no outcomes")
    rng = np.random.default_rng(seed)
    means = _two_level_means(groups, resamples, rng)
    estimate = float(np.concatenate(groups).mean())
    return _percentile(means, estimate, sum(len(g) for g in groups), level)


def _two_level_means(groups: list[np.ndarray], resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``resamples`` two-level resamples: seeds with replacement, then pairs within each."""
    picked = rng.integers(0, len(groups), size=(resamples, len(groups)))
    if len({len(g) for g in groups}) == 1:  # the usual study: every seed scored on the same pairs
        table, n = np.stack(groups), len(groups[0])
        inner = rng.integers(0, n, size=(resamples, len(groups), n))
        return table[picked[..., None], inner].mean(axis=(1, 2))
    return np.array(
        [np.concatenate([rng.choice(groups[s], size=len(groups[s])) for s in row]).mean() for row in picked]
    )


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> PairedTest:
    """Exact McNemar test of two runs' per-pair outcomes (same pairs, same order)."""
    if len(a) != len(b):
        raise ValueError("both runs must be scored on the same pairs")
    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    if only_a + only_b == 0:
        return PairedTest(0, 0, 1.0)
    return PairedTest(only_a, only_b, float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue))


def paired_difference_ci(
    a: Sequence[float],
    b: Sequence[float],
    level: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """mean(a − b) over the same pairs, with a percentile bootstrap interval."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if not len(diff):
        raise ValueError("no pairs")
    rng = np.random.default_rng(seed)
    means = rng.choice(diff, size=(resamples, len(diff))).mean(axis=1)
    return _percentile(means, float(diff.mean()), len(diff), level)


@dataclass(frozen=True)
class Correlation:
    r: float
    p_value: float
    n: int


def pearson(x: Sequence[float], y: Sequence[float]) -> Correlation:
    result = stats.pearsonr(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return Correlation(float(result.statistic), float(result.pvalue), len(x))


def kde(values: Sequence[float], grid: Sequence[float]) -> list[float] | None:
    """Density of ``values`` on ``grid``; None when it is undefined (fewer than 2 distinct values)."""
    data = np.asarray(values, dtype=float)
    if len(np.unique(data)) < 2:
        return None
    return stats.gaussian_kde(data)(np.asarray(grid, dtype=float)).tolist()
