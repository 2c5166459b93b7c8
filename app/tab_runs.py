"""Runs tab: first, reward accuracy per direction (base → last evaluation) of the selected runs side by
side; then live charts, one colour and one legend name (objective and differing settings) per run, each
tick reading only the rows newer than the last one read (one statement for every selected run) and
reading nothing once no selected run is queued or running; translation evaluations queued for the worker,
their progress, and chrF base vs trained per direction. Deleting the selected runs needs a ticked
confirmation (``LabService.delete_runs``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import gradio as gr

from app.charts import Point, RunLook, delta_distribution, line_chart, sweep_or_why
from app.charts_compare import REGIME_PANELS, accuracy_bars, margin_chart, regime_chart, renamed
from app.common import markdown_text, run_choices, shows_errors, table
from app.deletion import confirmed_delete, deletion_markdown
from app.inline import Later, resetting_errors
from app.runs_compare import (
    accuracy_columns,
    accuracy_summary,
    accuracy_table_rows,
    run_colour,
    run_looks,
    run_names,
    shared_base,
)
from app.runs_evaluations import build_evaluations
from app.runs_selection import NOTHING_SELECTED, follow, wire_clear
from capo.analysis.sweep import ACCURACY, sweep_point
from capo_lab.errors import LabError
from capo_lab.live_metrics import LiveUpdate, Seen, key_matcher

REFRESH_SECONDS = 2.0
ACCURACIES = {
    "lw > ll (the paper's)": "accuracies",
    "per token, lw/|y_w| > ll/|y_l| (SimPO's)": "accuracies_per_token",
    "vs base, (lw − lw₀) − (ll − ll₀) > 0 (DPO's)": "accuracies_vs_base",
}
MARGINS = {
    "Δ = lw − ll (the same for every objective)": False,
    "each objective's reward margin (defined differently per objective)": True,
}
SPLIT_NAMES = ("training batches", "train", "eval", "validation")
LOSSES = {"loss": "training batches", "eval_loss": "eval"}
MARGIN_KEYS = {False: ("eval_logps/chosen", "eval_logps/rejected"), True: ("eval_rewards/margins",)}
REGIME_KEYS = tuple(key for _, key in REGIME_PANELS)
THROUGHPUT = "throughput/pairs_per_second"
SWEEP_KEYS = (f"eval_{ACCURACY}", f"validation_{ACCURACY}", "train_loss")  # what ``sweep_point`` reads
EVALUATED = ("train_", "eval_", "validation_")  # an evaluation's keys; training batches log bare ones
COMPARISON_OUTPUTS = 3  # the summary line, the per-direction table, its bar chart
FIGURES = 8


@dataclass(frozen=True)
class LiveCharts:
    """One browser tab's live charts (kept in its gr.State): the runs and metric keys they show, the
    runs' configs, each run's points read so far per key (a run's keyed ``#<id>``, as ``run_looks`` keys
    its look), where each run's next read starts, and whether some run was queued or running then."""

    run_ids: tuple[int, ...]
    keys: tuple[str, ...]
    configs: Mapping[int, dict[str, Any]]
    points: Mapping[int, Mapping[str, tuple[Point, ...]]]
    cursor: Mapping[int, Seen]
    active: bool

    def shows(self, run_ids: Sequence[int], keys: Sequence[str]) -> bool:
        return self.run_ids == tuple(run_ids) and self.keys == tuple(keys)

    def select(self, keys: Iterable[str], run_ids: Iterable[int] | None = None) -> list[Point]:
        """The points of ``keys`` (``key/*``: every key under ``key``) of ``run_ids`` (all by default)."""
        wanted = key_matcher(list(keys))
        runs = [self.points.get(rid, {}) for rid in (self.run_ids if run_ids is None else run_ids)]
        return [p for run in runs for key, points in run.items() if wanted(key) for p in points]


def accuracy_keys(accuracy: str) -> list[str]:
    """The chosen accuracy on every split: the training batches, then train, eval, validation evaluations."""
    name = f"rewards/{ACCURACIES.get(accuracy, 'accuracies')}"
    return [name, *(f"{split}_{name}" for split in ("train", "eval", "validation"))]


