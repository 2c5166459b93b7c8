"""Losses against hand-computed values (arithmetic written out) and gradients against autograd."""

import dataclasses
import inspect
import math

import pytest
import torch

from capo import objectives
from capo.config import OBJECTIVE_CONFIGS
from capo.objective_defs import OBJECTIVE_DEFS, Param
from capo.objectives import (
    LOSSES,
    OBJECTIVES,
    RRM_EPS,
    PairLogps,
    capo_loss,
    compute_objective,
    dpo_loss,
    dpo_nll_loss,
    get_objective,
    relative_reward_margin,
    simpo_loss,
)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_capo_hand_computed() -> None:
    # lw = -10, ll = -20: z = 0.1 * (-10 - -20) + 2.0 * (-10 / -20) = 1.0 + 1.0 = 2.0
    out = capo_loss(PairLogps(t(-10.0), t(-20.0), t(5), t(4)), beta=0.1, alpha=2.0)
    assert out.logits.item() == pytest.approx(2.0)
    assert out.loss.item() == pytest.approx(softplus(-2.0))  # 0.126928
    assert out.loss.item() == pytest.approx(0.126928, abs=1e-6)


def test_dpo_hand_computed_and_ln2_anchor() -> None:
    # z = 0.1 * ((-10 - -12) - (-20 - -19)) = 0.1 * (2 + 1) = 0.3
    out = dpo_loss(PairLogps(t(-10.0), t(-20.0), t(5), t(4), t(-12.0), t(-19.0)), beta=0.1)
    assert out.loss.item() == pytest.approx(softplus(-0.3))  # 0.554355
    same = dpo_loss(PairLogps(t(-7.0, -3.0), t(-9.0, -1.0), t(3, 3), t(3, 3), t(-7.0, -3.0), t(-9.0, -1.0)))
    assert same.loss.tolist() == pytest.approx([0.693147, 0.693147], abs=1e-6)


def test_dpo_without_reference_is_refused() -> None:
    with pytest.raises(ValueError, match="reference"):
        dpo_loss(PairLogps(t(-1.0), t(-2.0), t(1), t(1)))


def test_simpo_hand_computed() -> None:
    # lw/|yw| = -10/5 = -2, ll/|yl| = -20/4 = -5: z = 2.0 * (-2 + 5) - 0.5 = 5.5
    out = simpo_loss(PairLogps(t(-10.0), t(-20.0), t(5), t(4)), beta=2.0, gamma=0.5)
    assert out.logits.item() == pytest.approx(5.5)
    assert out.loss.item() == pytest.approx(softplus(-5.5))  # 0.004078


def test_dpo_nll_hand_computed() -> None:
    # DPO part as above (z = 0.3); NLL = -(-10) / 5 = 2.0 per token; w = 1
    out = dpo_nll_loss(PairLogps(t(-10.0), t(-20.0), t(5), t(4), t(-12.0), t(-19.0)), nll_weight=1.0)
    assert out.loss.item() == pytest.approx(softplus(-0.3) + 2.0)  # 2.554355


def test_rrm_guard_bounds_the_ratio_near_zero() -> None:
    rrm = relative_reward_margin(t(-5.0, -5.0), t(-1e-9, -0.5))
    assert rrm.tolist() == pytest.approx([-5.0 / -RRM_EPS, 10.0])
    out = capo_loss(PairLogps(t(-5.0), t(0.0), t(2), t(2)))
    assert torch.isfinite(out.loss).all() and torch.isfinite(out.grad_rejected["rrm"]).all()


