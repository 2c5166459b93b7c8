"""Where a gradient step turns against the preference: CAPO's regimes, per pair.

With lw, ll < 0 and CAPO's z = β(lw − ll) + α·lw/ll, L = −log σ(z), dL/dz < 0, so a
step moves lw along ∂z/∂lw and ll along ∂z/∂ll:

- ∂z/∂lw = β + α/ll < 0  ⟺  ll > −α/β (−20 nats at β 0.1, α 2): the post-edit is pushed *down*;
- ∂z/∂ll = −β + α|lw|/ll² > 0  ⟺  ll² < (α/β)·|lw|: the MT is pushed *up*;
- both at once: the step moves the model toward the MT (``toward_rejected``).

RRM = |lw|/|ll| grows as the post-edit becomes *less* likely, so the RRM term alone
always pushes toward the MT; it scales the β term's push on the post-edit down to
β(1 − (α/β)/|ll|) and reverses it when |ll| < α/β. For any objective the flags are
read from the per-pair gradients the objectives return: ``chosen_pushed_down`` when
dL/dlw > 0, ``rejected_pushed_up`` when dL/dll < 0 (DPO, SimPO and DPO+NLL never do).
"""

from __future__ import annotations

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