def margin_keys(margin: str) -> list[str]:
    """The keys the margin chart draws: overall and ``/*``, each direction's."""
    keys = MARGIN_KEYS[MARGINS.get(margin, False)]
    return [*keys, *(f"{k}/*" for k in keys)]


def chart_keys(accuracy: str, margin: str) -> tuple[str, ...]:
    """Every metric key the live charts draw with these choices; ``key/*`` is each direction's ``key``."""
    keys = [*LOSSES, *accuracy_keys(accuracy), *margin_keys(margin), *REGIME_KEYS, "learning_rate"]
    return tuple(dict.fromkeys([*keys, THROUGHPUT, *SWEEP_KEYS]))


def appended(points: Mapping[str, tuple[Point, ...]], run_id: int, rows: Sequence) -> dict:
    """A run's points per key followed by its new metric rows as points."""
    new: dict[str, list[Point]] = defaultdict(list)
    for r in rows:
        new[r.key].append(Point(f"#{run_id}", r.step, r.key, r.value))
    return {**points, **{key: (*points.get(key, ()), *found) for key, found in new.items()}}


def read_new(service, state: LiveCharts) -> tuple[LiveCharts, LiveUpdate]:
    """``state`` with the rows logged after its cursor appended (one read), and what that read found."""
    update = service.metrics_since(state.cursor, state.run_ids, state.keys)
    points = {rid: appended(state.points.get(rid, {}), rid, rows) for rid, rows in update.rows.items()}
    return replace(state, points=points, cursor=dict(update.cursor), active=update.active), update


def fresh(service, run_ids: Sequence[int], keys: Sequence[str]) -> LiveCharts:
    """A new selection's charts: the runs' configs and every row of ``keys`` they logged so far."""
    ids = tuple(run_ids)
    empty = LiveCharts(ids, tuple(keys), service.run_configs(list(ids)), {}, {}, True)
    return read_new(service, empty)[0]


def comparison_view(service, run_ids: list[int], configs: dict, accuracy: str = "") -> list:
    """[summary line, per-direction accuracy table, its bar chart] from the stored eval pair scores, under
    the chosen ``accuracy`` (a label of ``ACCURACIES``; the paper's when not one)."""
    label = accuracy if accuracy in ACCURACIES else next(iter(ACCURACIES))
    rows = [row.in_variant(ACCURACIES[label]) for row in service.direction_accuracy(run_ids)]
    names = run_names(configs)
    looks = {rid: RunLook(name, run_colour(rid)) for rid, name in names.items()}
    shown = table(accuracy_table_rows(rows, names), accuracy_columns(rows, names))
    return [
        markdown_text(accuracy_summary(rows, names, label)),
        shown,
        accuracy_bars(rows, looks, shared_base(rows), label),
    ]


Draw = Callable[[], Any]  # one figure, drawn when called


def charted(select: Callable, keys: Iterable[str], chart: Callable, *args: Any, **options: Any):
    """(keys, draw): ``chart`` drawn from the points of ``keys`` (``select``), then ``args``."""
    return list(keys), lambda: chart(select(keys), *args, **options)


def renamed_lines(points: list[Point], names: dict[str, str], title: str, looks: dict, **options: Any):
    """A line chart of the keys in ``names``, each shown under its readable name."""
    return line_chart(renamed(points, names), list(names.values()), title, looks=looks, **options)


def training_charts(
    select: Callable[[Iterable[str]], list[Point]], looks: dict, accuracy: str, objectives: dict, margin: str
) -> list[tuple[list[str], Draw]]:
    """(keys, draw) of [loss, accuracy, margin, regime shares, learning rate, throughput], one colour
    per run; each chart drawn from the points of its keys only."""
    names = dict(zip(accuracy_keys(accuracy), SPLIT_NAMES, strict=True))
    title = f"Reward accuracy: {accuracy or next(iter(ACCURACIES))}"
    return [
        charted(select, LOSSES, renamed_lines, LOSSES, "Loss", looks),
        charted(select, names, renamed_lines, names, title, looks, y_range=(0, 1)),
        charted(select, margin_keys(margin), margin_chart, looks, objectives, MARGINS.get(margin, False)),
        charted(select, REGIME_KEYS, regime_chart, looks),
        charted(select, ["learning_rate"], line_chart, ["learning_rate"], "Learning rate", looks=looks),
        charted(select, [THROUGHPUT], line_chart, [THROUGHPUT], "Throughput (pairs/s)", looks=looks),
    ]


