"""Reward accuracy three ways, the tie and truncated-identical fractions and the regimes, against
hand-computed values."""

import pytest
import torch

from capo.evaluation import aggregate, score_rows
from capo.objectives import PairLogps, capo_loss

CAPO = {"beta": 0.1, "alpha": 2.0}

# pair: (lw, ll, |y_w|, |y_l|, lw0, ll0, tie, direction)
# lw > ll         lw/|y_w| > ll/|y_l|     (lw − lw0) − (ll − ll0) > 0
PAIRS = [
    (-10, -12, 5, 4, -11, -11, False, "en-de"),  # yes   -2 > -3 yes      (1) − (−1) = 2  yes
    (-20, -15, 10, 5, -22, -16, False, "en-de"),  # no    -2 > -3 yes      (2) − (1) = 1   yes
    (-8, -9, 2, 6, -9, -9, False, "en-de"),  # yes   -4 > -1.5 no     (1) − (0) = 1   yes
    (-30, -25, 3, 2, -35, -25, False, "en-zh"),  # no    -10 > -12.5 yes  (5) − (0) = 5   yes
    (-7, -7, 4, 4, -7, -7, True, "en-zh"),  # no (tie) -1.75 > -1.75 no   0 − 0 = 0  no
]


def rows():
    cols = list(zip(*PAIRS, strict=True))
    t = [torch.tensor(c, dtype=torch.float64) for c in cols[:6]]
    logps = PairLogps(t[0], t[1], t[2], t[3], t[4], t[5])
    return score_rows(list(range(5)), list(cols[7]), logps, capo_loss(logps), ties=list(cols[6]))


def test_three_accuracies_and_tie_fraction_overall():
    m = aggregate(rows(), "capo", CAPO, prefix="eval_")
    assert m["eval_rewards/accuracies"] == pytest.approx(2 / 5)  # pairs 1, 3
    assert m["eval_rewards/accuracies_per_token"] == pytest.approx(3 / 5)  # pairs 1, 2, 4
    assert m["eval_rewards/accuracies_vs_base"] == pytest.approx(4 / 5)  # pairs 1-4
    assert m["eval_rewards/tie_fraction"] == pytest.approx(1 / 5)  # pair 5


def test_three_accuracies_and_tie_fraction_per_direction():
    m = aggregate(rows(), "capo", CAPO, prefix="eval_")
    assert m["eval_rewards/accuracies/en-de"] == pytest.approx(2 / 3)
    assert m["eval_rewards/accuracies_per_token/en-de"] == pytest.approx(2 / 3)
    assert m["eval_rewards/accuracies_vs_base/en-de"] == pytest.approx(3 / 3)
    assert m["eval_rewards/tie_fraction/en-de"] == 0.0
    assert m["eval_rewards/accuracies/en-zh"] == 0.0
    assert m["eval_rewards/accuracies_per_token/en-zh"] == pytest.approx(1 / 2)
    assert m["eval_rewards/accuracies_vs_base/en-zh"] == pytest.approx(1 / 2)
    assert m["eval_rewards/tie_fraction/en-zh"] == pytest.approx(1 / 2)


def test_no_base_scores_no_vs_base_accuracy():
    t = torch.tensor([-1.0]), torch.tensor([-2.0]), torch.tensor([1]), torch.tensor([1])
    logps = PairLogps(*t)
    m = aggregate(score_rows([0], ["en-de"], logps, capo_loss(logps)), "capo", CAPO)
    assert m["rewards/accuracies"] == 1.0 and "rewards/accuracies_vs_base" not in m


def test_regime_shares_per_direction():
    # lw, ll pairs for CAPO (α 2, β 0.1): (−40, −5) both flags; (−5, −40) none; (−10, −19) chosen down only
    lw, ll = torch.tensor([-40.0, -5.0, -10.0]), torch.tensor([-5.0, -40.0, -19.0])
    logps = PairLogps(lw, ll, torch.tensor([1, 1, 1]), torch.tensor([1, 1, 1]))
    rows = score_rows([0, 1, 2], ["en-de", "en-de", "en-zh"], logps, capo_loss(logps))
    m = aggregate(rows, "capo", CAPO, prefix="eval_")
    assert m["eval_regime/chosen_down"] == pytest.approx(2 / 3)
    assert m["eval_regime/rejected_up"] == pytest.approx(1 / 3)
    assert m["eval_regime/toward_rejected"] == pytest.approx(1 / 3)
    assert (m["eval_regime/toward_rejected/en-de"], m["eval_regime/chosen_down/en-zh"]) == (0.5, 1.0)


