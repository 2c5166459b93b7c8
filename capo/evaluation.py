"""Per-pair scores and the aggregate metrics logged from them (TRL key names).

Reward accuracy, three ways, whatever the objective (lw, ll: the policy's summed
response log-probs; lw₀, ll₀: the base model's, adapters disabled; |y|: tokens):

- ``rewards/accuracies``: lw > ll, the paper's definition (Appendix B);
- ``rewards/accuracies_per_token``: lw/|y_w| > ll/|y_l|, SimPO's per-token reward;
- ``rewards/accuracies_vs_base``: (lw − lw₀) − (ll − ll₀) > 0, DPO's implicit-reward
  accuracy against the base (TRL's ``rewards/accuracies`` for DPO) and the shift of
  the paper's Fig. 1 and 3. It is 0 at step 0, where the policy is the base.

A tie (chosen and rejected the same text, ``capo.data.triples.is_tie``, stored with the
pair) counts as wrong in every accuracy by its flag (``not tie and lw > ll``), never
through the comparison: a tie's lw − ll is float noise of either sign (±1e-4), not 0.
``rewards/tie_fraction`` says how many pairs are ties, which caps every accuracy at
1 − tie_fraction. ``rewards/truncated_identical_fraction`` says how many pairs have
different texts but the same response tokens after truncation to ``max_length``: not
ties, so their accuracies are counted, but decided by float noise.

``regime/…``: shares of pairs a step pushes against the preference, decided in closed
form from lw, ll and the objective's parameters (``capo.analysis.regimes.regime``), never
from the sign of a float gradient (a saturated pair's float32 gradient is 0).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from capo.analysis.regimes import regime
from capo.objectives import ObjectiveOutput, PairLogps, relative_reward_margin


@dataclass(frozen=True)
class PairScoreRow:
    pair_id: int
    direction: str
    logp_chosen: float
    logp_rejected: float
    n_tokens_chosen: int
    n_tokens_rejected: int
    ref_logp_chosen: float | None
    ref_logp_rejected: float | None
    rrm: float
    loss: float
    reward_margin: float
    grad_chosen: dict[str, float]
    grad_rejected: dict[str, float]
    tie: bool = False  # chosen equals rejected as text (``capo.data.triples.is_tie``)
    truncated_identical: bool = False  # different texts, the same response tokens after truncation
    chosen_token_logps: tuple[float, ...] = ()  # per response token, at evaluations (for heat maps)
    rejected_token_logps: tuple[float, ...] = ()


def score_rows(
    pair_ids: Sequence[int],
    directions: Sequence[str],
    logps: PairLogps,
    out: ObjectiveOutput,
    ties: Sequence[bool] | None = None,
    truncated_identical: Sequence[bool] | None = None,
) -> list[PairScoreRow]:
    """One row per pair, detached to Python floats; ``ties`` marks pairs whose two responses are the
    same text, ``truncated_identical`` pairs whose responses differ only past ``max_length``."""
    rrm = relative_reward_margin(logps.chosen, logps.rejected)

    def col(t: torch.Tensor | None) -> list:
        return t.detach().double().tolist() if t is not None else [None] * len(pair_ids)

    lw, ll, nw, nl = (
        col(logps.chosen),
        col(logps.rejected),
        col(logps.chosen_tokens),
        col(logps.rejected_tokens),
    )
    rw, rl, r, loss, margin = (
        col(logps.ref_chosen),
        col(logps.ref_rejected),
        col(rrm),
        col(out.loss),
        col(out.reward_margin),
    )
    gw = {k: col(v) for k, v in out.grad_chosen.items()}
    gl = {k: col(v) for k, v in out.grad_rejected.items()}
    return [
        PairScoreRow(
            pid,
            d,
            lw[i],
            ll[i],
            int(nw[i]),
            int(nl[i]),
            rw[i],
            rl[i],
            r[i],
            loss[i],
            margin[i],
            {k: v[i] for k, v in gw.items()},
            {k: v[i] for k, v in gl.items()},
            bool(ties[i]) if ties is not None else False,
            bool(truncated_identical[i]) if truncated_identical is not None else False,
        )
        for i, (pid, d) in enumerate(zip(pair_ids, directions, strict=True))
    ]


def base_shift(row: PairScoreRow) -> float | None:
    """(lw − lw₀) − (ll − ll₀): how far training moved the pair's margin from the base model's."""
    if row.ref_logp_chosen is None or row.ref_logp_rejected is None:
        return None
    return (row.logp_chosen - row.ref_logp_chosen) - (row.logp_rejected - row.ref_logp_rejected)


def _accuracies(rows: Sequence[PairScoreRow]) -> dict[str, float]:
    """A tie is wrong by its flag: its lw − ll is float noise whose sign means nothing."""
    n = len(rows)
    shifts = [base_shift(r) for r in rows]
    metrics = {
        "rewards/accuracies": sum(not r.tie and r.logp_chosen > r.logp_rejected for r in rows) / n,
        "rewards/accuracies_per_token": sum(
            not r.tie and r.logp_chosen / r.n_tokens_chosen > r.logp_rejected / r.n_tokens_rejected
            for r in rows
        )
        / n,
        "rewards/tie_fraction": sum(r.tie for r in rows) / n,
        "rewards/truncated_identical_fraction": sum(r.truncated_identical for r in rows) / n,
    }
    if all(s is not None for s in shifts):
        metrics["rewards/accuracies_vs_base"] = (
            sum(not r.tie and s > 0 for r, s in zip(rows, shifts, strict=True)) / n  # type: ignore[operator]
        )
    return metrics


def _regime_shares(
    rows: Sequence[PairScoreRow], objective: str, params: Mapping[str, Any]
) -> dict[str, float]:
    """Shares of pairs a step pushes against the preference, in closed form from lw and ll."""
    regimes = [regime(objective, r.logp_chosen, r.logp_rejected, params) for r in rows]
    n = len(rows)
    return {
        "regime/chosen_down": sum(g.chosen_pushed_down for g in regimes) / n,
        "regime/rejected_up": sum(g.rejected_pushed_up for g in regimes) / n,
        "regime/toward_rejected": sum(g.toward_rejected for g in regimes) / n,
    }


def _means(rows: Sequence[PairScoreRow], objective: str, params: Mapping[str, Any]) -> dict[str, float]:
    n = len(rows)
    return {
        "loss": sum(r.loss for r in rows) / n,
        **_accuracies(rows),
        **_regime_shares(rows, objective, params),
        "rewards/margins": sum(r.reward_margin for r in rows) / n,
        "logps/chosen": sum(r.logp_chosen for r in rows) / n,
        "logps/rejected": sum(r.logp_rejected for r in rows) / n,
        "rrm": sum(r.rrm for r in rows) / n,
    }


def aggregate(
    rows: Sequence[PairScoreRow], objective: str, params: Mapping[str, Any], prefix: str = ""
) -> dict[str, float]:
    """Means overall and per direction: ``{prefix}loss``, ``{prefix}rewards/accuracies/en-de``…

    ``objective`` and ``params`` (the objective's name and parameters, e.g. ``{"beta": 0.1,
    "alpha": 2.0}``) decide the regimes in closed form."""
    if not rows:
        return {}
    metrics = {prefix + k: v for k, v in _means(rows, objective, params).items()}
    by_direction: dict[str, list[PairScoreRow]] = defaultdict(list)
    for row in rows:
        by_direction[row.direction].append(row)
    for direction, group in sorted(by_direction.items()):
        metrics.update({f"{prefix}{k}/{direction}": v for k, v in _means(group, objective, params).items()})
    return metrics
