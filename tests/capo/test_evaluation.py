"""Reward accuracy three ways and the tie fraction, against hand-computed values."""

import pytest
import torch

from capo.evaluation import aggregate, score_rows
from capo.objectives import PairLogps, capo_loss

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
    m = aggregate(rows(), prefix="eval_")
    assert m["eval_rewards/accuracies"] == pytest.approx(2 / 5)  # pairs 1, 3
    assert m["eval_rewards/accuracies_per_token"] == pytest.approx(3 / 5)  # pairs 1, 2, 4
    assert m["eval_rewards/accuracies_vs_base"] == pytest.approx(4 / 5)  # pairs 1-4
    assert m["eval_rewards/tie_fraction"] == pytest.approx(1 / 5)  # pair 5


def test_three_accuracies_and_tie_fraction_per_direction():
    m = aggregate(rows(), prefix="eval_")
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
    m = aggregate(score_rows([0], ["en-de"], logps, capo_loss(logps)))
    assert m["rewards/accuracies"] == 1.0 and "rewards/accuracies_vs_base" not in m


def test_regime_shares_per_direction():
    # lw, ll pairs for CAPO (α 2, β 0.1): (−40, −5) both flags; (−5, −40) none; (−10, −19) chosen down only
    lw, ll = torch.tensor([-40.0, -5.0, -10.0]), torch.tensor([-5.0, -40.0, -19.0])
    logps = PairLogps(lw, ll, torch.tensor([1, 1, 1]), torch.tensor([1, 1, 1]))
    m = aggregate(score_rows([0, 1, 2], ["en-de", "en-de", "en-zh"], logps, capo_loss(logps)), prefix="eval_")
    assert m["eval_regime/chosen_down"] == pytest.approx(2 / 3)
    assert m["eval_regime/rejected_up"] == pytest.approx(1 / 3)
    assert m["eval_regime/toward_rejected"] == pytest.approx(1 / 3)
    assert (m["eval_regime/toward_rejected/en-de"], m["eval_regime/chosen_down/en-zh"]) == (0.5, 1.0)