def test_a_tie_is_wrong_in_every_accuracy_even_when_float_noise_favours_it():
    # A tie scored lw = −7.0000, ll = −7.0001 (float noise: lw − ll = +1e-4), |y| 4 and 4,
    # base lw0 = ll0 = −7: by the float comparisons it would be right three times —
    #   lw > ll: −7.0000 > −7.0001;  lw/|y_w| = −1.750000 > ll/|y_l| = −1.750025;
    #   (lw − lw0) − (ll − ll0) = 0 − (−0.0001) = +1e-4 > 0 —
    # yet a tie states no preference, so every accuracy counts it wrong: 0/1.
    t = [torch.tensor([v], dtype=torch.float64) for v in (-7.0, -7.0001, 4, 4, -7.0, -7.0)]
    logps = PairLogps(*t)
    tie = score_rows([0], ["en-de"], logps, capo_loss(logps), ties=[True])
    m = aggregate(tie, "capo", CAPO)
    assert (m["rewards/accuracies"], m["rewards/accuracies_per_token"], m["rewards/accuracies_vs_base"]) == (
        0.0,
        0.0,
        0.0,
    )
    assert m["rewards/tie_fraction"] == 1.0
    # The same scores without the tie flag count right three times: only the flag decides.
    m = aggregate(score_rows([0], ["en-de"], logps, capo_loss(logps), ties=[False]), "capo", CAPO)
    assert (m["rewards/accuracies"], m["rewards/accuracies_per_token"], m["rewards/accuracies_vs_base"]) == (
        1.0,
        1.0,
        1.0,
    )


def test_truncated_identical_pairs_are_counted_apart_from_ties():
    # pairs 0..3: pair 1 truncated-identical, pair 2 a tie ⇒ each fraction 1/4
    lw, ll = torch.tensor([-1.0, -2.0, -3.0, -4.0]), torch.tensor([-2.0, -2.0, -3.0, -5.0])
    logps = PairLogps(lw, ll, torch.tensor([1, 1, 1, 1]), torch.tensor([1, 1, 1, 1]))
    rows = score_rows(
        list(range(4)),
        ["en-de"] * 4,
        logps,
        capo_loss(logps),
        ties=[False, False, True, False],
        truncated_identical=[False, True, False, False],
    )
    m = aggregate(rows, "capo", CAPO)
    assert m["rewards/truncated_identical_fraction"] == 0.25 and m["rewards/tie_fraction"] == 0.25
    assert m["rewards/accuracies"] == 0.5  # pairs 0 and 3: −1 > −2, −4 > −5


def test_regime_shares_of_a_saturated_capo_pair_come_from_the_closed_form():
    # lw = −40, ll = −2 (CAPO, β 0.1, α 2): z = 0.1·(−40 + 2) + 2·(−40/−2) = −3.8 + 40 = 36.2, and
    # σ(z) − 1 underflows to 0 in float32 (z > 16.6), so both float32 gradients are exactly 0.
    # Closed form: ∂z/∂lw = 0.1 + 2/(−2) = −0.9 < 0 (ll = −2 > −α/β = −20): the post-edit is pushed down;
    # ll² = 4 < (α/β)·|lw| = 20·40 = 800: the MT is pushed up. Both flags on: toward the MT.
    logps = PairLogps(torch.tensor([-40.0]), torch.tensor([-2.0]), torch.tensor([5]), torch.tensor([5]))
    rows = score_rows([0], ["en-de"], logps, capo_loss(logps))
    assert sum(rows[0].grad_chosen.values()) == 0.0 and sum(rows[0].grad_rejected.values()) == 0.0
    m = aggregate(rows, "capo", CAPO)
    assert (m["regime/chosen_down"], m["regime/rejected_up"], m["regime/toward_rejected"]) == (1.0, 1.0, 1.0)
    # The same pair under DPO has no regime: DPO always raises lw and lowers ll.
    m = aggregate(rows, "dpo", {"beta": 0.1})
    assert (m["regime/chosen_down"], m["regime/rejected_up"], m["regime/toward_rejected"]) == (0.0, 0.0, 0.0)