def training_figures(
    select: Callable[[Iterable[str]], list[Point]], looks: dict, accuracy: str, objectives: dict, margin: str
) -> list:
    """[loss, accuracy, margin, regime shares, learning rate, throughput], every one drawn."""
    return [draw() for _, draw in training_charts(select, looks, accuracy, objectives, margin)]


def sweep_figure(configs: dict, points: Mapping[int, Sequence[Point]], parameter: str = "alpha"):
    """The sweep over the selected runs' ``parameter``, read from the points of each run in ``points``
    (the runs that logged something)."""
    found = [
        sweep_point(float(c["objective"][parameter]), [(p.step, p.key, p.value) for p in points[rid]])
        for rid, c in configs.items()
        if c["objective"].get(parameter) is not None and rid in points
    ]
    return sweep_or_why(found, parameter, len(configs))


def metric_figures(
    state: LiveCharts, accuracy: str, margin: str, new_keys: Collection[str] | None = None
) -> list:
    """[loss, accuracy, margin, regime shares, sweep, learning rate, throughput] from the state's points.
    Given a tick's ``new_keys``, a chart none of whose keys is among them is left as it is (skipped);
    the sweep, cheap, is drawn again."""
    looks = run_looks(state.configs)
    objectives = {f"#{rid}": c["objective"]["name"] for rid, c in state.configs.items()}
    charts = training_charts(state.select, looks, accuracy, objectives, margin)
    swept = {rid: state.select(SWEEP_KEYS, [rid]) for rid in state.run_ids if state.points.get(rid)}
    charts.insert(4, (None, lambda: sweep_figure(state.configs, swept)))
    return [draw() if touched(keys, new_keys) else gr.skip() for keys, draw in charts]


def touched(keys: list[str] | None, new_keys: Collection[str] | None) -> bool:
    """Whether a chart of ``keys`` (None: of every key) changes with new rows of ``new_keys`` (None:
    not known, so it may)."""
    if keys is None or new_keys is None:
        return True
    wanted = key_matcher(keys)
    return any(wanted(key) for key in new_keys)


def score_figures(service, state: LiveCharts, accuracy: str = "") -> list:
    """[summary line, accuracy table, its bars, Δr boxes]: the views read from stored pair scores, the
    table and bars under the chosen ``accuracy``."""
    looks = run_looks(state.configs)
    ids = list(state.run_ids)
    deltas = {looks[f"#{r}"].name: service.deltas(r, "eval", "last") for r in ids if service.score_steps(r)}
    colours = {look.name: look.colour for look in looks.values()}
    delta_figure = delta_distribution(deltas, "Δr = lw − ll per direction at the latest evaluation", colours)
    return [*comparison_view(service, ids, dict(state.configs), accuracy), delta_figure]


def laid_out(scores: list, metrics: list) -> list:
    """The pair-score views and the metric charts in the order ``build`` lays them out."""
    summary, shown, bars, deltas = scores
    loss, acc, margins, regimes, sweep, lr, throughput = metrics
    return [summary, shown, bars, loss, acc, margins, regimes, deltas, sweep, lr, throughput]


def figures(
    service, run_ids: list[int], state: LiveCharts | None, accuracy: str = "", margin: str = ""
) -> list:
    """Every output of the Runs tab's charts, in the order ``build`` lays them out; without a state,
    the selected runs with no points read."""
    ids = tuple(int(r) for r in run_ids)
    state = state or LiveCharts(ids, (), service.run_configs(list(ids)), {}, {}, False)
    return laid_out(score_figures(service, state, accuracy), metric_figures(state, accuracy, margin))


def skipped() -> list:
    return [gr.skip() for _ in range(COMPARISON_OUTPUTS + FIGURES)]


def blank() -> list:
    """Every figure output emptied: no line, no table, no chart."""
    return ["", table([]), *[None] * (COMPARISON_OUTPUTS + FIGURES - 2)]


