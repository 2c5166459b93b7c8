"""Where a gradient step turns against the preference: CAPO's regimes, per pair.

With lw, ll < 0 and CAPO's z = β(lw − ll) + α·lw/ll, L = −log σ(z), dL/dz < 0, so a
step moves lw along ∂z/∂lw and ll along ∂z/∂ll:

- ∂z/∂lw = β + α/ll < 0  ⟺  ll > −α/β (−20 nats at β 0.1, α 2): the post-edit is pushed *down*;
- ∂z/∂ll = −β + α|lw|/ll² > 0  ⟺  ll² < (α/β)·|lw|: the MT is pushed *up*;
- both at once: the step moves the model toward the MT (``toward_rejected``).

RRM = |lw|/|ll| grows as the post-edit becomes *less* likely, so the RRM term alone
always pushes toward the MT; it scales the β term's push on the post-edit down to
β(1 − (α/β)/|ll|) and reverses it when |ll| < α/β. For any objective the flags are
decided in closed form from lw, ll and the objective's parameters (``regime``), never from
the sign of a float gradient: σ(z) − 1 underflows to 0 in float32 once z > 16.6, so a
saturated pair's gradient has no sign to read. DPO, SimPO and DPO+NLL always raise lw and
lower ll (their dL/dlw < 0 < dL/dll for every pair), so they have no regime.
``regime_from_gradients`` reads the flags from gradients, for checking the closed form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Regime:
    chosen_pushed_down: bool
    rejected_pushed_up: bool

    @property
    def toward_rejected(self) -> bool:
        return self.chosen_pushed_down and self.rejected_pushed_up


def regime_from_gradients(dl_dlw: float, dl_dll: float) -> Regime:
    """The regime of a pair from its total dL/dlw and dL/dll."""
    return Regime(chosen_pushed_down=dl_dlw > 0, rejected_pushed_up=dl_dll < 0)


def capo_regime(lw: float, ll: float, alpha: float = 2.0, beta: float = 0.1) -> Regime:
    """CAPO's regime in closed form (lw, ll < 0)."""
    return Regime(
        chosen_pushed_down=ll > -alpha / beta, rejected_pushed_up=ll * ll < (alpha / beta) * abs(lw)
    )


def regime(objective: str, lw: float, ll: float, params: Mapping[str, float]) -> Regime:
    """The pair's regime under ``objective`` with its parameters, in closed form."""
    if objective != "capo":
        return Regime(chosen_pushed_down=False, rejected_pushed_up=False)
    return capo_regime(lw, ll, alpha=float(params["alpha"]), beta=float(params["beta"]))


def explain(lw: float, ll: float, alpha: float, beta: float) -> list[str]:
    """One line per CAPO flag, with the pair's numbers and the thresholds, for the inspector."""
    regime = capo_regime(lw, ll, alpha, beta)
    threshold = -alpha / beta
    down = "pushed down" if regime.chosen_pushed_down else "pushed up"
    up = "pushed up" if regime.rejected_pushed_up else "pushed down"
    lines = [
        f"post-edit {down}: ∂z/∂lw = β + α/ll = {beta:g} + {alpha:g}/({ll:.2f}) = {beta + alpha / ll:+.4f}; "
        f"it turns negative when ll > −α/β = {threshold:.1f} nats",
        f"MT {up}: ll² = {ll * ll:.1f} vs (α/β)·|lw| = {alpha / beta * abs(lw):.1f}; "
        f"the MT is pushed up when ll² is the smaller",
    ]
    if regime.toward_rejected:
        lines.append("both: a step on this pair moves the model toward the MT")
    return lines
