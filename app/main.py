"""Assemble the tabs into one Gradio Blocks app; nothing else lives here."""

from __future__ import annotations

import gradio as gr

from app import tab_data, tab_export, tab_inspect, tab_runs, tab_studies, tab_train

CSS = """
.heatmap { line-height: 1.9; font-family: ui-monospace, monospace; white-space: pre-wrap; }
.heatmap .tok { padding: 1px 0; border-radius: 2px; }
.diff del { background: #fee2e2; } .diff ins { background: #dcfce7; text-decoration: none; }
#preview-pair td { white-space: pre-wrap; padding: 4px 8px; }
"""


def build_app(service) -> gr.Blocks:
    with gr.Blocks(title="CAPO Lab") as demo:
        gr.Markdown(
            "# CAPO Lab\nMultilingual preference optimization on MTPE data: CAPO, DPO, SimPO, DPO+NLL."
        )
        with gr.Tabs():
            tab_data.build(service)
            tab_train.build(service)
            tab_runs.build(service)
            tab_studies.build(service)
            tab_inspect.build(service)
            tab_export.build(service)
    return demo
