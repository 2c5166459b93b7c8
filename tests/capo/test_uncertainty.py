"""The pair is the unit: intervals and the paired test by hand, and duplicated runs change nothing."""

import math

import numpy as np
import pytest

from capo.analysis.stats import (
    _tango_z,
    clopper_pearson,
    holm,
    kde,
    minimum_detectable_effect,
    paired_difference_interval,
    pearson,
    proportion_interval,
    sign_flip_test,
    tango_interval,
)


def test_one_seed_accuracy_is_clopper_pearson_and_never_collapses():
    # 0 of 10: low 0, high = 1 − 0.025^(1/10) = 1 − e^(0.1·ln 0.025) = 1 − 0.6915 = 0.3085
    ci = proportion_interval([[0] * 10])
    assert (ci.estimate, ci.low, ci.n) == (0.0, 0.0, 10)
    assert ci.high == pytest.approx(0.3085, abs=1e-4)
    # 10 of 10 mirrors it: the upper bound is 1, the lower bound is not
    full = proportion_interval([[1] * 10])
    assert full.high == 1.0 and full.low == pytest.approx(1 - 0.3085, abs=1e-4)
    assert clopper_pearson(5, 10) == pytest.approx((0.1871, 0.8129), abs=1e-4)


def test_seeds_are_not_extra_pairs():
    one = [[1, 0, 1, 1, 0, 1, 0, 1, 1, 1, 0, 1]]
    ci_one = proportion_interval(one)
    for copies in (2, 3, 5):
        ci = proportion_interval(one * copies)
        expected = (ci_one.estimate, ci_one.low, ci_one.high)
        assert (ci.estimate, ci.low, ci.high) == pytest.approx(expected, rel=1e-12)
        assert ci.n == 12
        assert ci.seeds == copies


def test_seeds_that_disagree_widen_the_interval():
    agree = proportion_interval([[1, 0] * 20] * 3)
    apart = proportion_interval([[1] * 40, [0] * 40, [1, 0] * 20])
    assert agree.estimate == apart.estimate == 0.5
    assert (apart.high - apart.low) > (agree.high - agree.low)


def test_sign_flip_with_one_seed_is_exact_mcnemar_by_hand():
    # discordant pairs: A alone right on 6, B alone right on 1 → 7 fair signs, |Σ| = 5
    # p = P(|S| ≥ 5) = 2·(C(7,0) + C(7,1))/2⁷ = 16/128 = 0.125
    a = [[1] * 6 + [0] + [1] * 5 + [0] * 3]
    b = [[0] * 6 + [1] + [1] * 5 + [0] * 3]
    result = sign_flip_test(a, b)
    assert (result.only_a, result.only_b) == (6, 1)
    assert result.p_value == pytest.approx(0.125)
    assert sign_flip_test([[1, 0]], [[1, 0]]).p_value == 1.0  # no disagreement, no evidence
    with pytest.raises(ValueError, match="same pairs"):
        sign_flip_test([[1]], [[1, 0]])


def test_sign_flip_on_seed_means_by_hand():
    # seed means A: [1, ½, 0], B: [0, 0, 0] → d = [1, ½, 0]; in halves: weights 2 and 1, Σ = 3
    # the four sign patterns give −3, −1, 1, 3: P(|S| ≥ 3) = 2/4
    a = [[1, 1, 0], [1, 0, 0]]
    b = [[0, 0, 0], [0, 0, 0]]
    assert sign_flip_test(a, b).p_value == pytest.approx(0.5)


def test_duplicating_a_run_changes_no_interval_and_no_p_value():
    rng = np.random.default_rng(3)
    a = (rng.random(40) < 0.7).astype(int).tolist()
    b = (rng.random(40) < 0.5).astype(int).tolist()
    test_one = sign_flip_test([a], [b])
    diff_one = paired_difference_interval([a], [b])
    for copies in (2, 3, 5):
        assert sign_flip_test([a] * copies, [b] * copies).p_value == pytest.approx(test_one.p_value)
        diff = paired_difference_interval([a] * copies, [b] * copies)
        assert (diff.low, diff.high) == pytest.approx((diff_one.low, diff_one.high))


def test_the_issue_example_three_zero_split_stays_at_one_copy():
    # a 3/0 split: p = 2·(½)³ = 0.25 for one copy, and for three identical copies
    a, b = [[1, 1, 1, 0]], [[0, 0, 0, 0]]
    assert sign_flip_test(a, b).p_value == pytest.approx(0.25)
    assert sign_flip_test(a * 3, b * 3).p_value == pytest.approx(0.25)


def test_tango_interval_inverts_its_score_statistic():
    z = 1.959963984540054
    low, high = tango_interval(6, 1, 15)
    assert low < 5 / 15 < high
    assert _tango_z(6, 1, 15, low) == pytest.approx(z, abs=1e-6)
    assert _tango_z(6, 1, 15, high) == pytest.approx(-z, abs=1e-6)
    # no discordant pair of 64: symmetric, not [0, 0]
    low, high = tango_interval(0, 0, 64)
    assert high == pytest.approx(-low) and 0.05 < high < 0.06
    diff = paired_difference_interval([[1, 0] * 32], [[1, 0] * 32])
    assert diff.estimate == 0 and diff.low < 0 < diff.high


def test_minimum_detectable_effect_solves_the_power_equation():
    # the issue's case: 1 of 64 pairs discordant; a 1.6-point effect needs
    # n = (1.96·√(1/64) + 0.8416·√(1/64 − 0.016²))²/0.016² ≈ 476 pairs
    mde = minimum_detectable_effect(476, 1 / 64)
    assert mde == pytest.approx(0.016, abs=3e-4)
    n, m = 128, 0.3
    delta = minimum_detectable_effect(n, m)
    lhs = math.sqrt(n) * delta
    rhs = 1.959963984540054 * math.sqrt(m) + 0.8416212335729143 * math.sqrt(m - delta**2)
    assert lhs == pytest.approx(rhs, rel=1e-6)
    assert minimum_detectable_effect(128, 0.0) == minimum_detectable_effect(128, 1 / 128)


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 → ×4, ×3, ×2, ×1 = 0.02, 0.03, 0.06, 0.04 → running max
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_pearson_equals_numpy_and_kde_integrates_to_one():
    x, y = [0.1, 0.4, 0.35, 0.8, 0.6], [-1.0, -0.2, -0.5, 0.9, 0.1]
    c = pearson(x, y)
    assert c.r == pytest.approx(np.corrcoef(x, y)[0, 1]) and c.n == 5 and 0 < c.p_value < 1
    grid = np.linspace(-20, 20, 4001)
    density = kde([-1.0, 0.0, 0.5, 2.0], grid)
    assert math.isclose(np.trapezoid(density, grid), 1.0, abs_tol=1e-3)
    assert kde([3.0, 3.0], grid) is None