def changed_figures(service, state: LiveCharts, update: LiveUpdate, accuracy: str, margin: str) -> list:
    """The figures a tick's new rows change: none without new rows, else the metric charts of their keys,
    and the pair-score views only when an evaluation was logged (the trainer stores its scores first)."""
    new = [r for rows in update.rows.values() for r in rows]
    if not new:
        return skipped()
    evaluated = any(r.key.startswith(EVALUATED) for r in new)
    scores = score_figures(service, state, accuracy) if evaluated else [gr.skip() for _ in range(4)]
    return laid_out(scores, metric_figures(state, accuracy, margin, {r.key for r in new}))


def refreshed(service, run_ids: list, state, accuracy: str, margin: str, force: bool) -> list:
    """[state, *figures]. Forced (a new choice), or when ``state`` shows other runs or keys: one full read
    and every figure. Otherwise a tick: nothing read or drawn once no selected run was queued or running
    at the last read; else one read of the rows after the cursor and only the figures they change."""
    if not run_ids:  # a choice of nothing clears the charts; a tick leaves them
        return [None, *(blank() if force else skipped())]
    ids, keys = tuple(int(r) for r in run_ids), chart_keys(accuracy, margin)
    if force or not state or not state.shows(ids, keys):
        state = fresh(service, ids, keys)
        return [state, *figures(service, list(ids), state, accuracy, margin)]
    if not state.active:
        return [state, *skipped()]
    state, update = read_new(service, state)
    return [state, *changed_figures(service, state, update, accuracy, margin)]


def kept_selection(service, current) -> gr.Dropdown:
    """The run list afresh, keeping the selected runs that still exist."""
    choices = run_choices(service)
    listed = {value for _, value in choices}
    return gr.Dropdown(choices=choices, value=[r for r in current or [] if r in listed], multiselect=True)


def ticking(is_live, state: LiveCharts | None) -> gr.Timer:
    """The charts' timer ticks only while live and some selected run was queued or running."""
    return gr.Timer(active=bool(is_live and state and state.active))


def wire_live(service, inputs: list, outputs: list, timer: gr.Timer, status: gr.Markdown):
    """Each tick refreshes the live charts (``refreshed``); a picker redraws them all (so does a new
    selection: the tab chains the returned redraw after each event that changes it).
    ``inputs``: the selection, this tab's LiveCharts state, the Live checkbox and the two pickers;
    ``outputs``: the state and the figures. The timer ticks only while a selected run may log more.
    A failure says why in ``status``, clears the charts and the selection (the list read afresh).
    Returns the full redraw's event arguments, for other events to chain."""
    selected, state, live, which_accuracy, which_margin = inputs
    every = [*outputs, timer, selected, status]
    cleared = resetting_errors(
        [None, *blank(), gr.Timer(active=False), Later(lambda: kept_selection(service, []))]
    )

    @cleared
    def on_tick(run_ids, current, is_live, which, margin):
        if not is_live or not run_ids:
            return [current, *skipped(), gr.Timer(active=False), gr.skip(), gr.skip()]
        state, *figures = refreshed(service, run_ids, current, which, margin, False)
        return [state, *figures, ticking(is_live, state), gr.skip(), gr.skip()]

    @cleared
    def redraw(run_ids, current, is_live, which, margin):
        state, *figures = refreshed(service, run_ids, current, which, margin, True)
        return [state, *figures, ticking(is_live, state), gr.skip(), ""]

    # user events only (.input): Gradio 6.31 fires .change again as the answers of its listeners arrive
    for picked in (which_accuracy.input, which_margin.input):
        picked(redraw, inputs, every)
    timer.tick(on_tick, inputs, every)
    live.input(ticking, [live, state], timer)
    return redraw, inputs, every


def delete_view(service, run_ids: list, confirmed: bool) -> list:
    """[status line, the run list afresh (none selected), the confirmation unticked] once the selected runs
    are deleted; a user error when none is selected or the confirmation is not ticked."""
    if not run_ids:
        raise LabError("choose a run above first")
    if not confirmed:
        raise LabError("tick “I understand” to delete the selected runs")
    done = service.delete_runs([int(r) for r in run_ids])
    return [deletion_markdown(done), gr.update(choices=run_choices(service), value=[]), False]


