"""Runs tab: live charts of several runs, refreshed with only the rows newer than the last seen step."""

from __future__ import annotations

import gradio as gr

from app.charts import Point, delta_distribution, direction_keys, line_chart, sweep_chart
from app.common import run_choices, shows_errors

REFRESH_SECONDS = 2.0
ACCURACIES = {
    "lw > ll (the paper's)": "accuracies",
    "per token, lw/|y_w| > ll/|y_l| (SimPO's)": "accuracies_per_token",
    "vs base, (lw − lw₀) − (ll − ll₀) > 0 (DPO's)": "accuracies_vs_base",
}


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
        gr.Timer(REFRESH_SECONDS).tick(refresh, [selected, cache, live, which_accuracy], [cache, *plots])
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
