"""Runs tab: first, reward accuracy per direction (base → last evaluation) of the selected runs side by
side; then live charts, refreshed with only the rows newer than the last seen step, one colour and one
legend name (objective and differing settings) per run; translation evaluations queued for the worker,
their progress, and chrF base vs trained per direction."""

from __future__ import annotations

import gradio as gr

from app.charts import Point, RunLook, chrf_chart, delta_distribution, line_chart, sweep_or_why
from app.charts_compare import accuracy_bars, margin_chart, regime_chart, renamed
from app.common import markdown_text, run_choices, shows_errors, table
from app.runs_compare import (
    accuracy_columns,
    accuracy_summary,
    accuracy_table_rows,
    run_colour,
    run_looks,
    run_names,
    shared_base,
)
from capo.analysis.sweep import sweep_point

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
COMPARISON_OUTPUTS = 3  # the summary line, the per-direction table, its bar chart
FIGURES = 8

JOB_COLUMNS = ["run", "job", "step", "split", "status", "progress", "error"]
ACTIVE = ("queued", "running")


def fetch_new(service, run_ids: list[int], cache: dict) -> tuple[dict, bool]:
    """Append each run's metric rows newer than the last step seen (``cache`` is this browser tab's state);
    also whether any row was new. A run's points are keyed ``#<id>``, as ``run_looks`` keys its look."""
    cache = {rid: cache.get(rid, {"after": -1, "points": []}) for rid in run_ids}
    grew = False
    for rid, entry in cache.items():
        rows = service.metrics(rid, after_step=entry["after"])
        entry["points"] = entry["points"] + [Point(f"#{rid}", r["step"], r["key"], r["value"]) for r in rows]
        if rows:
            entry["after"], grew = max(r["step"] for r in rows), True
    return cache, grew


def accuracy_keys(accuracy: str) -> list[str]:
    """The chosen accuracy on every split: the training batches, then train, eval, validation evaluations."""
    name = f"rewards/{ACCURACIES.get(accuracy, 'accuracies')}"
    return [name, *(f"{split}_{name}" for split in ("train", "eval", "validation"))]


def comparison_view(service, run_ids: list[int], configs: dict) -> list:
    """[summary line, per-direction accuracy table, its bar chart] from the stored eval pair scores."""
    rows = service.direction_accuracy(run_ids)
    names = run_names(configs)
    looks = {rid: RunLook(name, run_colour(rid)) for rid, name in names.items()}
    shown = table(accuracy_table_rows(rows, names), accuracy_columns(rows, names))
    return [
        markdown_text(accuracy_summary(rows, names)),
        shown,
        accuracy_bars(rows, looks, shared_base(rows)),
    ]


def training_figures(points: list[Point], looks: dict, accuracy: str, objectives: dict, margin: str) -> list:
    """[loss, accuracy, margin, regime shares, learning rate, throughput], one colour per run."""
    names = dict(zip(accuracy_keys(accuracy), SPLIT_NAMES, strict=True))
    title = f"Reward accuracy: {accuracy or next(iter(ACCURACIES))}"
    return [
        line_chart(renamed(points, LOSSES), list(LOSSES.values()), "Loss", looks=looks),
        line_chart(renamed(points, names), list(names.values()), title, looks=looks, y_range=(0, 1)),
        margin_chart(points, looks, objectives, MARGINS.get(margin, False)),
        regime_chart(points, looks),
        line_chart(points, ["learning_rate"], "Learning rate", looks=looks),
        line_chart(points, ["throughput/pairs_per_second"], "Throughput (pairs/s)", looks=looks),
    ]


def sweep_figure(configs: dict, cache: dict, parameter: str = "alpha"):
    """The sweep over the selected runs' ``parameter``, read from this tab's cached metric rows."""
    points = [
        sweep_point(
            float(c["objective"][parameter]), [(p.step, p.key, p.value) for p in cache[rid]["points"]]
        )
        for rid, c in configs.items()
        if c["objective"].get(parameter) is not None and cache.get(rid, {}).get("points")
    ]
    return sweep_or_why(points, parameter, len(configs))


def figures(service, run_ids: list[int], cache: dict, accuracy: str = "", margin: str = "") -> list:
    """Every output of the Runs tab's charts, in the order ``build`` lays them out."""
    configs = service.run_configs(run_ids)
    looks = run_looks(configs)
    points = [p for entry in cache.values() for p in entry["points"]]
    objectives = {f"#{rid}": c["objective"]["name"] for rid, c in configs.items()}
    deltas = {
        looks[f"#{r}"].name: service.deltas(r, "eval", "last") for r in run_ids if service.score_steps(r)
    }
    loss, acc, margins, regimes, lr, throughput = training_figures(
        points, looks, accuracy, objectives, margin
    )
    colours = {look.name: look.colour for look in looks.values()}
    delta_figure = delta_distribution(deltas, "Δr = lw − ll per direction at the latest evaluation", colours)
    return [
        *comparison_view(service, run_ids, configs),
        *[loss, acc, margins, regimes, delta_figure, sweep_figure(configs, cache), lr, throughput],
    ]


def refreshed(service, run_ids: list, cache: dict, accuracy: str, margin: str, force: bool) -> list:
    """[cache, *figures]: reads only rows newer than the cache's; without new rows (and not ``force``)
    every figure is left as it is (``gr.skip()``)."""
    skip = [gr.skip()] * (COMPARISON_OUTPUTS + FIGURES)
    if not run_ids:
        return [cache, *skip]
    ids = [int(r) for r in run_ids]
    cache, grew = fetch_new(service, ids, cache)
    return [cache, *figures(service, ids, cache, accuracy, margin)] if grew or force else [cache, *skip]


