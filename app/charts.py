"""Plotly figures from plain data: pure functions, no I/O, unit-tested."""

from __future__ import annotations

import difflib
import html
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import plotly.graph_objects as go

from capo.analysis.sweep import SweepPoint

if TYPE_CHECKING:
    from capo_lab.translations import DirectionChrf

MAX_POINTS = 2000


@dataclass(frozen=True)
class Point:
    run: str
    step: int
    key: str
    value: float


def downsample(points: Sequence[tuple[int, float]], max_points: int = MAX_POINTS) -> list[tuple[int, float]]:
    """Keep at most ``max_points`` by taking every k-th point; the first and last always stay."""
    if len(points) <= max_points:
        return list(points)
    stride = math.ceil(len(points) / (max_points - 1))
    kept = list(points[::stride])
    if kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept


def _series(points: Iterable[Point], keys: Sequence[str]) -> dict[tuple[str, str], list[tuple[int, float]]]:
    series: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    wanted = set(keys)
    for p in points:
        if p.key in wanted and math.isfinite(p.value):
            series[(p.run, p.key)].append((p.step, p.value))
    return {k: sorted(v) for k, v in series.items()}


def line_chart(points: Iterable[Point], keys: Sequence[str], title: str, y_title: str = "") -> go.Figure:
    """One line per (run, key), steps on x, downsampled to ``MAX_POINTS`` per line."""
    fig = go.Figure()
    for (run, key), values in sorted(_series(points, keys).items()):
        kept = downsample(values)
        fig.add_trace(
            go.Scattergl(
                x=[s for s, _ in kept],
                y=[v for _, v in kept],
                mode="lines+markers",
                name=f"{run} · {key}" if len(keys) > 1 else run,
                marker={"size": 4},
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title="step",
        yaxis_title=y_title,
        height=340,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        legend={"font": {"size": 10}},
    )
    return fig


def direction_keys(points: Iterable[Point], prefix: str) -> list[str]:
    """Metric keys ``prefix/<direction>`` present in ``points``, sorted."""
    return sorted({p.key for p in points if p.key.startswith(prefix + "/")})


def delta_distribution(deltas: dict[str, list[tuple[str, float]]], title: str) -> go.Figure:
    """Δr = lw − ll per direction as box plots, one colour per run (paper Fig. 6)."""
    fig = go.Figure()
    for run, rows in deltas.items():
        fig.add_trace(
            go.Box(
                x=[d for d, _ in rows],
                y=[v for _, v in rows],
                name=run,
                boxpoints="all",
                jitter=0.3,
                pointpos=0,
            )
        )
    fig.add_hline(y=0, line_dash="dot", line_color="grey")
    fig.update_layout(
        title=title,
        boxmode="group",
        yaxis_title="Δr = lw − ll (nats)",
        height=360,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
    )
    return fig


def sweep_chart(points: Sequence[SweepPoint], parameter: str) -> go.Figure:
    """Reward accuracy at its best during training and at the end, and the final train loss, against a
    swept value (paper Fig. 9; the paper picks α by the best evaluation accuracy)."""
    points = sorted(points, key=lambda p: p.value)
    split = points[0].split if points else "eval"
    x = [p.value for p in points]
    series = [
        (f"{split} accuracy, best", [p.best_accuracy for p in points], "y"),
        (f"{split} accuracy, final", [p.final_accuracy for p in points], "y"),
        ("train loss, final", [p.final_train_loss for p in points], "y2"),
    ]
    fig = go.Figure(
        [go.Scatter(x=x, y=y, name=name, mode="lines+markers", yaxis=axis) for name, y, axis in series]
    )
    fig.update_layout(
        title=f"Sweep over {parameter}",
        xaxis_title=parameter,
        height=340,
        yaxis={"title": f"{split} reward accuracy", "range": [0, 1]},
        yaxis2={"title": "train loss", "overlaying": "y", "side": "right"},
    )
    return fig


def bar_chart(categories: Sequence[str], series: dict[str, Sequence[float | None]], title: str) -> go.Figure:
    fig = go.Figure(
        [go.Bar(x=list(categories), y=list(values), name=name) for name, values in series.items()]
    )
    fig.update_layout(title=title, barmode="group", height=320, margin={"l": 50, "r": 10, "t": 40, "b": 40})
    return fig


NO_TRANSLATIONS = "no translations evaluated yet: use Evaluate translations"
SIGNIFICANCE_NOTE = "* p < 0.05, ** p < 0.01: trained vs base, sacrebleu's paired bootstrap test (two-sided)"


def significance_mark(p_value: float | None) -> str:
    """``**`` for p < 0.01, ``*`` for p < 0.05, nothing otherwise or without a test."""
    if p_value is None or not math.isfinite(p_value):
        return ""
    return "**" if p_value < 0.01 else "*" if p_value < 0.05 else ""


def chrf_chart(bars: Sequence[DirectionChrf], title: str = "chrF per direction") -> go.Figure:
    """chrF per direction (then "all"), base beside trained; marks above the trained bar give the paired
    bootstrap's significance. Without bars, an empty figure whose title says how to get some."""
    fig = go.Figure()
    if not bars:
        fig.update_layout(title=NO_TRANSLATIONS, height=340, xaxis_visible=False, yaxis_visible=False)
        return fig
    if any(b.base is not None for b in bars):
        fig.add_trace(go.Bar(x=[b.direction for b in bars], y=[b.base for b in bars], name="base"))
    fig.add_trace(_trained_bar(bars))
    note = {"text": SIGNIFICANCE_NOTE, "xref": "paper", "yref": "paper", "x": 0, "y": -0.22}
    fig.update_layout(
        title=title,
        barmode="group",
        yaxis_title="chrF",
        height=360,
        margin={"l": 50, "r": 10, "t": 40, "b": 70},
        annotations=[{**note, "showarrow": False, "xanchor": "left", "font": {"size": 11}}],
    )
    return fig


def _trained_bar(bars: Sequence[DirectionChrf]) -> go.Bar:
    return go.Bar(
        x=[b.direction for b in bars],
        y=[b.trained for b in bars],
        name="trained",
        text=[significance_mark(b.p_value) for b in bars],
        textposition="outside",
        cliponaxis=False,
        hovertext=["p = " + (f"{b.p_value:.4f}" if b.p_value is not None else "n/a") for b in bars],
    )


def token_heatmap_html(tokens: Sequence[str], logps: Sequence[float]) -> str:
    """Tokens as spans shaded by log-prob: white at 0 nats, full red at ≤ −10; the value on hover."""
    spans = []
    for token, logp in zip(tokens, logps, strict=True):
        strength = min(1.0, max(0.0, -logp / 10.0))
        colour = f"rgba(220, 38, 38, {strength:.2f})"
        spans.append(
            f'<span class="tok" title="{logp:.3f}" style="background:{colour}">{html.escape(token)}</span>'
        )
    return '<div class="heatmap">' + "".join(spans) + "</div>"


def word_diff_html(rejected: str, chosen: str) -> str:
    """Word-level diff from MT (rejected) to post-edit (chosen): deletions struck, insertions marked."""
    old, new = rejected.split(), chosen.split()
    out = []
    for op, a1, a2, b1, b2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if op in ("delete", "replace"):
            out.append(f"<del>{html.escape(' '.join(old[a1:a2]))}</del>")
        if op in ("insert", "replace"):
            out.append(f"<ins>{html.escape(' '.join(new[b1:b2]))}</ins>")
        if op == "equal":
            out.append(html.escape(" ".join(old[a1:a2])))
    return '<div class="diff">' + " ".join(out) + "</div>"
