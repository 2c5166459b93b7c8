"""Export tab: a run's adapter (zip), config and metrics CSV.

The zip is written under ``$CAPO_LAB_HOME/exports`` (``capo_lab.exports.export_zip``), which is
registered as a static path: Gradio serves it from there instead of copying it to its own temp
folder, and exports older than a day go when a new one is written."""

from __future__ import annotations

import gradio as gr

from app.common import FormProblems, inline_errors, markdown_text, run_choices
from capo_lab import exports
from capo_lab.model_card import EMBEDDED_BASES

STEP_LABEL = "Checkpoint step (optional)"


def checked_step(step) -> int | None:
    """The step box's value: None when empty, else a whole number of 0 or more."""
    if step is None or (isinstance(step, str) and not step.strip()):
        return None
    try:
        number = float(step)
    except (TypeError, ValueError):
        number = float("nan")
    if not number.is_integer() or number < 0:
        raise FormProblems([(STEP_LABEL, "a whole number of 0 or more, or empty for a finished run's last")])
    return int(number)


def exporter(service):
    """The button's action: outputs the zip to download, then the status line."""

    @inline_errors(outputs=1)
    def export(run_id, step=None):
        problems = [] if run_id else [("Run", "choose a run")]
        try:
            at = checked_step(step)
        except FormProblems as err:
            problems += err.problems
        if problems:
            raise FormProblems(problems)
        done = service.export_zip(int(run_id), at)
        return str(done.path), (
            f"Built {markdown_text(done.path.name)}: run {done.run_id} ({markdown_text(done.status)}) "
            f"at step {done.step}"
        )

    return export


def export_help(settings) -> str:
    """What the zip holds, where it is written, and where the embedded base model lives."""
    models = settings.home_dir / "models"
    bases = ", ".join(f"`{name}` (upstream `{hub}`)" for name, (hub, _) in EMBEDDED_BASES.items())
    return (
        "The zip holds one folder: a PEFT adapter (`PeftModel.from_pretrained(base, folder)` loads it; "
        "its `base_model_name_or_path` is the run's model id), `README.md` (a Hub model card: base "
        "model, objective, data, reward accuracy at the exported step with intervals, how to load), "
        "`run_config.json` (the run's config, its dataset's sources, import options and fingerprint, "
        "and the run's status and the adapter's step) and `metrics.csv`. A finished run exports its "
        "last checkpoint; a run that has not finished needs a checkpoint step (metrics.csv then stops "
        f"at that step). Zips are written under {markdown_text(exports.exports_dir(settings))} and "
        "removed a day later.\n\n"
        f"The embedded base, {bases}, is no name `from_pretrained` finds offline: the lab keeps it "
        f"converted in {markdown_text(models / '<name>')}; `capo.models.embedded_gemma_folder(Path(...))` "
        f"given {markdown_text(models)} returns that folder "
        "(converting the packaged GGUF where it is missing), and `AutoModelForCausalLM.from_pretrained` "
        "loads it. The card's last section shows the lines."
    )


def build(service) -> None:
    gr.set_static_paths([exports.exports_dir(service.settings)])
    with gr.Tab("Export", id="export") as tab:
        gr.Markdown(export_help(service.settings), elem_id="export-help")
        with gr.Row():
            run = gr.Dropdown(run_choices(service), label="Run")
            step = gr.Number(None, label=STEP_LABEL, precision=0, elem_id="export-step")
        with gr.Row():
            button = gr.Button("Build the zip", elem_id="export-button", scale=1)
            status = gr.Markdown(elem_id="export-status")
        download = gr.File(label="Download")
        button.click(exporter(service), [run, step], [download, status])
        tab.select(lambda: gr.Dropdown(choices=run_choices(service)), None, run)
