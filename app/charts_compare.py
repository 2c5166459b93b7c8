"""Figures that compare runs (pure; plain data in, plotly out): per-direction accuracy bars, small
multiples with one panel per direction and one colour per run, the margin and the regime shares."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.charts import BOTTOM_LEGEND, Point, RunLook, downsample, empty_figure, esc, every_category, step_axis
from capo_lab.records import DirectionAccuracy

BASE_GREY = "#9CA3AF"
LABEL_ROOM = 1.2  # the accuracy axis's top: 1, and room for an upright "1.00" above a full bar
NO_SCORES = "Eval reward accuracy per direction: no eval pair scores yet (step 0 scores the base model)"
MARGIN_MEANINGS = {
    "capo": "β(lw − ll)",
    "dpo": "β[(lw − rw) − (ll − rl)], relative to the base model (0 at step 0)",
    "dpo_nll": "β[(lw − rw) − (ll − rl)], relative to the base model (0 at step 0)",
    "simpo": "β(lw/|y_w| − ll/|y_l|), per token (the loss then subtracts γ)",
}
PANEL_GAP = 70  # pixels between two rows of panels: the upper row's tick labels, the lower's titles
REGIME_PANELS = [
    ("post-edit pushed down", "eval_regime/chosen_down"),
    ("MT pushed up", "eval_regime/rejected_up"),
    ("toward the MT (both)", "eval_regime/toward_rejected"),
]
REGIME_TITLE = (
    "Share of eval pairs a step pushes the post-edit down / the MT up / toward the MT"
    "<br><sub>only CAPO's RRM term can: under DPO, SimPO and DPO+NLL the shares stay 0</sub>"
)


def renamed(points: Iterable[Point], names: dict[str, str]) -> list[Point]:
    """The points of the keys in ``names``, each key replaced by its readable name."""
    return [Point(p.run, p.step, names[p.key], p.value) for p in points if p.key in names]


def difference_points(points: Iterable[Point], minuend: str, subtrahend: str, out: str) -> list[Point]:
    """``out[/dir]`` = ``minuend[/dir]`` − ``subtrahend[/dir]`` per run and step where both are logged."""
    found: dict[tuple[str, int, str], dict[str, float]] = defaultdict(dict)
    for p in points:
        for name in (minuend, subtrahend):
            if p.key == name or p.key.startswith(name + "/"):
                found[(p.run, p.step, p.key[len(name) :])][name] = p.value
    return [
        Point(run, step, out + suffix, v[minuend] - v[subtrahend])
        for (run, step, suffix), v in sorted(found.items())
        if len(v) == 2
    ]


def direction_panels(points: Iterable[Point], prefix: str) -> list[tuple[str, str]]:
    """(panel title, key): ``all`` for ``prefix`` itself, then one per ``prefix/<direction>`` logged."""
    keys = {p.key for p in points}
    found = sorted(k for k in keys if k.startswith(prefix + "/"))
    return ([("all", prefix)] if prefix in keys else []) + [(k[len(prefix) + 1 :], k) for k in found]


def _panel_series(points: Iterable[Point], key: str) -> dict[str, list[tuple[int, float]]]:
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for p in points:
        if p.key == key and math.isfinite(p.value):
            series[p.run].append((p.step, p.value))
    return {run: downsample(sorted(v)) for run, v in sorted(series.items())}


def _add_panel(fig: go.Figure, series: dict, at: tuple[int, int], looks: dict, shown: set) -> None:
    for run, values in series.items():
        look = looks.get(run, RunLook(run, ""))
        fig.add_trace(
            go.Scatter(
                x=[s for s, _ in values],
                y=[v for _, v in values],
                mode="lines+markers",
                name=esc(look.name),
                legendgroup=run,
                showlegend=run not in shown,
                marker={"size": 4, **({"color": look.colour} if look.colour else {})},
            ),
            row=at[0],
            col=at[1],
        )
        shown.add(run)


def panel_chart(
    points: Sequence[Point],
    panels: Sequence[tuple[str, str]],
    title: str,
    looks: dict[str, RunLook],
    y_range: tuple[float, float] | None = None,
    cols: int = 3,
) -> go.Figure:
    """Small multiples: one panel per (title, key), one line per run in the run's colour, one legend
    entry per run. Without data, a title that says nothing is logged yet."""
    if not panels or not any(p.key in {k for _, k in panels} for p in points):
        return empty_figure(f"{title.split('<br>')[0]}: nothing logged yet")
    rows = math.ceil(len(panels) / cols)
    gap = PANEL_GAP / (200 * rows)  # the same gap in pixels between rows whatever their number
    fig = make_subplots(
        rows, min(cols, len(panels)), subplot_titles=[esc(t) for t, _ in panels], vertical_spacing=gap
    )
    shown: set[str] = set()
    steps: list[int] = []
    for i, (_, key) in enumerate(panels):
        series = _panel_series(points, key)
        steps += [s for values in series.values() for s, _ in values]
        _add_panel(fig, series, (i // cols + 1, i % cols + 1), looks, shown)
    fig.update_annotations(font_size=12)  # the panel titles
    top = 120 if "<br>" in title else 90  # the plot's badge, the title's lines, then the panels' titles
    fig.update_layout(
        title={"text": title, "y": 1, "yref": "container", "yanchor": "top", "pad": {"t": 30}},
        height=200 * rows + PANEL_GAP * (rows - 1) + top + 90,
        margin={"l": 50, "r": 10, "t": top, "b": 40},
        legend=BOTTOM_LEGEND | {"y": -60 / (200 * rows)},
    )
    fig.update_xaxes(**{k: v for k, v in step_axis(steps).items() if k != "title"})
    if y_range:
        fig.update_yaxes(range=list(y_range))
    return fig


def margin_chart(
    points: Sequence[Point], looks: dict[str, RunLook], objectives: dict[str, str], objective_margin: bool
) -> go.Figure:
    """Per direction, either Δ = lw − ll (mean summed log-probs: the same measure for every objective)
    or each objective's own reward margin, whose meaning the title gives per objective shown."""
    if objective_margin:
        notes = "; ".join(f"{o}: {MARGIN_MEANINGS.get(o, '?')}" for o in sorted(set(objectives.values())))
        title = f"Eval reward margin as each objective defines it<br><sub>{esc(notes)}</sub>"
        return panel_chart(points, direction_panels(points, "eval_rewards/margins"), title, looks)
    deltas = difference_points(points, "eval_logps/chosen", "eval_logps/rejected", "eval_delta")
    title = (
        "Eval Δ = lw − ll per direction (nats)<br><sub>mean summed log-prob of the post-edit minus the MT's; "
        "the same measure for every objective (> 0: the post-edit is preferred)</sub>"
    )
    return panel_chart(deltas, direction_panels(deltas, "eval_delta"), title, looks)


