"""Studies tab: a study's report (the same figures as ``capo-lab report --format html``), its runs with
their status, and the runs not finished yet. Reads only ``LabService.studies`` and ``.study_report``."""

from __future__ import annotations

import gradio as gr

from app.common import markdown_text, shows_errors, table
from capo_lab.report_figures import ITEM_KEYS, ReportItem, report_items

NO_STUDY = "Pick a study above (a grid of runs: `capo-lab study CONFIG --name NAME --objectives capo,dpo`)."
RUN_COLUMNS = ["id", "run", "arm", "seed", "status", "step"]
SPLITS = ["eval", "validation"]


def study_choices(service) -> list[tuple[str, int]]:
    return [(f"#{s.id} {s.name} · {len(s.run_ids)} runs", s.id) for s in service.studies()]


def summary_markdown(report) -> str:
    """The study's name, split and step, and the runs still missing from the figures."""
    missing = ", ".join(markdown_text(m) for m in report.missing) or "none, every run has finished"
    return (
        f"### Study #{report.study_id}: {markdown_text(report.study)}\n"
        f"{markdown_text(report.split)} split, step {markdown_text(report.step)} · "
        f"arms: {', '.join(markdown_text(a) for a in report.arms)}\n\n"
        f"**Not finished (left out of the figures):** {missing}"
    )


def run_rows(report) -> list[dict]:
    return [
        {"id": r.run_id, "run": r.name, "arm": r.arm, "seed": r.seed, "status": str(r.status), "step": r.step}
        for r in report.runs
    ]


def item_markdown(item: ReportItem) -> str:
    text = f"#### {markdown_text(item.heading)}\n{markdown_text(item.about)}"
    return text if item.note is None else f"{text}\n\n*No figure: {markdown_text(item.note)}.*"


def blank_view() -> list:
    items = [[gr.update(value=""), gr.update(value=None, visible=False)] for _ in ITEM_KEYS]
    return [NO_STUDY, table([], RUN_COLUMNS), *(x for pair in items for x in pair)]


def report_view(service, study_id, step: str, split: str) -> list:
    """[summary, runs table, then per item its heading Markdown and its plot (hidden when it has none)]."""
    if study_id is None or study_id == "":
        return blank_view()
    step = str(step or "best").strip()
    report = service.study_report(int(study_id), step=step, split=split or "eval")
    out = [summary_markdown(report), table(run_rows(report), RUN_COLUMNS)]
    for item in report_items(report):
        out += [item_markdown(item), gr.update(value=item.figure, visible=item.figure is not None)]
    return out


def build(service) -> None:
    with gr.Tab("Studies", id="studies") as tab:
        with gr.Row():
            study = gr.Dropdown(study_choices(service), value=None, label="Study", elem_id="study-select")
            step = gr.Dropdown(
                ["best", "last"], value="best", allow_custom_value=True, label="Step (best, last or a number)"
            )
            split = gr.Radio(SPLITS, value="eval", label="Split")
            show = gr.Button("Show report", elem_id="show-study-report", scale=0)
        summary = gr.Markdown(NO_STUDY, elem_id="study-summary")
        runs = gr.Dataframe(table([], RUN_COLUMNS), interactive=False, label="Runs", elem_id="study-runs")
        outputs = [summary, runs]
        for key in ITEM_KEYS:
            outputs += [gr.Markdown(), gr.Plot(visible=False, elem_id=f"study-fig-{key}")]
        view = shows_errors(lambda s, st, sp: report_view(service, s, st, sp))
        for trigger in (show.click, study.change, split.change):
            trigger(view, [study, step, split], outputs)
        tab.select(lambda: gr.Dropdown(choices=study_choices(service)), None, study)
