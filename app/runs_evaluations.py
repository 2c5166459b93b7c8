"""The Runs tab's translation evaluations: queue one for the first selected run, cancel one by its
job number, follow the jobs while one is queued or running (a timer that ticks only then), and chart
chrF base vs trained per direction. A failure is a line beside the button; the jobs table and the
chart keep what they show."""

from __future__ import annotations

import gradio as gr

from app.charts import chrf_chart
from app.common import table
from app.inline import KEEP, resetting_errors
from capo_lab.errors import LabError

JOB_COLUMNS = ["run", "job", "step", "split", "status", "progress", "error"]
JOB_ACTIVE = ("queued", "running")  # an evaluation job still to finish
EXPLAINED = "Translates the split with the first selected run's last adapter and the base."


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
    return [any(r["status"] in JOB_ACTIVE for r in rows), table(rows, JOB_COLUMNS), chart]


def watched(service, run_ids: list, split: str) -> list:
    """``evaluation_view`` with the timer ticking only while some job is queued or running."""
    active, jobs, chart = evaluation_view(service, run_ids, split)
    return [gr.Timer(active=active), jobs, chart]


def build_evaluations(service, selected: gr.Dropdown, refresh_seconds: float) -> tuple:
    """Evaluate the first selected run's translations; the jobs are followed while one is active.
    Returns the (function, inputs, outputs) that shows the selection's jobs, for the tab to chain after
    each event that changes the selection (not ``selected.change``: Gradio 6.31 fires it again, value
    unchanged, as the answers of its own listeners arrive, an endless loop on a loaded machine)."""
    timer = gr.Timer(refresh_seconds, active=False)
    with gr.Row():
        split = gr.Radio(["eval", "validation"], value="eval", label="Split to translate", scale=1)
        evaluate = gr.Button("Evaluate translations", elem_id="evaluate-translations", scale=0)
        # no minimum: Gradio shows an empty number as 0, and a minimum of 1 drew it red and refused it
        # with a traceback in the server log; the service says which job numbers exist
        job_id = gr.Number(None, label="Job", precision=0, scale=0, elem_id="evaluation-job")
        cancel = gr.Button("Cancel job", elem_id="cancel-evaluation", scale=0)
        message = gr.Markdown(EXPLAINED, elem_id="evaluation-message")
    with gr.Row():
        jobs = gr.Dataframe(interactive=False, elem_id="evaluation-jobs", label="Translation evaluations")
        chrf = gr.Plot(elem_id="chrf-chart")
    outputs = [timer, jobs, chrf, message]

    @resetting_errors([KEEP, KEEP, KEEP])
    def on_evaluate(run_ids, which):
        if not run_ids:
            raise LabError("choose a run above first")
        job = service.evaluate_translations(int(run_ids[0]), which)
        queued = f"Queued evaluation {job}: run #{int(run_ids[0])}, {which} split."
        return [*watched(service, run_ids, which), queued]

    @resetting_errors([KEEP, KEEP, KEEP])
    def on_cancel(run_ids, which, job):
        if not job:  # empty, shown as 0
            raise LabError("give the job number from the table")
        done = service.cancel_evaluation(int(job))
        return [*watched(service, run_ids, which), f"Evaluation {int(job)}: {done}."]

    @resetting_errors([gr.Timer(active=False), KEEP, KEEP])  # a failing tick stops ticking
    def on_tick(run_ids, which):
        return [*watched(service, run_ids, which), gr.skip()]

    @resetting_errors([gr.Timer(active=False), table([], JOB_COLUMNS), None])  # not another run's jobs
    def on_choice(run_ids, which):
        return [*watched(service, run_ids, which), EXPLAINED]

    evaluate.click(on_evaluate, [selected, split], outputs)
    cancel.click(on_cancel, [selected, split, job_id], outputs)
    timer.tick(on_tick, [selected, split], outputs)
    split.input(on_choice, [selected, split], outputs)  # a user's pick only, never an echo
    return on_choice, [selected, split], outputs
