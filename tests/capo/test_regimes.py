"""CAPO's gradient regimes against the closed-form thresholds, and against autograd's gradients."""

import pytest
import torch

from capo.analysis.regimes import Regime, capo_regime, explain, regime, regime_from_gradients
from capo.objectives import PairLogps, capo_loss


def capo_gradients(lw: float, ll: float) -> tuple[float, float]:
    out = capo_loss(PairLogps(torch.tensor([lw]), torch.tensor([ll]), torch.tensor([1]), torch.tensor([1])))
    return sum(v.item() for v in out.grad_chosen.values()), sum(v.item() for v in out.grad_rejected.values())


@pytest.mark.parametrize(
    ("lw", "ll", "down", "up"),
    [
        # ∂z/∂lw = 0.1 + 2/ll: ll = −5 → −0.3 (down); ll² = 25 < 20·40 = 800 (up)
        (-40.0, -5.0, True, True),
        # ll = −40 → 0.1 − 0.05 = +0.05 (not down); ll² = 1600 > 20·5 = 100 (not up)
        (-5.0, -40.0, False, False),
        # ll = −19 → 0.1 − 0.105 < 0 (down); ll² = 361 > 20·10 = 200 (not up)
        (-10.0, -19.0, True, False),
        # ll = −21 → +0.0048 (not down); ll² = 441 < 20·30 = 600 (up)
        (-30.0, -21.0, False, True),
        # the demo's scale: ll = −75 → +0.073; ll² = 5625 > 20·80 (neither)
        (-80.0, -75.0, False, False),
    ],
)
def test_flags_match_closed_form_and_the_objectives_gradients(lw, ll, down, up):
    closed = capo_regime(lw, ll, alpha=2.0, beta=0.1)
    assert (closed.chosen_pushed_down, closed.rejected_pushed_up) == (down, up)
    assert regime_from_gradients(*capo_gradients(lw, ll)) == closed
    assert closed.toward_rejected == (down and up)


def test_the_two_pairs_of_the_issue_have_the_losses_it_states():
    bad = capo_loss(
        PairLogps(torch.tensor([-40.0]), torch.tensor([-5.0]), torch.tensor([1]), torch.tensor([1]))
    )
    good = capo_loss(
        PairLogps(torch.tensor([-5.0]), torch.tensor([-40.0]), torch.tensor([1]), torch.tensor([1]))
    )
    # z = 0.1·(−35) + 2·8 = 12.5 → softplus(−12.5) = 3.7e-6;  z = 0.1·35 + 2·0.125 = 3.75 → 0.0232
    assert bad.loss.item() == pytest.approx(3.727e-6, rel=1e-3)
    assert good.loss.item() == pytest.approx(0.02325, rel=1e-3)


def test_explanation_names_numbers_and_thresholds():
    lines = explain(-40.0, -5.0, 2.0, 0.1)
    assert lines[0].startswith("post-edit pushed down") and "−α/β = -20.0 nats" in lines[0]
    assert "-0.3000" in lines[0]
    assert lines[1].startswith("MT pushed up") and "25.0 vs (α/β)·|lw| = 800.0" in lines[1]
    assert lines[2] == "both: a step on this pair moves the model toward the MT"
    assert len(explain(-5.0, -40.0, 2.0, 0.1)) == 2


def test_saturated_pairs_get_their_regime_from_the_closed_form_not_the_float_gradient():
    # z = 0.1·(−40 + 2) + 2·(−40/−2) = −3.8 + 40 = 36.2: σ(z) − 1 underflows, both float32 gradients are 0
    lw, ll = -40.0, -2.0
    assert capo_gradients(lw, ll) == (0.0, 0.0)
    assert regime_from_gradients(*capo_gradients(lw, ll)) == Regime(False, False)
    # closed form: ll = −2 > −20 (post-edit pushed down); ll² = 4 < 20·40 = 800 (MT pushed up)
    assert regime("capo", lw, ll, {"alpha": 2.0, "beta": 0.1}) == Regime(True, True)
    assert regime("dpo", lw, ll, {"beta": 0.1}) == Regime(False, False)


def test_closed_form_matches_the_gradient_sign_wherever_the_gradient_has_one():
    torch.manual_seed(0)
    lw = -torch.rand(2000, dtype=torch.float64) * 60 - 0.5
    ll = -torch.rand(2000, dtype=torch.float64) * 60 - 0.5
    out = capo_loss(PairLogps(lw, ll, torch.ones(2000), torch.ones(2000)))
    gw = sum(out.grad_chosen.values())
    gl = sum(out.grad_rejected.values())
    for i in range(2000):
        closed = regime("capo", lw[i].item(), ll[i].item(), {"alpha": 2.0, "beta": 0.1})
        if gw[i] != 0:
            assert closed.chosen_pushed_down == (gw[i].item() > 0)
        if gl[i] != 0:
            assert closed.rejected_pushed_up == (gl[i].item() < 0)
