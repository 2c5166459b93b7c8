"""Export tab: a run's adapter (zip), config and metrics CSV."""

from __future__ import annotations

import gradio as gr

from app.common import run_choices, shows_errors


def build(service) -> None:
    with gr.Tab("Export", id="export") as tab:
        gr.Markdown(
            "The zip holds a PEFT adapter folder (`PeftModel.from_pretrained(base, folder)` loads it), "
            "`run_config.json` and `metrics.csv`."
        )
        run = gr.Dropdown(run_choices(service), label="Run")
        button = gr.Button("Build the zip")
        download = gr.File(label="Download")

        @shows_errors
        def export(run_id):
            if not run_id:
                raise gr.Error("choose a run")
            return service.export_zip(int(run_id))

        button.click(export, run, download)
        tab.select(lambda: gr.Dropdown(choices=run_choices(service)), None, run)
