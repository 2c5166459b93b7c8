"""Preference objectives as pure functions on per-pair tensors (unreduced).

Notation, per pair: lw = log π(y_w|x), ll = log π(y_l|x) (summed response
log-probs, nats, ≤ 0); rw, rl the same under the reference model; |y| the
response length in tokens. Every objective is L = −log σ(z) (+ extra terms)
for a logit z, and also returns dL/dlw and dL/dll split by term, so the
inspector can show which way each term pushes a pair. With s = σ(z) − 1 =
dL/dz (always < 0), dL/dlw = s·∂z/∂lw and dL/dll = s·∂z/∂ll.

Each objective is defined once in ``capo/objective_defs.py`` (parameters and defaults,
capabilities, gradient terms, citation); this module attaches the loss function named there,
checking that it takes exactly the defined parameters, and reads its defaults from there.
The trainer never branches on an objective's name: it always supplies reference log-probs
(the cached base scores, also the baseline of rewards/accuracies_vs_base) and token counts;
``needs_reference`` and ``needs_token_counts`` declare which of them an objective reads.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from capo.objective_defs import OBJECTIVE_DEFS, ObjectiveDef

# RRM = lw / ll is unstable as ll → 0⁻ (a rejected response the model finds
# certain). ll is clamped to at most −RRM_EPS before dividing: the sign is
# kept and |RRM| ≤ |lw| / RRM_EPS. Where the clamp acts, ∂RRM/∂ll = 0.
RRM_EPS = 1e-3


@dataclass(frozen=True)
class PairLogps:
    """Per-pair inputs, each a 1-D tensor of length B (ref_* only when needed)."""

    chosen: Tensor
    rejected: Tensor
    chosen_tokens: Tensor
    rejected_tokens: Tensor
    ref_chosen: Tensor | None = None
    ref_rejected: Tensor | None = None


@dataclass(frozen=True)
class ObjectiveOutput:
    """``loss`` [B]; ``logits`` z [B]; rewards as the objective sees them; gradients by term."""

    loss: Tensor
    logits: Tensor
    chosen_rewards: Tensor
    rejected_rewards: Tensor
    grad_chosen: dict[str, Tensor]
    grad_rejected: dict[str, Tensor]

    @property
    def reward_margin(self) -> Tensor:
        return self.chosen_rewards - self.rejected_rewards


@dataclass(frozen=True)
class ObjectiveSpec:
    """An objective's definition (``capo.objective_defs``) with its loss function attached."""

    definition: ObjectiveDef
    fn: Callable[..., ObjectiveOutput]

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def needs_reference(self) -> bool:
        return self.definition.needs_reference

    @property
    def needs_token_counts(self) -> bool:
        return self.definition.needs_token_counts

    @property
    def terms(self) -> tuple[str, ...]:
        return self.definition.terms

    @property
    def params(self) -> tuple[str, ...]:
        return self.definition.param_names


def _defaults(name: str) -> dict[str, float]:
    """Objective ``name``'s parameter defaults, as its loss function's keyword defaults."""
    return {p.name: p.default for p in OBJECTIVE_DEFS[name].params}


_CAPO, _DPO, _SIMPO, _DPO_NLL = (_defaults(n) for n in ("capo", "dpo", "simpo", "dpo_nll"))


def relative_reward_margin(chosen: Tensor, rejected: Tensor, eps: float = RRM_EPS) -> Tensor:
    """RRM = lw / min(ll, −eps)  (paper Eq. 4, with the guard documented above)."""
    return chosen / rejected.clamp(max=-eps)


def _bt_loss(z: Tensor) -> tuple[Tensor, Tensor]:
    """−log σ(z) computed stably as softplus(−z), and dL/dz = σ(z) − 1."""
    return F.softplus(-z), torch.sigmoid(z) - 1.0


def capo_loss(p: PairLogps, beta: float = _CAPO["beta"], alpha: float = _CAPO["alpha"]) -> ObjectiveOutput:
    """CAPO (Pokharel, Tao and Agrawal 2025, arXiv 2511.07691, Eq. 4): reference-free, not length-normalised.

    z = β(lw − ll) + α·RRM,  RRM = lw/ll,  L = −log σ(z).
    Terms: "dpo" = β(lw − ll) gives dL/dlw = sβ, dL/dll = −sβ;
    "rrm" = α·lw/ll gives dL/dlw = sα/ll, dL/dll = −sα·lw/ll².
    """
    safe_ll = p.rejected.clamp(max=-RRM_EPS)
    rrm = p.chosen / safe_ll
    z = beta * (p.chosen - p.rejected) + alpha * rrm
    loss, s = _bt_loss(z)
    clamped = p.rejected > -RRM_EPS
    return ObjectiveOutput(
        loss=loss,
        logits=z,
        chosen_rewards=beta * p.chosen,
        rejected_rewards=beta * p.rejected,
        grad_chosen={"dpo": s * beta, "rrm": s * alpha / safe_ll},
        grad_rejected={
            "dpo": -s * beta,
            "rrm": torch.where(clamped, torch.zeros_like(s), -s * alpha * p.chosen / safe_ll**2),
        },
    )


