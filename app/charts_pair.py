"""Figures of one pair (pure): its Δ across evaluations per run, its Δ under every run of a study beside the
base model's, and where it sits on CAPO's (ll, lw) plane with the regions where a step pushes the post-edit
down or the MT up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from app.charts import BOTTOM_LEGEND, empty_figure, esc, step_axis
from app.runs_compare import run_colour
from capo_lab.records import MarginPoint

DOWN_FILL = "rgba(220, 38, 38, 0.18)"
UP_FILL = "rgba(37, 99, 235, 0.18)"


@dataclass(frozen=True)
class PairHistory:
    """One run's Δ of the pair across its evaluations; ``step`` is the one shown."""

    name: str
    colour: str
    history: Sequence[MarginPoint]
    step: int


def history_chart(series: Sequence[PairHistory]) -> go.Figure:
    """Δ = lw − ll of the pair per evaluation step, one line per run in its colour; a ring: the step shown."""
    fig = go.Figure()
    for s in series:
        x, y = [h.step for h in s.history], [h.delta for h in s.history]
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=esc(s.name), line_color=s.colour))
        at = [h.delta for h in s.history if h.step == s.step]
        ring = {"size": 14, "symbol": "circle-open", "color": s.colour, "line": {"width": 2}}
        fig.add_trace(go.Scatter(x=[s.step] * len(at), y=at, mode="markers", marker=ring, showlegend=False))
    fig.add_hline(y=0, line_dash="dot", line_color="grey")
    fig.update_layout(
        title="This pair's Δ = lw − ll across evaluations (ring: the step shown)",
        xaxis=step_axis(h.step for s in series for h in s.history),
        yaxis_title="Δ (nats)",
        height=340,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        legend=BOTTOM_LEGEND,  # on the right, the runs' names squeezed the chart
    )
    return fig


def plane_bounds(lw: float, ll: float, ratio: float) -> tuple[float, float]:
    """The plot's lowest ll and lw: room for the pair and for the threshold ll = −α/β."""
    return min(1.25 * ll, -1.5 * ratio, -1.0), min(1.25 * lw, -2.5 * ratio, -1.0)


def _region(xs: list[float], ys: list[float], name: str, colour: str) -> go.Scatter:
    return go.Scatter(x=xs, y=ys, fill="toself", fillcolor=colour, line_width=0, mode="lines", name=name)


def _plane_traces(lw: float, ll: float, ratio: float) -> list[go.Scatter]:
    x_min, y_min = plane_bounds(lw, ll, ratio)
    xs = [x_min * (1 - i / 80) for i in range(81)]
    curve = [max(-x * x / ratio, y_min) for x in xs]
    down = f"ll > −α/β = {-ratio:g}: post-edit pushed down"
    diagonal = {"dash": "dot", "color": "grey"}
    return [
        _region([-ratio, 0, 0, -ratio], [y_min, y_min, 0, 0], down, DOWN_FILL),
        _region([*xs, 0, x_min], [*curve, y_min, y_min], "ll² < (α/β)·|lw|: MT pushed up", UP_FILL),
        go.Scatter(x=[x_min, 0], y=[x_min, 0], mode="lines", line=diagonal, name="lw = ll"),
        go.Scatter(x=[ll], y=[lw], mode="markers", marker={"size": 12, "color": "black"}, name="this pair"),
    ]


def regime_plane(lw: float, ll: float, alpha: float, beta: float) -> go.Figure:
    """CAPO's regimes on the (ll, lw) plane: ll > −α/β, the post-edit is pushed down; ll² < (α/β)|lw|,
    i.e. below lw = −ll²/(α/β), the MT is pushed up; where both overlap a step moves toward the MT."""
    ratio = alpha / beta
    x_min, y_min = plane_bounds(lw, ll, ratio)
    fig = go.Figure(_plane_traces(lw, ll, ratio))
    fig.update_layout(
        title=f"This pair on the (ll, lw) plane · CAPO α = {alpha:g}, β = {beta:g}",
        xaxis={"title": "ll = log-prob of the MT (nats)", "range": [x_min, 0]},
        yaxis={"title": "lw = log-prob of the post-edit (nats)", "range": [y_min, 0]},
        height=340,
        margin={"l": 60, "r": 10, "t": 40, "b": 40},
        legend={"font": {"size": 10}},
    )
    return fig


def plane_or_why(objective: dict, lw: float, ll: float) -> go.Figure:
    """The regime plane for a CAPO run; otherwise a title that says why there is none."""
    if objective.get("name") == "capo":
        return regime_plane(lw, ll, float(objective["alpha"]), float(objective["beta"]))
    return empty_figure(
        f"No (ll, lw) regime plane: under {esc(objective.get('name', '?'))} the gradient never pushes "
        "the post-edit down or the MT up, so there are no regions to draw",
        200,
    )


def _base_reference(fig: go.Figure, names: list[str], bases: list[float | None]) -> None:
    """The base model's Δ: one dashed line when every run shares it, else a dash over each run's bar."""
    known = [b for b in bases if b is not None]
    if not known:
        return
    if max(known) - min(known) < 1e-6:
        fig.add_hline(y=known[0], line_dash="dash", annotation_text=f"base Δ = {known[0]:.3f}")
        return
    dash = {"symbol": "line-ew", "size": 40, "line": {"width": 3, "color": "black"}}
    fig.add_trace(go.Scatter(x=names, y=bases, mode="markers", marker=dash, name="base Δ"))


def study_delta_chart(runs: Sequence) -> go.Figure:
    """The pair's Δ = lw − ll under each run of a study (``studies.StudyPairRun``), one bar per run in
    its colour, with the base model's Δ (from the reference log-probs) as the reference line."""
    names = [esc(f"#{int(r.run_id)} {r.name}") for r in runs]
    bars = go.Bar(
        x=names,
        y=[r.delta for r in runs],
        marker_color=[run_colour(r.run_id) for r in runs],
        name="Δ at the step shown",
        showlegend=False,
    )
    fig = go.Figure(bars)
    _base_reference(fig, names, [r.base_delta for r in runs])
    fig.add_hline(y=0, line_dash="dot", line_color="grey")
    fig.update_layout(
        title="This pair's Δ = lw − ll under each run (dashed: the base model's Δ)",
        yaxis_title="Δ (nats)",
        height=300,
        margin={"l": 50, "r": 10, "t": 40, "b": 60},
    )
    return fig
