"""Seeded simulations: the study report's intervals hold their 95 % and its test its 5 %.

Each scenario is 400 synthetic studies with a known truth (``capo.analysis.calibration``).
With 400 studies a true coverage of 0.95 is observed within ±0.022 (two standard errors),
so "at least 0.93" fails an interval whose real coverage is about 0.91 or less.
"""

import numpy as np
import pytest

from capo.analysis.calibration import Scenario, calibrate, simulate
from capo.analysis.stats import sign_flip_test

STUDIES = 400

NULL = {  # no difference between the arms: the test must reject at most 6 % of the time
    "the issue's: 48 pairs, 3 near-identical seeds": Scenario(48, 3, 0.4, 0.1, 0.1, 0.03),
    "48 pairs, one seed": Scenario(48, 1, 0.4, 0.1, 0.1, 0.0),
    "64 pairs, 2 seeds, little discordance": Scenario(64, 2, 0.3, 0.02, 0.02, 0.01),
    "30 pairs, 5 noisy seeds": Scenario(30, 5, 0.3, 0.1, 0.1, 0.2),
}
EFFECT = {  # a real difference: intervals must still cover it
    "48 pairs, 3 seeds, +0.2": Scenario(48, 3, 0.4, 0.25, 0.05, 0.03),
    "16 pairs, one seed, +0.15": Scenario(16, 1, 0.5, 0.2, 0.05, 0.0),
    "16 pairs, 2 seeds, accuracy near 0.9": Scenario(16, 2, 0.85, 0.05, 0.02, 0.02),
    "64 pairs, 2 seeds, rare discordance +0.03": Scenario(64, 2, 0.3, 0.03, 0.0, 0.01),
    "200 pairs, 2 noisy seeds": Scenario(200, 2, 0.3, 0.15, 0.1, 0.15),
}


@pytest.mark.parametrize("name", list(NULL))
def test_intervals_cover_and_the_test_keeps_its_level_under_the_null(name):
    result = calibrate(NULL[name], STUDIES, seed=11)
    assert result.accuracy_coverage >= 0.93
    assert result.difference_coverage >= 0.93
    assert result.rejection_rate <= 0.06


@pytest.mark.parametrize("name", list(EFFECT))
def test_intervals_cover_a_real_difference(name):
    result = calibrate(EFFECT[name], STUDIES, seed=12)
    assert result.accuracy_coverage >= 0.93
    assert result.difference_coverage >= 0.93


def test_the_test_has_power_where_the_difference_is_large():
    assert calibrate(EFFECT["48 pairs, 3 seeds, +0.2"], STUDIES, seed=13).rejection_rate >= 0.6


def test_counting_seeds_as_pairs_would_fail_this_calibration():
    """The old report pooled (seed, pair) units: the same null studies reject far above 5 %."""
    scenario, rng = NULL["the issue's: 48 pairs, 3 near-identical seeds"], np.random.default_rng(11)
    pooled = 0
    for _ in range(STUDIES):
        a, b = simulate(scenario, rng)
        pooled += sign_flip_test(a.reshape(1, -1), b.reshape(1, -1)).p_value < 0.05
    assert pooled / STUDIES > 0.08
