"""The preference objectives, each defined once: everything else about an objective is derived.

From each ``ObjectiveDef`` come the registry of loss functions (``capo.objectives``), the config
classes and their discriminated union (``capo.config``), the run form (``app/config_form.py``)
and the parameter symbols of charts and legends. This module imports neither torch nor pydantic,
so the config (which read-only commands load) can be derived from it without the model stack;
the loss function is therefore named here and attached by ``capo.objectives``, which checks at
import that each function takes exactly the parameters defined here.

Notation as in ``capo.objectives``: lw, ll the policy's summed response log-probs (chosen,
rejected); rw, rl the reference's; |y| a response's length in tokens.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Param:
    """A float hyper-parameter: its default, its range, its meaning and its chart symbol.

    Every value is finite (``capo.config`` refuses inf and nan); ``gt`` / ``ge`` bound it below
    (exclusive / inclusive) and ``le`` above; a bound left None is not checked. ``meaning`` is what
    the form shows under the parameter, followed by the range in words."""

    name: str
    default: float
    gt: float | None = None  # values must be > gt
    ge: float | None = None  # values must be >= ge
    le: float | None = None  # values must be <= le
    meaning: str = ""
    symbol: str  # how legends and chart titles name it


@dataclass(frozen=True, kw_only=True)
class ObjectiveDef:
    """One objective. ``terms`` name the parts of its gradient (``ObjectiveOutput.grad_*``)."""

    name: str  # the config's ``objective.name``
    loss: str  # the function in ``capo.objectives`` that computes it
    formula: str
    citation: str
    needs_reference: bool  # reads ref_chosen / ref_rejected (rw, rl)
    needs_token_counts: bool  # reads chosen_tokens / rejected_tokens (|y|)
    params: tuple[Param, ...]
    terms: tuple[str, ...]

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def class_name(self) -> str:
        """The config class's name: ``dpo_nll`` → ``DpoNllObjective``."""
        return "".join(part.capitalize() for part in self.name.split("_")) + "Objective"


# The upper bound is 50 times the largest default below (β 2.0 for SimPO): it is there to catch a
# typo (1e10 for 1e-1) before a run is queued; widen it here if a study needs more.
PARAM_MAX = 100.0


def _beta(default: float) -> Param:
    meaning = "β, the scale of the reward margin (an inverse temperature)"
    return Param(name="beta", default=default, gt=0.0, le=PARAM_MAX, meaning=meaning, symbol="β")


def _weight(name: str, default: float, meaning: str, symbol: str) -> Param:
    """A parameter that is 0 (off) or a positive weight up to ``PARAM_MAX``."""
    return Param(name=name, default=default, ge=0.0, le=PARAM_MAX, meaning=meaning, symbol=symbol)


DEFINITIONS: tuple[ObjectiveDef, ...] = (
    ObjectiveDef(
        name="capo",
        loss="capo_loss",
        formula="L = −log σ(β(lw − ll) + α·lw/ll)",
        citation="Pokharel, Tao and Agrawal 2025, arXiv 2511.07691, Eq. 4",
        needs_reference=False,
        needs_token_counts=False,
        params=(_beta(0.1), _weight("alpha", 2.0, "α, the weight of the ratio term lw/ll (RRM)", "α")),
        terms=("dpo", "rrm"),
    ),
    ObjectiveDef(
        name="dpo",
        loss="dpo_loss",
        formula="L = −log σ(β[(lw − rw) − (ll − rl)])",
        citation="Rafailov et al. 2023",
        needs_reference=True,
        needs_token_counts=False,
        params=(_beta(0.1),),
        terms=("dpo",),
    ),
    # Defaults β = 2.0, γ = 1.0 (γ/β = 0.5): the SimPO authors' Llama-3-8B-Base setting (their
    # trainer takes γ/β as ``gamma_beta_ratio``). TRL's CPOConfig defaults differ (β = 0.1,
    # simpo_gamma = 0.5).
    ObjectiveDef(
        name="simpo",
        loss="simpo_loss",
        formula="L = −log σ(β(lw/|y_w| − ll/|y_l|) − γ)",
        citation="Meng, Xia and Chen 2024, arXiv 2405.14734",
        needs_reference=False,
        needs_token_counts=True,
        params=(_beta(2.0), _weight("gamma", 1.0, "γ, the target reward margin", "γ")),
        terms=("simpo",),
    ),
    ObjectiveDef(
        name="dpo_nll",
        loss="dpo_nll_loss",
        formula="L = DPO + w·(−lw/|y_w|)",
        citation="Pang et al. 2024; Yang et al. 2025",
        needs_reference=True,
        needs_token_counts=True,
        params=(
            _beta(0.1),
            _weight("nll_weight", 1.0, "w, the weight of the chosen response's per-token NLL", "nll"),
        ),
        terms=("dpo", "nll"),
    ),
)


def _by_name(definitions: tuple[ObjectiveDef, ...]) -> dict[str, ObjectiveDef]:
    """The definitions by name; refuses a repeated name, or a parameter name that two objectives
    define differently but for its default (the form shows one box with one range and meaning, and
    charts one symbol, per parameter name)."""
    seen: dict[str, Param] = {}
    for d in definitions:
        for p in d.params:
            first = seen.setdefault(p.name, p)
            if vars(first) | {"default": 0} != vars(p) | {"default": 0}:
                raise ValueError(f"objective {d.name!r}: parameter {p.name!r} differs from {first}")
    named = {d.name: d for d in definitions}
    if len(named) != len(definitions):
        raise ValueError("two objectives share a name")
    return named


OBJECTIVE_DEFS: dict[str, ObjectiveDef] = _by_name(DEFINITIONS)
PARAM_SYMBOLS: dict[str, str] = {p.name: p.symbol for d in DEFINITIONS for p in d.params}
