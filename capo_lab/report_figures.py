"""A study's report (``capo_lab.reports.StudyReport``) as plotly figures: pure functions, one per item.

Each item is a ``ReportItem``: a stable key (the HTML report's div is ``fig-<key>``), a heading, a short
paragraph, and either a figure or a one-line note saying why there is none (no α factor, no translations
evaluated, too few directions…). The HTML report (``capo_lab.report_html``) and the Studies tab
(``app.tab_studies``) draw the same items. The base model and each arm keep one colour in every figure.

Plotly reads a subset of HTML in titles, legends, ticks, hovers and table cells, so every user-supplied
text (run names, arm labels, directions) is HTML-escaped before it reaches a figure; plotly shows the
entities as the literal characters.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from capo.analysis.compare import ALL
from capo.analysis.stats import Correlation, Interval
from capo_lab.reports import StudyReport

BASE = "base"
BASE_COLOUR = "#7f7f7f"
PALETTE = qualitative.Plotly  # ten colours, none of them grey
DASHES = ("solid", "dash", "dot", "dashdot")
COLUMNS = 3  # small multiples per row
AMBIGUITY_ROWS = 50
REGIMES = {
    "chosen_down": "post-edit pushed down",
    "rejected_up": "MT pushed up",
    "toward_rejected": "both: toward the MT",
}


@dataclass(frozen=True)
class ReportItem:
    key: str
    heading: str
    about: str
    figure: go.Figure | None = None
    note: str | None = None  # why there is no figure


def esc(value: object) -> str:
    return html.escape(str(value), quote=False)


def colours(arms: Sequence[str]) -> dict[str, str]:
    """One colour per arm (in the report's arm order) and grey for the base model."""
    return {BASE: BASE_COLOUR} | {arm: PALETTE[i % len(PALETTE)] for i, arm in enumerate(arms)}


def _layout(fig: go.Figure, title: str, height: int = 380, **layout) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=height,
        margin={"l": 60, "r": 20, "t": 70, "b": 50},
        legend={"font": {"size": 11}},
        **layout,
    )
    return fig


def _where(report: StudyReport) -> str:
    return f"{esc(report.split)} split, step {esc(report.step)}"


def _error_bars(intervals: Sequence[Interval]) -> dict:
    return {
        "type": "data",
        "symmetric": False,
        "array": [i.high - i.estimate for i in intervals],
        "arrayminus": [i.estimate - i.low for i in intervals],
    }


def _interval_bar(name: str, x: list[str], intervals: Sequence[Interval], colour: str) -> go.Bar:
    return go.Bar(
        x=x,
        y=[i.estimate for i in intervals],
        name=name,
        marker_color=colour,
        error_y=_error_bars(intervals),
        customdata=[[i.low, i.high, i.n] for i in intervals],
        hovertemplate="%{x}: %{y:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}], n = %{customdata[2]}",
    )


def accuracy_figure(report: StudyReport) -> go.Figure | str:
    """Paper Fig. 5: reward accuracy per direction, one bar per arm, 95 % bootstrap CI."""
    cells = [c for c in report.accuracy if c.direction != ALL]
    if not cells:
        return "no direction has a scored pair"
    colour, fig = colours(report.arms), go.Figure()
    for arm in report.arms:
        mine = [c for c in cells if c.arm == arm]
        x = [esc(c.direction) for c in mine]
        fig.add_trace(_interval_bar(esc(arm), x, [c.interval for c in mine], colour[arm]))
    title = f"rewards/{esc(report.endpoint)} per direction and arm, 95 % CI · {_where(report)}"
    return _layout(fig, title, barmode="group", yaxis={"range": [0, 1], "title": "reward accuracy"})


