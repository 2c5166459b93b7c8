"""Train tab: a form generated from RunConfig, presets as starting points, submit or sweep, the queue.

Every invalid field is reported at once, under the form's own labels, in the status line under
the buttons; a failed action leaves the form and the queue as they were."""

from __future__ import annotations

from typing import Any

import gradio as gr
import yaml

from app.common import FormProblems, inline_errors, markdown_text
from app.config_form import (
    OBJECTIVE_PARAMS,
    OBJECTIVES,
    SECTIONS,
    FormField,
    component,
    form_fields,
    form_value,
    raw_config,
    values_of,
    visible_objective_params,
)
from app.inline import whole_id
from app.tables import queue_facts, queue_frame, queue_table
from capo.config import RunConfig
from capo_lab.errors import Problems

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


def form_key(f: FormField) -> str:
    """The config key a form field sets (``train.batch_size``; ``name`` for the run's name)."""
    return f"{f.section}.{f.name}" if f.section else f.name


def form_config(fields: list[FormField], values: list[Any], labels: dict[str, str]) -> dict[str, Any]:
    """The raw config the form's values make; FormProblems for YAML text that does not parse and for
    a missing objective, each under its field's label."""
    bad = []
    for f, value in zip(fields, values, strict=True):
        try:
            form_value(f, value)
        except yaml.YAMLError as err:
            bad.append((labels[form_key(f)], f"not valid YAML ({' '.join(str(err).split())[:120]})"))
    objective = values[next(i for i, f in enumerate(fields) if form_key(f) == "objective.name")]
    if objective not in OBJECTIVES:
        bad.append((labels["objective.name"], f"choose one of {', '.join(OBJECTIVES)}"))
    if bad:
        raise FormProblems(bad)
    return raw_config(fields, values)


def checked_config(service, fields: list[FormField], values: list[Any], labels: dict[str, str]) -> RunConfig:
    """The form's config, validated once by the service (``LabService.checked_config``); else
    FormProblems naming every invalid field by its label."""
    try:
        return service.checked_config(form_config(fields, values, labels))
    except Problems as err:
        raise FormProblems([(labels.get(key, key), message) for key, message in err.problems]) from None


def study_config(
    service, fields: list[FormField], values: list[Any], labels: dict[str, str], name
) -> RunConfig:
    """``checked_config`` for a study, whose name is checked with the form's fields."""
    missing = [] if (name or "").strip() else [("Study name", "a study needs a name")]
    try:
        raw = checked_config(service, fields, values, labels)
    except FormProblems as err:
        raise FormProblems([*err.problems, *missing]) from None
    if missing:
        raise FormProblems(missing)
    return raw


def queued_text(ids: list[int], study_id: int | None = None) -> str:
    runs = ", ".join(f"#{i}" for i in ids)
    return f"Queued study #{study_id}: run(s) {runs}" if study_id is not None else f"Queued run(s) {runs}"


def run_number(rid: str | None) -> int:
    """The run id box's text as an id: empty asks for one, anything else is ``whole_id``'s to check."""
    if rid is None or not str(rid).strip():
        raise FormProblems([("Run id", "give the id of a run in the queue")])
    return whole_id("run id", rid)


def build(service) -> None:
    fields = form_fields()
    presets = service.presets()
    start = service.preset(FIRST_PRESET) if FIRST_PRESET in presets else None
    initial = values_of(start, fields) if start else [None] * len(fields)
    with gr.Tab("Train", id="train") as tab:
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
                                and (f.name not in type(start.objective).model_fields)
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
        launched = gr.Markdown(elem_id="launch-status")
        queue, watch = _queue_section(service, tab)

        def on_objective(name):
            return [gr.update(visible=v) for v in visible_objective_params(name)]

        objective_name.change(on_objective, objective_name, param_boxes)

        labels = {form_key(f): components[i].label or form_key(f) for i, f in enumerate(fields)}

        @inline_errors(outputs=len(inputs))
        def on_preset(name):
            return *values_of(service.preset(name), fields), ""

        preset.change(on_preset, preset, [*inputs, launched])

        @inline_errors(outputs=1)
        def do_launch(sweep_text, *values):
            cfg = checked_config(service, fields, list(values), labels)
            ids = service.launch(cfg, (sweep_text or "").strip() or None)
            return queue_table(service), queued_text(ids)

        launch.click(do_launch, [sweep, *inputs], [queue, launched], api_name="launch_run").then(*watch)

        @inline_errors(outputs=1)
        def do_study(name, objectives, seeds, vary, *values):
            cfg = study_config(service, fields, list(values), labels, name)
            study_id, ids = service.launch_study(cfg, name, objectives or [], seeds, vary)
            return queue_table(service), queued_text(ids, study_id)

        study = study_button.click(
            do_study, [*study_inputs, *inputs], [queue, launched], api_name="launch_study"
        )
        study.then(*watch)


QUEUE_SECONDS = 3.0
BUSY = ("queued", "running")


def watched_queue(service) -> tuple:
    """[the queue, its timer ticking only while some run is queued or running]."""
    found = service.runs()
    return queue_frame(found, facts=queue_facts(service, found)), gr.Timer(
        active=any(r.status in BUSY for r in found)
    )


def _queue_section(service, tab: gr.Tab) -> tuple[gr.Dataframe, tuple]:
    """The queue, refreshed every few seconds while a run is queued or running (an idle tab asks the
    server nothing), with cancel and resume by run id; runs queued elsewhere show on Refresh or when
    the tab is opened again. Returns the queue and the (function, inputs, outputs) of a refresh that
    sets the timer going, for other actions to chain."""
    gr.Markdown("### Queue")
    queue = gr.Dataframe(queue_table(service), interactive=False, elem_id="queue-table")
    with gr.Row():
        run_id = gr.Textbox("", label="Run id", placeholder="e.g. 3", elem_id="queue-run-id")  # not 0
        cancel = gr.Button("Cancel", elem_id="queue-cancel")
        resume = gr.Button("Resume", elem_id="queue-resume")
        refresh = gr.Button("Refresh")
    action = gr.Markdown(elem_id="queue-status")
    timer = gr.Timer(QUEUE_SECONDS, active=False)
    watch = (lambda: watched_queue(service), None, [queue, timer])

    @inline_errors(outputs=1)
    def do_cancel(rid):
        rid = run_number(rid)
        return queue_table(service), f"run {rid}: {markdown_text(service.cancel(rid))}"

    @inline_errors(outputs=1)
    def do_resume(rid):
        rid = run_number(rid)
        step = service.resume(rid)
        return queue_table(service), f"run {rid} queued again from step {step or 0}"

    cancel.click(do_cancel, run_id, [queue, action]).then(*watch)
    resume.click(do_resume, run_id, [queue, action]).then(*watch)
    for event in (refresh.click, timer.tick, tab.select, demo_load()):
        event(*watch)
    return queue, watch


def demo_load():
    """The enclosing Blocks' load event (a page opened or reloaded)."""
    return gr.context.Context.root_block.load