def _random_logps(n: int, seed: int) -> PairLogps:
    g = torch.Generator().manual_seed(seed)
    lw = -torch.rand(n, generator=g, dtype=torch.float64) * 60 - 0.5
    ll = -torch.rand(n, generator=g, dtype=torch.float64) * 60 - 0.5
    ll[0] = -1e-5  # the RRM guard acts on this pair
    return PairLogps(
        lw,
        ll,
        torch.randint(1, 40, (n,), generator=g),
        torch.randint(1, 40, (n,), generator=g),
        lw + torch.randn(n, generator=g, dtype=torch.float64),
        ll + torch.randn(n, generator=g, dtype=torch.float64),
    )


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_per_term_gradients_sum_to_autograd(name: str) -> None:
    base = _random_logps(16, seed=len(name))
    lw = base.chosen.clone().requires_grad_(True)
    ll = base.rejected.clone().requires_grad_(True)
    p = PairLogps(lw, ll, base.chosen_tokens, base.rejected_tokens, base.ref_chosen, base.ref_rejected)
    params = {"beta": 0.3, "alpha": 1.5, "gamma": 0.2, "nll_weight": 0.7}
    out = compute_objective(name, p, params)
    out.loss.sum().backward()
    spec = get_objective(name)
    assert set(out.grad_chosen) == set(out.grad_rejected) == set(spec.terms)
    analytic_w = sum(out.grad_chosen.values())
    analytic_l = sum(out.grad_rejected.values())
    torch.testing.assert_close(analytic_w.detach(), lw.grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(analytic_l.detach(), ll.grad, rtol=1e-9, atol=1e-12)


def test_capo_chosen_pushed_down_when_ll_above_minus_alpha_over_beta() -> None:
    # dz/dlw = beta + alpha / ll < 0  <=>  ll > -alpha / beta = -20: gradient descent lowers lw
    out = capo_loss(PairLogps(t(-10.0, -10.0), t(-15.0, -25.0), t(3, 3), t(3, 3)))
    total = sum(out.grad_chosen.values())
    assert total[0] > 0 > total[1]  # dL/dlw > 0 means a descent step decreases lw


def test_registry_declares_capabilities() -> None:
    assert get_objective("dpo").needs_reference and get_objective("dpo_nll").needs_reference
    assert not get_objective("capo").needs_reference and not get_objective("simpo").needs_reference
    assert get_objective("simpo").needs_token_counts and get_objective("dpo_nll").needs_token_counts
    assert not get_objective("capo").needs_token_counts and not get_objective("dpo").needs_token_counts
    with pytest.raises(ValueError, match="unknown objective"):
        get_objective("ipo")


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_declared_capabilities_match_what_the_loss_reads(name: str) -> None:
    spec, base = get_objective(name), _random_logps(8, seed=3)
    loss = compute_objective(name, base, {}).loss
    recounted = dataclasses.replace(base, chosen_tokens=base.chosen_tokens + 7)
    changed = not torch.allclose(compute_objective(name, recounted, {}).loss, loss)
    assert changed == spec.needs_token_counts
    no_reference = dataclasses.replace(base, ref_chosen=None, ref_rejected=None)
    if spec.needs_reference:
        with pytest.raises(ValueError, match="reference"):
            compute_objective(name, no_reference, {})
    else:
        torch.testing.assert_close(compute_objective(name, no_reference, {}).loss, loss)


@pytest.mark.parametrize("name", sorted(OBJECTIVE_DEFS))
def test_loss_defaults_and_config_defaults_come_from_the_definition(name: str) -> None:
    definition, spec = OBJECTIVE_DEFS[name], get_objective(name)
    defined = {p.name: p.default for p in definition.params}
    keywords = list(inspect.signature(spec.fn).parameters.values())[1:]
    assert {k.name: k.default for k in keywords} == defined
    assert OBJECTIVE_CONFIGS[name]().model_dump() == {"name": name, **defined}


def test_every_loss_function_belongs_to_one_definition() -> None:
    assert sorted(LOSSES) == sorted(d.loss for d in OBJECTIVE_DEFS.values())


def test_a_definition_whose_loss_takes_other_parameters_is_refused() -> None:
    wrong = dataclasses.replace(OBJECTIVE_DEFS["dpo"], params=(Param(name="tau", default=1.0, symbol="τ"),))
    with pytest.raises(TypeError, match=r"dpo_loss takes \('beta',\)"):
        objectives._attach(wrong)