def accuracy_all_figure(report: StudyReport) -> go.Figure | str:
    """Paper Fig. 13: reward accuracy over all directions, one bar per arm, 95 % bootstrap CI."""
    cells = [c for c in report.accuracy if c.direction == ALL]
    if not cells:
        return "no arm has a scored pair"
    colour, fig = colours(report.arms), go.Figure()
    for c in cells:
        fig.add_trace(_interval_bar(esc(c.arm), [esc(c.arm)], [c.interval], colour[c.arm]))
    title = f"rewards/{esc(report.endpoint)} over all directions per arm, 95 % CI · {_where(report)}"
    return _layout(fig, title, yaxis={"range": [0, 1], "title": "reward accuracy"}, showlegend=False)


def differences_figure(report: StudyReport) -> go.Figure | str:
    """Arm A − arm B per direction on the same pairs, CI; text: raw and Holm p, the discordant counts."""
    if not report.comparisons:
        return "a paired difference needs two arms scored on the same pairs"
    colour, fig = colours(report.arms), go.Figure()
    for a, b in dict.fromkeys((c.arm_a, c.arm_b) for c in report.comparisons):
        rows = [c for c in report.comparisons if (c.arm_a, c.arm_b) == (a, b)]
        fig.add_trace(
            go.Scatter(
                x=[esc(c.direction) for c in rows],
                y=[c.difference.estimate for c in rows],
                error_y=_error_bars([c.difference for c in rows]),
                mode="markers+text",
                text=[f"p = {c.p_value:.3g} (Holm {c.p_holm:.3g})<br>{c.only_a} / {c.only_b}" for c in rows],
                textposition="middle right",
                name=f"{esc(a)} − {esc(b)}",
                marker={"color": colour[a], "size": 9},
            )
        )
    fig.add_hline(y=0, line_dash="dot", line_color="grey")
    title = (
        f"Paired accuracy difference arm A − arm B per direction, 95 % CI · {_where(report)}"
        "<br><sup>text: sign-flip p, raw and Holm-adjusted; pairs better under A / under B</sup>"
    )
    return _layout(fig, title, yaxis={"range": [-1.05, 1.05], "title": "accuracy difference"})


def _grid(names: Sequence[str], **kwargs) -> go.Figure:
    """Small multiples: one subplot per name, ``COLUMNS`` to a row."""
    cols = max(1, min(COLUMNS, len(names)))
    rows = math.ceil(len(names) / cols)
    return make_subplots(rows=rows, cols=cols, subplot_titles=[esc(n) for n in names], **kwargs)


