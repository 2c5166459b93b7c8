"""Runs tab: live charts of several runs, refreshed with only the rows newer than the last seen step;
translation evaluations queued for the worker, their progress, and chrF base vs trained per direction."""

from __future__ import annotations

import gradio as gr

from app.charts import Point, chrf_chart, delta_distribution, direction_keys, line_chart, sweep_chart
from app.common import run_choices, shows_errors, table

REFRESH_SECONDS = 2.0
ACCURACIES = {
    "lw > ll (the paper's)": "accuracies",
    "per token, lw/|y_w| > ll/|y_l| (SimPO's)": "accuracies_per_token",
    "vs base, (lw − lw₀) − (ll − ll₀) > 0 (DPO's)": "accuracies_vs_base",
}

JOB_COLUMNS = ["run", "job", "step", "split", "status", "progress", "error"]
ACTIVE = ("queued", "running")


def fetch_new(service, run_ids: list[int], cache: dict) -> dict:
    """Append each run's metric rows newer than the last step seen; ``cache`` is this browser tab's state."""
    cache = {rid: cache.get(rid, {"after": -1, "points": []}) for rid in run_ids}
    for rid, entry in cache.items():
        label = service.run_label(rid)
        rows = service.metrics(rid, after_step=entry["after"])
        entry["points"] = entry["points"] + [Point(label, r["step"], r["key"], r["value"]) for r in rows]
        if rows:
            entry["after"] = max(r["step"] for r in rows)
    return cache


def accuracy_keys(accuracy: str) -> list[str]:
    """The chosen accuracy on every split: the training batches, then train, eval, validation evaluations."""
    name = f"rewards/{ACCURACIES.get(accuracy, 'accuracies')}"
    return [name, *(f"{split}_{name}" for split in ("train", "eval", "validation"))]


def figures(service, run_ids: list[int], cache: dict, accuracy: str = "") -> list:
    points = [p for entry in cache.values() for p in entry["points"]]
    margins = direction_keys(points, "eval_rewards/margins")
    deltas = {}
    for rid in run_ids:
        if service.score_steps(rid, "eval"):
            deltas[service.run_label(rid)] = service.deltas(rid, "eval", "last")
    sweep = service.sweep_rows(run_ids) if len(run_ids) > 1 else []
    return [
        line_chart(points, ["loss", "eval_loss"], "Loss"),
        line_chart(points, accuracy_keys(accuracy), f"Reward accuracy: {accuracy or next(iter(ACCURACIES))}"),
        line_chart(points, margins, "Eval reward margin per language"),
        delta_distribution(deltas, "Δr per direction at the latest evaluation"),
        line_chart(points, ["learning_rate"], "Learning rate"),
        line_chart(points, ["throughput/pairs_per_second"], "Throughput (pairs/s)"),
        sweep_chart(sweep, "alpha"),
    ]


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
        with gr.Row():
            live = gr.Checkbox(True, label=f"Live (every {REFRESH_SECONDS:.0f} s)")
            which_accuracy = gr.Radio(list(ACCURACIES), value=next(iter(ACCURACIES)), label="Reward accuracy")
        with gr.Row():
            loss, accuracy_plot = gr.Plot(elem_id="loss-chart"), gr.Plot()
        with gr.Row():
            margins, deltas = gr.Plot(), gr.Plot()
        with gr.Row():
            lr, throughput, sweep = gr.Plot(), gr.Plot(), gr.Plot()
        plots = [loss, accuracy_plot, margins, deltas, lr, throughput, sweep]
        timer = gr.Timer(REFRESH_SECONDS)
        build_evaluations(service, selected, timer)

        @shows_errors
        def refresh(run_ids, state, is_live=True, which=""):
            if not run_ids or not is_live:
                return [state, *[gr.skip()] * len(plots)]
            state = fetch_new(service, [int(r) for r in run_ids], state)
            return [state, *figures(service, [int(r) for r in run_ids], state, which)]

        selected.change(
            lambda ids, st, w: refresh(ids, {}, True, w), [selected, cache, which_accuracy], [cache, *plots]
        )
        which_accuracy.change(
            lambda ids, st, w: refresh(ids, st, True, w), [selected, cache, which_accuracy], [cache, *plots]
        )
        timer.tick(refresh, [selected, cache, live, which_accuracy], [cache, *plots])
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