def _dpo_logits(p: PairLogps, beta: float) -> Tensor:
    if p.ref_chosen is None or p.ref_rejected is None:
        raise ValueError("this objective needs reference log-probs (ref_chosen, ref_rejected)")
    return beta * ((p.chosen - p.ref_chosen) - (p.rejected - p.ref_rejected))


def dpo_loss(p: PairLogps, beta: float = _DPO["beta"]) -> ObjectiveOutput:
    """DPO (Rafailov et al., 2023): z = β[(lw − rw) − (ll − rl)], L = −log σ(z).

    dL/dlw = sβ, dL/dll = −sβ. Policy == reference gives z = 0, L = ln 2.
    """
    z = _dpo_logits(p, beta)
    loss, s = _bt_loss(z)
    return ObjectiveOutput(
        loss=loss,
        logits=z,
        chosen_rewards=beta * (p.chosen - p.ref_chosen),  # type: ignore[operator]
        rejected_rewards=beta * (p.rejected - p.ref_rejected),  # type: ignore[operator]
        grad_chosen={"dpo": s * beta},
        grad_rejected={"dpo": -s * beta},
    )


def simpo_loss(p: PairLogps, beta: float = _SIMPO["beta"], gamma: float = _SIMPO["gamma"]) -> ObjectiveOutput:
    """SimPO (Meng, Xia and Chen 2024, arXiv 2405.14734): z = β(lw/|y_w| − ll/|y_l|) − γ, L = −log σ(z).

    dL/dlw = sβ/|y_w|, dL/dll = −sβ/|y_l|.
    """
    nw = p.chosen_tokens.to(p.chosen.dtype)
    nl = p.rejected_tokens.to(p.rejected.dtype)
    chosen_rewards = beta * p.chosen / nw
    rejected_rewards = beta * p.rejected / nl
    z = chosen_rewards - rejected_rewards - gamma
    loss, s = _bt_loss(z)
    return ObjectiveOutput(
        loss=loss,
        logits=z,
        chosen_rewards=chosen_rewards,
        rejected_rewards=rejected_rewards,
        grad_chosen={"simpo": s * beta / nw},
        grad_rejected={"simpo": -s * beta / nl},
    )


def dpo_nll_loss(
    p: PairLogps, beta: float = _DPO_NLL["beta"], nll_weight: float = _DPO_NLL["nll_weight"]
) -> ObjectiveOutput:
    """DPO+NLL (Pang et al., 2024; Yang et al., 2025): L = DPO + w·NLL.

    NLL = −lw/|y_w|, the chosen response's mean per-token negative log-likelihood
    (length-normalised, so its scale does not grow with the response).
    Terms: "dpo" as in DPO; "nll" gives dL/dlw = −w/|y_w|, dL/dll = 0.
    """
    dpo = dpo_loss(p, beta)
    nw = p.chosen_tokens.to(p.chosen.dtype)
    nll = -p.chosen / nw
    return ObjectiveOutput(
        loss=dpo.loss + nll_weight * nll,
        logits=dpo.logits,
        chosen_rewards=dpo.chosen_rewards,
        rejected_rewards=dpo.rejected_rewards,
        grad_chosen={**dpo.grad_chosen, "nll": -nll_weight / nw},
        grad_rejected={**dpo.grad_rejected, "nll": torch.zeros_like(nll)},
    )


LOSSES: dict[str, Callable[..., ObjectiveOutput]] = {
    fn.__name__: fn for fn in (capo_loss, dpo_loss, simpo_loss, dpo_nll_loss)
}


def _attach(definition: ObjectiveDef) -> ObjectiveSpec:
    """The definition with its loss function; refuses a function whose keyword parameters are
    not exactly the defined ones (compute_objective passes only those)."""
    fn = LOSSES[definition.loss]
    takes = tuple(inspect.signature(fn).parameters)[1:]
    if takes != definition.param_names:
        raise TypeError(
            f"{definition.loss} takes {takes}; objective {definition.name!r} defines {definition.param_names}"
        )
    return ObjectiveSpec(definition, fn)


OBJECTIVES: dict[str, ObjectiveSpec] = {name: _attach(d) for name, d in OBJECTIVE_DEFS.items()}


def get_objective(name: str) -> ObjectiveSpec:
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown objective {name!r}; choose from {', '.join(OBJECTIVES)}") from None


def compute_objective(name: str, logps: PairLogps, params: dict[str, Any]) -> ObjectiveOutput:
    """Run objective ``name`` with the hyper-parameters it declares, taken from ``params``."""
    spec = get_objective(name)
    return spec.fn(logps, **{k: params[k] for k in spec.params if k in params})