def _cell(index: int) -> dict[str, int]:
    return {"row": index // COLUMNS + 1, "col": index % COLUMNS + 1}


def _legend_once(fig: go.Figure, name: str) -> bool:
    return all(t.name != name for t in fig.data)


def densities_figure(report: StudyReport) -> go.Figure | str:
    """Paper Fig. 1, 3, 6: KDE of Δr = lw − ll per direction, the base model and each arm."""
    drawn = [d for d in report.densities if d.values is not None]
    if not drawn:
        return "no direction has two distinct Δr values, so no density is defined"
    directions = [d for d in report.directions if any(x.direction == d for x in drawn)]
    colour, fig = colours(report.arms), _grid(directions)
    for density in drawn:
        name = esc(density.label)
        dash = "dot" if density.label == BASE else "solid"
        line = {"color": colour.get(density.label, BASE_COLOUR), "dash": dash}
        trace = go.Scatter(
            x=density.grid, y=density.values, mode="lines", name=name, legendgroup=name, line=line,
            showlegend=_legend_once(fig, name),
        )  # fmt: skip
        fig.add_trace(trace, **_cell(directions.index(density.direction)))
    height = 260 * math.ceil(len(directions) / COLUMNS) + 80
    title = f"Density (KDE) of Δr = lw − ll per direction: base model and each arm · {_where(report)}"
    return _layout(fig, title, height=height)


def _correlation(c: Correlation | None) -> str:
    if c is None or not math.isfinite(c.r):
        return f"r undefined (a constant series), n = {c.n if c else 0}"
    return f"r = {c.r:.2f}, p = {c.p_value:.3g}, n = {c.n}"


def shift_figure(report: StudyReport) -> go.Figure | str:
    """Paper Fig. 7: MT-vs-post-edit BLEU per direction against the shift in mean Δr of arm A over B."""
    if not report.shift:
        return "the shift of one arm over another needs two arms"
    usable = [s for s in report.shift if len(s.directions) >= 3]
    if not usable:
        return "a correlation needs at least 3 directions with both arms scored and a BLEU"
    colour, fig = colours(report.arms), go.Figure()
    for s in usable:
        name = f"{esc(s.arm_a)} − {esc(s.arm_b)}"
        fig.add_trace(
            go.Scatter(
                x=list(s.bleu), y=list(s.shift), mode="markers+text", text=[esc(d) for d in s.directions],
                textposition="top center", name=name, marker={"color": colour.get(s.arm_a), "size": 10},
            )
        )  # fmt: skip
    stats = "; ".join(f"{esc(s.arm_a)} − {esc(s.arm_b)}: {_correlation(s.correlation)}" for s in usable)
    title = f"MT-vs-post-edit BLEU vs shift in mean Δr per direction<br><sup>{stats}</sup>"
    return _layout(
        fig, title, xaxis={"title": "BLEU(MT, post-edit)"}, yaxis={"title": "mean Δr(A) − mean Δr(B) (nats)"}
    )


def sweep_figure(report: StudyReport) -> go.Figure | str:
    """Paper Fig. 9: reward accuracy per α, best during training and final, and the final train loss."""
    if "objective.alpha" not in report.factors:
        return "the study does not vary objective.alpha"
    points = sorted(report.sweep, key=lambda p: p.value)
    if not points:
        return "no finished run of the α sweep"
    split, x = points[0].split, [p.value for p in points]
    series = [
        (f"{split} accuracy, best during training", [p.best_accuracy for p in points], "y"),
        (f"{split} accuracy, final", [p.final_accuracy for p in points], "y"),
        ("train loss, final", [p.final_train_loss for p in points], "y2"),
    ]
    fig = go.Figure([go.Scatter(x=x, y=y, name=n, mode="markers", yaxis=ax) for n, y, ax in series])
    return _layout(
        fig,
        f"Reward accuracy per α (best during training and final) and final train loss · {esc(split)} split",
        xaxis={"title": "α"},
        yaxis={"title": "reward accuracy", "range": [0, 1]},
        yaxis2={"title": "train loss", "overlaying": "y", "side": "right"},
    )


def _run_arms(report: StudyReport) -> dict[str, str]:
    return {r.name: r.arm for r in report.runs}


def loss_figure(report: StudyReport) -> go.Figure | str:
    """Paper Fig. 4: the training loss per run, coloured by arm, one dash per seed."""
    curves = [c for c in report.loss_curves if c.steps]
    if not curves:
        return "no finished run logged a training loss"
    colour, arm_of, fig = colours(report.arms), _run_arms(report), go.Figure()
    seeds = sorted({r.seed for r in report.runs})
    seed_of = {r.name: seeds.index(r.seed) for r in report.runs}
    for c in curves:
        dash = DASHES[seed_of.get(c.run, 0) % len(DASHES)]
        line = {"color": colour.get(arm_of.get(c.run, ""), BASE_COLOUR), "dash": dash}
        fig.add_trace(go.Scatter(x=c.steps, y=c.values, mode="lines+markers", name=esc(c.run), line=line))
    return _layout(fig, "Training loss per run", xaxis={"title": "step"}, yaxis={"title": "loss"})


def translations_figure(report: StudyReport) -> go.Figure | str:
    """chrF per direction, base vs trained, one subplot per run with evaluated translations."""
    runs = {name: bars for name, bars in report.translations.items() if bars}
    if not runs:
        return "no translations evaluated for these runs (capo-lab evaluate, or the Runs tab)"
    colour, arm_of = colours(report.arms), _run_arms(report)
    fig = make_subplots(rows=len(runs), cols=1, subplot_titles=[esc(n) for n in runs])
    for row, (name, bars) in enumerate(runs.items(), start=1):
        x = [esc(b.direction) for b in bars]
        arm = arm_of.get(name, "")
        base = go.Bar(x=x, y=[b.base for b in bars], name=BASE, marker_color=BASE_COLOUR, legendgroup=BASE)
        trained = go.Bar(x=x, y=[b.trained for b in bars], name=esc(arm), marker_color=colour.get(arm))
        for trace in (base, trained):
            trace.showlegend = _legend_once(fig, trace.name)
            fig.add_trace(trace, row=row, col=1)
    title = f"Translation chrF per direction: base model vs trained adapter, per run · {esc(report.split)}"
    return _layout(fig, title, height=240 * len(runs) + 100, barmode="group")


def _ordered(report: StudyReport, directions: set[str]) -> list[str]:
    return [d for d in report.directions if d in directions] + sorted(directions - set(report.directions))


def regimes_figure(report: StudyReport) -> go.Figure | str:
    """Shares of pairs in each gradient regime per direction, at the base model and trained, per arm."""
    if not report.regimes:
        return "no pair was scored"
    x_order = _ordered(report, {r.direction for r in report.regimes})
    colour, fig = colours(report.arms), make_subplots(rows=1, cols=3, subplot_titles=list(REGIMES.values()))
    for arm in report.arms:
        for at in ("base", "trained"):
            rows = {r.direction: r for r in report.regimes if r.arm == arm and r.at == at}
            shown, name = [d for d in x_order if d in rows], f"{esc(arm)} · {at}"
            for col, regime in enumerate(REGIMES, start=1):
                trace = go.Bar(
                    x=[esc(d) for d in shown], y=[getattr(rows[d], regime) for d in shown],
                    name=name, legendgroup=name, showlegend=col == 1, marker_color=colour[arm],
                    marker_pattern_shape="/" if at == "base" else "", opacity=0.5 if at == "base" else 1.0,
                )  # fmt: skip
                fig.add_trace(trace, row=1, col=col)
    fig.update_yaxes(range=[0, 1])
    title = f"Share of pairs per gradient regime, base model (hatched) vs trained, per arm · {_where(report)}"
    return _layout(fig, title, height=420, barmode="group", yaxis={"title": "share of pairs"})


def regime_accuracy_figure(report: StudyReport) -> go.Figure | str:
    """Accuracy change (trained − base) of the pairs in each starting regime, per direction and arm."""
    rows = report.regime_accuracy
    if not rows:
        return "no pair was scored at both the base model and the reported step"
    directions = _ordered(report, {r.direction for r in rows})
    colour, fig = colours(report.arms), _grid(directions)
    for r in rows:
        name = esc(r.arm)
        trace = go.Bar(
            x=[r.regime], y=[r.accuracy_trained - r.accuracy_base], name=name, legendgroup=name,
            marker_color=colour.get(r.arm), showlegend=_legend_once(fig, name), text=[f"n = {r.n}"],
            hovertext=[f"{r.accuracy_base:.2f} → {r.accuracy_trained:.2f}, n = {r.n}"],
        )  # fmt: skip
        fig.add_trace(trace, **_cell(directions.index(r.direction)))
    fig.update_yaxes(range=[-1.05, 1.05])
    height = 260 * math.ceil(len(directions) / COLUMNS) + 80
    title = f"Accuracy change (trained − base) within each starting gradient regime · {_where(report)}"
    return _layout(fig, title, height=height, barmode="group")


def _number(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def ambiguity_figure(report: StudyReport) -> go.Figure | str:
    """Pairs whose MT is closest to the post-edit (top 50): chrF, HTER, base Δr, each arm's change."""
    rows = report.ambiguity[:AMBIGUITY_ROWS]
    if not rows:
        return "no pair was scored at the base model"
    header = ["pair", "direction", "chrF(MT, post-edit)", "HTER", "base Δr"]
    header += [f"Δr change, {esc(arm)}" for arm in report.arms]
    columns = [
        [r.pair_id for r in rows],
        [esc(r.direction) for r in rows],
        [_number(r.chrf_mt_vs_pe, 1) for r in rows],
        [_number(r.hter, 3) for r in rows],
        [_number(r.base_delta) for r in rows],
        *([_number(r.delta_change.get(arm)) for r in rows] for arm in report.arms),
    ]
    fig = go.Figure(go.Table(header={"values": header}, cells={"values": columns}))
    title = f"Most ambiguous pairs (MT closest to the post-edit), top {len(rows)} of {len(report.ambiguity)}"
    return _layout(fig, title, height=min(900, 120 + 24 * len(rows)))


Builder = Callable[[StudyReport], "go.Figure | str"]
SHIFT_ABOUT = (
    "One point per direction: the BLEU of the MT against its post-edit (x) and the shift in mean Δr of "
    "arm A over arm B (y). The shift is the difference of the sample means of Δr; for a symmetric kernel "
    "this equals the difference of the KDE-weighted means the paper correlates."
)
ITEMS: list[tuple[str, str, str, Builder]] = [
    ("accuracy", "Reward accuracy per direction",
     "Share of pairs the arm gets right on the report's endpoint (a tie counts as wrong) at the reported "
     "step, per direction and arm, the base model included; each pair counts once, as its mean over "
     "seeds; 95 % Clopper-Pearson interval on the effective number of pairs (paper Fig. 5).",
     accuracy_figure),
    ("accuracy-all", "Reward accuracy over all directions",
     "The same over every direction, one bar per arm (paper Fig. 13).", accuracy_all_figure),
    ("differences", "Paired differences between arms",
     "Arm A − arm B on the same pairs (seeds matched), with Tango's 95 % score interval; the text gives "
     "the exact sign-flip p-value, raw and Holm-adjusted, and on how many pairs each arm is better.",
     differences_figure),
    ("densities", "Δr densities",
     "Gaussian KDE of Δr = lw − ll per direction, for the base model (step 0) and each arm at the "
     "reported step (paper Fig. 1, 3, 6).", densities_figure),
    ("shift", "BLEU vs shift in Δr", SHIFT_ABOUT, shift_figure),
    ("sweep", "α sweep",
     "Reward accuracy per α, the best during training (the paper picks α by it) and the final one, and "
     "the final train loss (paper Fig. 9).", sweep_figure),
    ("loss", "Loss curves", "The training loss of every finished run (paper Fig. 4).", loss_figure),
    ("translations", "Translation chrF",
     "chrF of the base model's and the trained adapter's translations per direction, where evaluated.",
     translations_figure),
    ("regimes", "Gradient regimes",
     "Per direction, the share of pairs whose gradient pushes the post-edit down, the MT up, or both "
     "(toward the MT), at the base model and at the reported step, per arm.", regimes_figure),
    ("regime-accuracy", "Accuracy within each starting regime",
     "Pairs grouped by their regime at the base model: the change of their reward accuracy from the base "
     "model to the reported step.", regime_accuracy_figure),
    ("ambiguity", "Ambiguous pairs",
     "Pairs ranked by how close the MT is to its post-edit (sentence chrF), with HTER, the base model's "
     "Δr and each arm's mean change in Δr.", ambiguity_figure),
]  # fmt: skip
ITEM_KEYS = [key for key, *_ in ITEMS]


def report_items(report: StudyReport) -> list[ReportItem]:
    """Every item of the report in order: a figure, or a one-line note saying why there is none."""
    items = []
    for key, heading, about, build in ITEMS:
        drawn = build(report)
        if isinstance(drawn, str):
            items.append(ReportItem(key, heading, about, note=drawn))
        else:
            items.append(ReportItem(key, heading, about, figure=drawn))
    return items