def job_rows(evaluations: list) -> list[dict]:
    """Evaluation jobs as table rows; progress counts sentences (total unknown until the job starts)."""
    return [
        {
            "run": f"#{e.run_id}",
            "job": e.id,
            "step": e.step if e.evaluated_step is None else f"{e.step} → {e.evaluated_step}",
            "split": e.split,
            "status": e.status,
            "progress": f"{e.done}/{'?' if e.total is None else e.total} sentences",
            "error": e.error or "",
        }
        for e in evaluations
    ]


def evaluation_view(service, run_ids: list, split: str) -> list:
    """[some job still queued or running, the jobs table, chrF of the first selected run on ``split``]."""
    ids = [int(r) for r in run_ids or []]
    rows = job_rows([e for rid in ids for e in service.evaluations(rid)])
    title = f"chrF per direction · run #{ids[0]} · {split} split" if ids else ""
    chart = chrf_chart(service.direction_chrf(ids[0], split) if ids else [], title)
    return [any(r["status"] in ACTIVE for r in rows), table(rows, JOB_COLUMNS), chart]


def build_evaluations(service, selected: gr.Dropdown, timer: gr.Timer) -> None:
    """Evaluate the first selected run's translations; ``timer`` refreshes the jobs while one is active."""
    watching = gr.State(False)  # this tab's: some job shown is queued or running
    with gr.Row():
        split = gr.Radio(["eval", "validation"], value="eval", label="Split to translate", scale=1)
        evaluate = gr.Button("Evaluate translations", elem_id="evaluate-translations", scale=0)
        message = gr.Markdown("Translates the split with the first selected run's last adapter and the base.")
    with gr.Row():
        jobs = gr.Dataframe(interactive=False, elem_id="evaluation-jobs", label="Translation evaluations")
        chrf = gr.Plot(elem_id="chrf-chart")
    outputs = [watching, jobs, chrf]

    @shows_errors
    def on_evaluate(run_ids, which):
        if not run_ids:
            raise gr.Error("choose a run above first")
        job = service.evaluate_translations(int(run_ids[0]), which)
        queued = f"Queued evaluation {job}: run #{int(run_ids[0])}, {which} split."
        return [queued, *evaluation_view(service, run_ids, which)]

    @shows_errors
    def on_tick(run_ids, active, which):
        return evaluation_view(service, run_ids, which) if active else [gr.skip()] * len(outputs)

    show = shows_errors(lambda run_ids, which: evaluation_view(service, run_ids, which))
    evaluate.click(on_evaluate, [selected, split], [message, *outputs])
    timer.tick(on_tick, [selected, watching, split], outputs)
    for trigger in (selected.change, split.change):
        trigger(show, [selected, split], outputs)


def build(service) -> None:
    with gr.Tab("Runs", id="runs") as tab:
        cache = gr.State({})
        with gr.Row():
            selected = gr.Dropdown(
                run_choices(service), multiselect=True, label="Runs (several overlay)", elem_id="runs-select"
            )
            reload_runs = gr.Button("Reload run list")
        summary = gr.Markdown(elem_id="accuracy-summary")
        with gr.Row():
            accuracy_table = gr.Dataframe(
                interactive=False, elem_id="direction-accuracy", label="Eval reward accuracy per direction"
            )
            accuracy_chart = gr.Plot(elem_id="direction-accuracy-chart")
        with gr.Row():
            live = gr.Checkbox(True, label=f"Live (every {REFRESH_SECONDS:.0f} s)")
            which_accuracy = gr.Radio(list(ACCURACIES), value=next(iter(ACCURACIES)), label="Reward accuracy")
            which_margin = gr.Radio(list(MARGINS), value=next(iter(MARGINS)), label="Margin per direction")
        with gr.Row():
            loss, accuracy_plot = gr.Plot(elem_id="loss-chart"), gr.Plot(elem_id="accuracy-chart")
        margins, regimes = gr.Plot(elem_id="margin-chart"), gr.Plot(elem_id="regime-chart")
        with gr.Row():
            deltas, sweep = gr.Plot(), gr.Plot(elem_id="sweep-chart")
        with gr.Row():
            lr, throughput = gr.Plot(), gr.Plot()
        outputs = [cache, summary, accuracy_table, accuracy_chart, loss, accuracy_plot, margins, regimes]
        outputs += [deltas, sweep, lr, throughput]
        timer = gr.Timer(REFRESH_SECONDS)
        build_evaluations(service, selected, timer)
        choices = [selected, cache, which_accuracy, which_margin]

        @shows_errors
        def on_tick(run_ids, state, is_live, which, margin):
            return refreshed(service, run_ids if is_live else [], state, which, margin, False)

        redraw = shows_errors(lambda ids, st, w, m: refreshed(service, ids, st, w, m, True))
        selected.change(lambda ids, st, w, m: redraw(ids, {}, w, m), choices, outputs)
        for picker in (which_accuracy, which_margin):
            picker.change(redraw, choices, outputs)
        timer.tick(on_tick, [selected, cache, live, which_accuracy, which_margin], outputs)
        reload_runs.click(lambda: gr.Dropdown(choices=run_choices(service)), None, selected)
        tab.select(lambda: gr.Dropdown(choices=run_choices(service)), None, selected)

        @shows_errors
        def run_metrics(run_id: float, after_step: float = -1):
            return service.metrics(int(run_id), int(after_step))

        api_run = gr.Number(visible=False)
        api_after = gr.Number(-1, visible=False)
        api_out = gr.JSON(visible=False)
        api_button = gr.Button(visible=False)
        api_button.click(run_metrics, [api_run, api_after], api_out, api_name="run_metrics")
