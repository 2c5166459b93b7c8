"""Studies tab: a study's report (the same figures as ``capo-lab report --format html``), its runs with
their status, and the runs not finished yet; reads only ``LabService.studies`` and ``.study_report``.
Deleting the study (``LabService.delete_study``: its runs and their checkpoints too) needs a ticked
confirmation."""

from __future__ import annotations

import gradio as gr

from app.common import markdown_text, table
from app.deletion import confirmed_delete, deletion_markdown
from app.inline import resetting_errors
from capo_lab.errors import LabError
from capo_lab.report_figures import ITEM_KEYS, ReportItem, report_items
from capo_lab.report_text import method_lines, verdict

NO_STUDY = "Pick a study above (a grid of runs: `capo-lab study CONFIG --name NAME --objectives capo,dpo`)."
RUN_COLUMNS = ["id", "run", "arm", "seed", "status", "step", "step chosen on"]
COMPARISON_COLUMNS = ["A", "B", "direction", "A − B", "95 % interval", "n", "p", "p (Holm)", "verdict"]
SPLITS = ["eval", "validation"]
ENDPOINTS = ["accuracies", "accuracies_per_token", "accuracies_vs_base"]


def study_choices(service) -> list[tuple[str, int]]:
    return [(f"#{s.id} {s.name} · {len(s.run_ids)} runs", s.id) for s in service.studies()]


def summary_markdown(report) -> str:
    """The study's name, split and step, and the runs still missing from the figures."""
    missing = ", ".join(markdown_text(m) for m in report.missing) or "none, every run has finished"
    return (
        f"### Study #{report.study_id}: {markdown_text(report.study)}\n"
        f"{markdown_text(report.split)} split, step {markdown_text(report.step)} · "
        f"arms: {', '.join(markdown_text(a) for a in report.arms)}\n\n"
        f"**Not finished (left out of the figures):** {missing}\n\n"
        "**Method.** " + "; ".join(markdown_text(line) for line in method_lines(report))
    )


def run_rows(report) -> list[dict]:
    return [
        {"id": r.run_id, "run": r.name, "arm": r.arm, "seed": r.seed, "status": str(r.status), "step": r.step,
         "step chosen on": r.chosen_on or "—"}
        for r in report.runs
    ]  # fmt: skip


def comparison_rows(report) -> list[dict]:
    """Every comparison, the primary endpoint (all directions) first, with raw and Holm p."""
    ordered = sorted(report.comparisons, key=lambda c: c.direction != "all")
    return [
        {"A": c.arm_a, "B": c.arm_b, "direction": c.direction, "A − B": round(c.difference.estimate, 3),
         "95 % interval": f"[{c.difference.low:+.3f}, {c.difference.high:+.3f}]", "n": c.difference.n,
         "p": round(c.p_value, 4), "p (Holm)": round(c.p_holm, 4), "verdict": verdict(c)}
        for c in ordered
    ]  # fmt: skip


def item_markdown(item: ReportItem) -> str:
    text = f"#### {markdown_text(item.heading)}\n{markdown_text(item.about)}"
    return text if item.note is None else f"{text}\n\n*No figure: {markdown_text(item.note)}.*"


def blank_view() -> list:
    items = [[gr.update(value=""), gr.update(value=None, visible=False)] for _ in ITEM_KEYS]
    empty = [table([], RUN_COLUMNS), table([], COMPARISON_COLUMNS)]
    return [NO_STUDY, *empty, *(x for pair in items for x in pair)]


def report_view(service, study_id, step: str, split: str, endpoint: str = "accuracies") -> list:
    """[summary, runs table, comparisons table, then per item its heading Markdown and its plot (hidden
    when it has none)]."""
    if study_id is None or study_id == "":
        return blank_view()
    step = str(step or "best").strip()
    report = service.study_report(
        int(study_id), step=step, split=split or "eval", endpoint=endpoint or "accuracies"
    )
    out = [summary_markdown(report), table(run_rows(report), RUN_COLUMNS)]
    out.append(table(comparison_rows(report), COMPARISON_COLUMNS))
    for item in report_items(report):
        out += [item_markdown(item), gr.update(value=item.figure, visible=item.figure is not None)]
    return out


def delete_view(service, study_id, confirmed: bool) -> list:
    """[status line, the study list afresh (none picked), the confirmation unticked] once the study is
    deleted; a user error when none is picked or the confirmation is not ticked."""
    if study_id is None or study_id == "":
        raise LabError("pick a study above first")
    if not confirmed:
        raise LabError("tick “I understand” to delete the study")
    done = service.delete_study(int(study_id))
    return [deletion_markdown(done), gr.update(choices=study_choices(service), value=None), False]


def build_delete(service, study: gr.Dropdown):
    """The delete button and its confirmation; returns the click's event."""
    return confirmed_delete(
        "the study, its runs and their checkpoints", "Delete study", "delete-study",
        lambda s, ok: delete_view(service, s, ok), study,
    )  # fmt: skip


def build(service) -> None:
    with gr.Tab("Studies", id="studies") as tab:
        with gr.Row():
            study = gr.Dropdown(study_choices(service), value=None, label="Study", elem_id="study-select")
            step = gr.Dropdown(
                ["best", "last"], value="best", allow_custom_value=True,
                label="Step (best: chosen on validation; last; or a number)",
            )  # fmt: skip
            split = gr.Radio(SPLITS, value="eval", label="Split")
            endpoint = gr.Dropdown(ENDPOINTS, value="accuracies", label="Endpoint (rewards/…)")
            show = gr.Button("Show report", elem_id="show-study-report", scale=0)
        summary = gr.Markdown(NO_STUDY, elem_id="study-summary")
        runs = gr.Dataframe(table([], RUN_COLUMNS), interactive=False, label="Runs", elem_id="study-runs")
        comparisons = gr.Dataframe(
            table([], COMPARISON_COLUMNS), interactive=False, label="Comparisons (primary first)",
            elem_id="study-comparisons",
        )  # fmt: skip
        outputs = [runs, comparisons]
        for key in ITEM_KEYS:
            outputs += [gr.Markdown(), gr.Plot(visible=False, elem_id=f"study-fig-{key}")]
        view = report_viewer(service)
        for trigger in (show.click, study.change, split.change, endpoint.change):
            trigger(view, [study, step, split, endpoint], [*outputs, summary])
        tab.select(lambda current: kept_study(service, current), study, study)
        build_delete(service, study)


def kept_study(service, current) -> gr.Dropdown:
    """The study list afresh, keeping the picked study while it exists (a deleted one is unpicked)."""
    choices = study_choices(service)
    return gr.Dropdown(choices=choices, value=current if current in [v for _, v in choices] else None)


def report_viewer(service):
    """The report's action: its outputs (the summary last, as the status line). A failure says why in
    the summary and clears the tables and figures, which would otherwise pass for the new choice's."""
    summary, *cleared = blank_view()

    @resetting_errors(cleared)
    def show_report(study_id, step, split, endpoint):
        summary, *shown = report_view(service, study_id, step, split, endpoint)
        return [*shown, summary]

    return show_report
