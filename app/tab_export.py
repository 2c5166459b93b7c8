"""Export tab: a run's adapter (zip), config and metrics CSV."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from app.common import FormProblems, inline_errors, markdown_text, run_choices


def exporter(service):
    """The button's action: outputs the zip to download, then the status line."""

    @inline_errors(outputs=1)
    def export(run_id):
        if not run_id:
            raise FormProblems([("Run", "choose a run")])
        path = service.export_zip(int(run_id))
        return path, f"Built {markdown_text(Path(path).name)}"

    return export


def build(service) -> None:
    with gr.Tab("Export", id="export") as tab:
        gr.Markdown(
            "The zip holds one folder: a PEFT adapter (`PeftModel.from_pretrained(base, folder)` loads it; "
            "its `base_model_name_or_path` is the run's model id), `run_config.json` (the run's config, "
            "and its dataset's sources, import options and fingerprint) and `metrics.csv`."
        )
        run = gr.Dropdown(run_choices(service), label="Run")
        with gr.Row():
            button = gr.Button("Build the zip", elem_id="export-button", scale=1)
            status = gr.Markdown(elem_id="export-status")
        download = gr.File(label="Download")
        button.click(exporter(service), run, [download, status])
        tab.select(lambda: gr.Dropdown(choices=run_choices(service)), None, run)
