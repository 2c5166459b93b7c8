"""Intervals reach their nominal coverage; the paired test and correlation match hand and numpy values."""

import math

import numpy as np
import pytest

from capo.analysis.stats import bootstrap_ci, kde, mcnemar_exact, paired_difference_ci, pearson


def test_bootstrap_interval_covers_a_known_rate_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    true_rate, trials, covered = 0.3, 300, 0
    for t in range(trials):
        outcomes = (rng.random(80) < true_rate).astype(float)
        ci = bootstrap_ci([outcomes], resamples=2000, seed=t)
        covered += ci.low <= true_rate <= ci.high
    # nominal 0.95; with 300 trials the binomial standard error is 1.3 points
    assert 0.90 <= covered / trials <= 0.99


def test_two_level_interval_with_seeds_is_wider_when_seeds_disagree():
    same = bootstrap_ci([[1, 0, 1, 0] * 10] * 3, resamples=4000)
    apart = bootstrap_ci([[1] * 40, [0] * 40, [1, 0] * 20], resamples=4000)
    assert same.estimate == apart.estimate == 0.5 and same.n == apart.n == 120
    assert (apart.high - apart.low) > (same.high - same.low)


def test_exact_mcnemar_matches_the_binomial_by_hand():
    # discordant pairs: A alone right on 6, B alone right on 1 → n = 7
    # two-sided p = 2·P(X ≤ 1 | 7, ½) = 2·(1 + 7)/2⁷ = 16/128 = 0.125
    a = [True] * 6 + [False] * 1 + [True] * 5 + [False] * 3
    b = [False] * 6 + [True] * 1 + [True] * 5 + [False] * 3
    result = mcnemar_exact(a, b)
    assert (result.only_a, result.only_b) == (6, 1)
    assert result.p_value == pytest.approx(0.125)
    assert mcnemar_exact([True, False], [True, False]).p_value == 1.0  # no disagreement, no evidence
    with pytest.raises(ValueError, match="same pairs"):
        mcnemar_exact([True], [True, False])


def test_paired_difference_interval_is_centred_on_the_mean_difference():
    ci = paired_difference_ci([1, 1, 1, 0], [0, 1, 0, 0], resamples=4000)
    assert ci.estimate == pytest.approx(0.5) and ci.low <= 0.5 <= ci.high and ci.n == 4


def test_pearson_equals_numpy_and_kde_integrates_to_one():
    x, y = [0.1, 0.4, 0.35, 0.8, 0.6], [-1.0, -0.2, -0.5, 0.9, 0.1]
    c = pearson(x, y)
    assert c.r == pytest.approx(np.corrcoef(x, y)[0, 1]) and c.n == 5 and 0 < c.p_value < 1
    grid = np.linspace(-20, 20, 4001)
    density = kde([-1.0, 0.0, 0.5, 2.0], grid)
    assert math.isclose(np.trapezoid(density, grid), 1.0, abs_tol=1e-3)
    assert kde([3.0, 3.0], grid) is None
