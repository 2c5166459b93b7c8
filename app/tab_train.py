"""Train tab: a form generated from RunConfig, presets as starting points, submit or sweep, the queue."""

from __future__ import annotations

import gradio as gr

from app.common import shows_errors
from app.config_form import (
    OBJECTIVE_PARAMS,
    OBJECTIVES,
    SECTIONS,
    component,
    form_fields,
    raw_config,
    values_of,
    visible_objective_params,
)
from app.tables import queue_frame

FIRST_PRESET = "paper-cpu"  # the paper's recipe on the embedded model: results that mean something


def _study_controls() -> tuple[list[gr.components.Component], gr.Button]:
    """A study: this form's run, crossed with objectives, seeds and other factors, queued in one action."""
    with gr.Accordion("…or a study: the form above × objectives × seeds × factors", open=False):
        with gr.Row():
            name = gr.Textbox(label="Study name", placeholder="capo-vs-dpo")
            objectives = gr.CheckboxGroup(list(OBJECTIVES), value=["capo", "dpo"], label="Objectives")
            seeds = gr.Textbox(label="Seeds", placeholder="0,1,2")
        vary = gr.Textbox(label="Other factors, one per line", placeholder="objective.alpha=0.5,1,2", lines=2)
        button = gr.Button("Validate and queue the study", elem_id="launch-study-button")
    return [name, objectives, seeds, vary], button


def build(service) -> None:
    fields = form_fields()
    presets = service.presets()
    start = service.preset(FIRST_PRESET) if FIRST_PRESET in presets else None
    initial = values_of(start, fields) if start else [None] * len(fields)
    with gr.Tab("Train", id="train"):
        preset = gr.Dropdown(
            list(presets), value=FIRST_PRESET if start else None, label="Start from a preset"
        )
        components = {}
        with gr.Row():
            for section in ["", "objective", *SECTIONS]:
                with gr.Column(min_width=180):
                    gr.Markdown(f"**{section or 'run'}**")
                    for i, f in enumerate(fields):
                        if f.section == section:
                            hidden = (
                                f.section == "objective"
                                and f.name != "name"
                                and start is not None
                                and (f.name not in start.objective.model_fields)
                            )
                            components[i] = component(f, initial[i], visible=not hidden)
        inputs = [components[i] for i in range(len(fields))]
        objective_name = components[
            next(i for i, f in enumerate(fields) if (f.section, f.name) == ("objective", "name"))
        ]
        param_boxes = [
            components[next(i for i, f in enumerate(fields) if (f.section, f.name) == ("objective", p))]
            for p in OBJECTIVE_PARAMS
        ]
        with gr.Row():
            sweep = gr.Textbox(
                label="Sweep (optional): one run per value", placeholder="objective.alpha=0.5,1,2,3,4"
            )
            launch = gr.Button("Validate and queue", variant="primary", elem_id="launch-button")
        study_inputs, study_button = _study_controls()
        launched = gr.Markdown()
        gr.Markdown("### Queue")
        queue = gr.Dataframe(queue_frame(service.runs()), interactive=False, elem_id="queue-table")
        with gr.Row():
            run_id = gr.Number(label="Run id", precision=0)
            cancel = gr.Button("Cancel")
            resume = gr.Button("Resume")
            refresh = gr.Button("Refresh")
        action = gr.Markdown()

        def on_objective(name):
            return [gr.update(visible=v) for v in visible_objective_params(name)]

        objective_name.change(on_objective, objective_name, param_boxes)

        @shows_errors
        def on_preset(name):
            return values_of(service.preset(name), fields)

        preset.change(on_preset, preset, inputs)

        @shows_errors
        def do_launch(sweep_text, *values):
            raw = raw_config(fields, list(values))
            service.validate(raw)
            ids = service.launch(raw, sweep_text.strip() or None)
            return f"Queued run(s) {', '.join(f'#{i}' for i in ids)}", queue_frame(service.runs())

        launch.click(do_launch, [sweep, *inputs], [launched, queue], api_name="launch_run")

        @shows_errors
        def do_study(name, objectives, seeds, vary, *values):
            raw = raw_config(fields, list(values))
            study_id, ids = service.launch_study(raw, name, objectives or [], seeds, vary)
            return f"Queued study #{study_id}: run(s) {', '.join(f'#{i}' for i in ids)}", queue_frame(
                service.runs()
            )

        study_button.click(do_study, [*study_inputs, *inputs], [launched, queue], api_name="launch_study")

        @shows_errors
        def do_cancel(rid):
            return f"run {int(rid)}: {service.cancel(int(rid))}", queue_frame(service.runs())

        @shows_errors
        def do_resume(rid):
            step = service.resume(int(rid))
            return f"run {int(rid)} queued again from step {step or 0}", queue_frame(service.runs())

        cancel.click(do_cancel, run_id, [action, queue])
        resume.click(do_resume, run_id, [action, queue])
        refresh.click(lambda: queue_frame(service.runs()), None, queue)
        gr.Timer(3.0).tick(lambda: queue_frame(service.runs()), None, queue)