def regime_chart(points: Sequence[Point], looks: dict[str, RunLook]) -> go.Figure:
    """The three gradient-regime shares over training, one panel each, one colour per run."""
    return panel_chart(points, REGIME_PANELS, REGIME_TITLE, looks, y_range=(-0.04, 1.04))  # 0 and 1 seen


def _bar(x: list[str], y: list[float], name: str, colour: str, base: bool = False) -> go.Bar:
    """Bars with their values written upright above them: side by side, horizontal labels of grouped bars
    ran together ("0.250.25")."""
    marker = {"color": colour, **({"opacity": 0.45, "pattern": {"shape": "/"}} if base else {})}
    text = ["" if math.isnan(v) else f"{v:.2f}" for v in y]
    return go.Bar(
        x=x,
        y=y,
        name=esc(name),
        marker=marker,
        text=text,
        textposition="outside",
        textangle=-90,
        textfont={"size": 10},
        cliponaxis=False,
    )


def accuracy_bars(
    rows: Sequence[DirectionAccuracy], looks: dict[int, RunLook], shared_base: bool, accuracy: str = "lw > ll"
) -> go.Figure:
    """Per direction (then all): the base model's accuracy (one grey bar when every run shares it), then
    each run's at its last evaluation in the run's colour (hatched bases when the runs' bases differ);
    ``looks`` keyed by run id; ``accuracy`` names the accuracy in the title. The axis ticks 0 to 1, with
    room above 1 for the upright labels."""
    if not rows:
        return empty_figure(NO_SCORES)
    x = [esc(r.direction) for r in rows]
    run_ids = list(rows[0].runs)
    if shared_base:
        bars = [_bar(x, [r.runs[run_ids[0]].base for r in rows], "base (step 0)", BASE_GREY)]
    else:
        bars = [
            _bar(x, [r.runs[i].base for r in rows], f"{looks[i].name} base", looks[i].colour, True)
            for i in run_ids
        ]
    for i in run_ids:
        name = f"{looks[i].name} (step {rows[0].runs[i].last_step})"
        bars.append(_bar(x, [r.runs[i].last for r in rows], name, looks[i].colour))
    fig = go.Figure(bars)
    fig.update_layout(
        title=f"Eval reward accuracy per direction, {esc(accuracy)}: base → last evaluation",
        barmode="group",
        bargroupgap=0.1,
        xaxis=every_category(x),
        yaxis={"range": [0, LABEL_ROOM], "tickvals": [0, 0.25, 0.5, 0.75, 1], "title": "reward accuracy"},
        height=400,
        margin={"l": 50, "r": 10, "t": 50, "b": 40},
        legend=BOTTOM_LEGEND,
    )
    return fig