def build_delete(service, selected: gr.Dropdown):
    """The delete button and its confirmation; returns the click's event."""
    return confirmed_delete(
        "the selected runs and their checkpoints", "Delete selected runs", "delete-runs",
        lambda ids, ok: delete_view(service, ids, ok), selected,
    )  # fmt: skip


def build_api(service) -> None:
    """The named endpoint ``run_metrics(run_id, after_step=-1)``: every metric row of a run after a step.
    The service checks both numbers when called (runs created after start-up included)."""

    def run_metrics(run_id: float, after_step: float = -1):
        return [asdict(m) for m in service.metrics(run_id, after_step)]

    api_run = gr.Number(visible=False)
    api_after = gr.Number(-1, visible=False)
    api_out = gr.JSON(visible=False)
    api_button = gr.Button(visible=False)
    api_button.click(shows_errors(run_metrics), [api_run, api_after], api_out, api_name="run_metrics")


def build(service) -> None:
    with gr.Tab("Runs", id="runs") as tab:
        state = gr.State(None)  # this browser tab's LiveCharts
        with gr.Row():
            selected = gr.Dropdown(
                run_choices(service), multiselect=True, label="Runs (several overlay)", elem_id="runs-select"
            )
            reload_runs = gr.Button("Reload run list")
        status = gr.Markdown(elem_id="runs-status")
        hint = gr.Markdown(NOTHING_SELECTED, elem_id="runs-hint")
        with gr.Column(visible=False) as charts:  # shown once a run is selected (``runs_selection``)
            summary = gr.Markdown(elem_id="accuracy-summary")
            with gr.Row():
                live = gr.Checkbox(True, label=f"Live (every {REFRESH_SECONDS:.0f} s)", scale=0)
                which_accuracy = gr.Radio(
                    list(ACCURACIES), value=next(iter(ACCURACIES)), label="Reward accuracy"
                )
                which_margin = gr.Radio(
                    list(MARGINS), value=next(iter(MARGINS)), label="Margin per direction"
                )
            # the table and its chart one above the other, each the page's width: side by side, a wider
            # table squeezed the chart, and a second run's column went off-screen
            accuracy_table = gr.Dataframe(
                interactive=False,
                wrap=True,
                elem_id="direction-accuracy",
                label="Eval reward accuracy per direction",
            )
            accuracy_chart = gr.Plot(elem_id="direction-accuracy-chart")
            with gr.Row(equal_height=True):
                loss, accuracy_plot = gr.Plot(elem_id="loss-chart"), gr.Plot(elem_id="accuracy-chart")
            margins, regimes = gr.Plot(elem_id="margin-chart"), gr.Plot(elem_id="regime-chart")
            with gr.Row(equal_height=True):
                deltas, sweep = gr.Plot(elem_id="delta-chart"), gr.Plot(elem_id="sweep-chart")
            with gr.Row(equal_height=True):
                lr, throughput = gr.Plot(), gr.Plot()
            show_jobs = build_evaluations(service, selected, REFRESH_SECONDS)
            deleted = build_delete(service, selected)
        outputs = [state, summary, accuracy_table, accuracy_chart, loss, accuracy_plot, margins, regimes]
        outputs += [deltas, sweep, lr, throughput]
        timer = gr.Timer(REFRESH_SECONDS, active=False)  # ticks only while a selected run may log more
        inputs = [selected, state, live, which_accuracy, which_margin]
        redraw, inputs, every = wire_live(service, inputs, outputs, timer, status)

        shown = [hint, charts]
        follow(selected.input(redraw, inputs, every), selected, shown, show_jobs)  # a user's pick
        follow(deleted.then(redraw, inputs, every), selected, shown, show_jobs)  # the deleted runs go
        wire_clear(selected, redraw, inputs, every, shown, show_jobs)  # the list's Clear button
        # Coming back to the tab or reloading the list reads the selection afresh: a selected run may have
        # been resumed meanwhile (its rows after the checkpoint replaced), and is watched again.
        for event in (reload_runs.click, tab.select):
            kept = event(lambda current: kept_selection(service, current), selected, selected)
            follow(kept.then(redraw, inputs, every), selected, shown, show_jobs)
        build_api(service)
