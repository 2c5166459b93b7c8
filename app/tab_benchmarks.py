"""Benchmarks tab: the paper's downstream benchmarks (M-IFEval, XLSum, multilingual MT-Bench) of a run's
adapter, queued for the worker (``LabService.run_benchmark``).

Before queueing, the plan line says how many items the choices give and what the judge would be asked
(``LabService.benchmark_plan``; without a judge, which parts are skipped). The run's jobs are listed
with their progress, and a timer follows them only while one is queued or running and this tab is the
one shown (``stop_when_left``). A job's scores come per language with the base's under the adapter's,
then its adapter against its base or another finished job of the same suite, item by item, with 95 %
intervals; the item inspector shows each prompt, the answers, the checks and the judge's verdicts.
A failure is one line under the buttons; what the tables show stays until the next choice."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app.benchmarks_items import NO_ITEM, find_item, item_choices, item_html, item_key
from app.benchmarks_view import (
    BASE,
    NOTHING_YET,
    any_active,
    comparison_line,
    comparison_tables,
    job_choices,
    job_state_line,
    jobs_table,
    metric_rows,
    other_choices,
    plan_markdown,
)
from app.common import inline_errors, markdown_text, run_choices, table
from app.inline import KEEP, Later, resetting_errors
from capo.benchmarks.items import LANGUAGES, SUITES
from capo_lab.errors import LabError

REFRESH_SECONDS = 2.0
DEFAULT_SUITE = SUITES[0]
INTRO = (
    "Downstream benchmarks of a run's adapter (paper §3.4, §4.5): M-IFEval's rule checks, XLSum's ROUGE-L "
    "and the judge's pairwise verdicts, MT-Bench's judge ratings. Fetch a suite once first "
    "(`capo-lab data fetch m-ifeval`); the judge is `CAPO_LAB_JUDGE_URL` and `CAPO_LAB_JUDGE_MODEL`."
)
SCORE_OUTPUTS = 8  # the compare picker, the state line, three tables, the item picker and view, drawn


def jobs_part(service, run_id, job_id) -> tuple[list, object]:
    """([timer, jobs table, job picker], the picked job): ``job_id`` kept when it is the run's, else
    the newest job. The timer ticks while one of the run's jobs is queued or running."""
    jobs = service.benchmarks(run_id) if run_id else []
    job = next((j for j in jobs if j.id == job_id), jobs[0] if jobs else None)
    picker = gr.Dropdown(choices=job_choices(jobs), value=job.id if job else None)
    return [gr.Timer(active=any_active(jobs)), jobs_table(jobs), picker], job


def compared(service, job, other: str | None):
    """The job's adapter against its base or another job (None when there is nothing to compare)."""
    if job.status != "succeeded":
        return None
    if other in (None, "", BASE):
        return service.compare_benchmark(job.id) if job.base else None
    return service.compare_benchmark(job.id, int(other))


def other_picker(service, job, other: str | None) -> tuple[gr.Dropdown, str | None]:
    """The compare picker of ``job``, keeping ``other`` when it is still a choice."""
    if job.status != "succeeded":
        return gr.Dropdown(choices=[], value=None), None
    names = {r.id: r.name for r in service.runs()}
    choices = other_choices(job, service.comparable_benchmarks(job.id), names)
    values = [value for _, value in choices]
    kept = other if other in values else (values[0] if values else None)
    return gr.Dropdown(choices=choices, value=kept), kept


def scores_part(service, job, other: str | None = None, item: str | None = None) -> list:
    """[compare picker, state line, scores per language, comparison, verdicts, item picker, item view,
    drawn]: the job's stored scores and items (``drawn`` is the (id, status) they were read at)."""
    if job is None:
        empty = comparison_tables(None)
        picker = gr.Dropdown(choices=[], value=None)
        return [
            picker,
            NOTHING_YET,
            table([], ["metric"]),
            *empty,
            gr.Dropdown(choices=[], value=None),
            NO_ITEM,
            None,
        ]
    picker, other = other_picker(service, job, other)
    comparison = compared(service, job, other)
    line = job_state_line(job)
    said = comparison_line(job, other, len(comparison.scores) if comparison else 0)
    items = service.benchmark_items(job.id)
    shown = find_item(items, item) or (items[0] if items else None)
    item_picker = gr.Dropdown(choices=item_choices(items), value=item_key(shown) if shown else None)
    metrics = metric_rows(job.suite, service.benchmark_metrics(job.id))
    state = line + (f"\n\n{said}" if said else "")
    tables = comparison_tables(comparison)
    return [picker, state, metrics, *tables, item_picker, item_html(shown), (job.id, job.status)]


def skipped(count: int) -> list:
    return [gr.skip() for _ in range(count)]


def refreshed(service, run_id, job_id, other=None, item=None) -> list:
    """Every output but the status line: the run's jobs, then the picked job's scores and items."""
    jobs, job = jobs_part(service, run_id, job_id)
    return [*jobs, *scores_part(service, job, other, item)]


def ticked(service, run_id, job_id, drawn, other, item) -> list:
    """A tick: the jobs table afresh; the scores read again only when the shown job's status changed
    since they were drawn (a job that ends gets its scores once)."""
    jobs, job = jobs_part(service, run_id, job_id)
    if job is None or drawn == (job.id, job.status):
        return [*jobs, *skipped(SCORE_OUTPUTS)]
    return [*jobs, *scores_part(service, job, other, item)]


def queued_line(service, job_id: int) -> str:
    job = service.benchmark(job_id)
    items = "all items" if job.limit is None else f"{job.limit} items per language"
    line = (
        f"Queued benchmark #{job.id}: run #{job.run_id}, {job.suite} ({', '.join(job.languages)}), {items}."
    )
    return markdown_text(line)


def plan_line(service, suite, languages, limit, base) -> str:
    """The plan of these choices, or the one line saying why there is none (a suite not fetched…)."""

    def said() -> list[str]:
        return [plan_markdown(service.benchmark_plan(suite, languages or None, limit, bool(base)))]

    said.__name__ = "benchmark_plan"  # the action the log names
    return inline_errors(0)(said)()[-1]


def build_choices(service):
    """The run, suite, languages, limit and base pickers with the plan line; returns them."""
    with gr.Row():
        run = gr.Dropdown(run_choices(service), value=None, label="Run", elem_id="benchmark-run", scale=3)
        reload_runs = gr.Button("Reload run list", scale=0)
    with gr.Row():
        suite = gr.Radio(list(SUITES), value=DEFAULT_SUITE, label="Suite", elem_id="benchmark-suite")
        languages = gr.CheckboxGroup(
            list(LANGUAGES[DEFAULT_SUITE]), label="Languages (none: all)", elem_id="benchmark-languages"
        )
        # A text box: Gradio draws an empty number box as 0 and sends 0, which is not "all".
        limit = gr.Textbox("", label="Items per language (empty: all)", elem_id="benchmark-limit")
        base = gr.Checkbox(True, label="Also answer with the base model", elem_id="benchmark-base")
    plan = gr.Markdown(elem_id="benchmark-plan")
    return run, reload_runs, suite, languages, limit, base, plan


def wire_plan(service, suite, languages, limit, base, plan) -> None:
    """A new suite offers its languages (none ticked: all); any choice says the plan again."""

    def on_suite(chosen, how_many, with_base):
        codes = list(LANGUAGES.get(chosen, ()))
        return [
            gr.CheckboxGroup(choices=codes, value=[]),
            plan_line(service, chosen, [], how_many, with_base),
        ]

    def on_choice(chosen, codes, how_many, with_base):
        return [gr.skip(), plan_line(service, chosen, codes, how_many, with_base)]

    suite.input(on_suite, [suite, limit, base], [languages, plan])
    for event in (languages.input, limit.input, base.input):
        event(on_choice, [suite, languages, limit, base], [languages, plan])


@dataclass(frozen=True)
class Controls:
    """The tab's components that the job events read or write."""

    run: gr.Dropdown
    choices: list  # suite, languages, limit, base
    job: gr.Dropdown
    other: gr.Dropdown
    item: gr.Dropdown
    item_view: gr.HTML
    drawn: gr.State
    outputs: list  # what ``refreshed`` returns, then the status line


def cleared() -> list:
    """Every output of ``refreshed`` emptied: no jobs, no scores, the timer stopped."""
    picker = gr.Dropdown(choices=[], value=None)
    return [gr.Timer(active=False), jobs_table([]), picker, *scores_part(None, None)]


def wire_jobs(service, c: Controls, queue: gr.Button, cancel: gr.Button, timer: gr.Timer) -> None:
    """Queue, cancel, pick a job, a comparison or an item; each tick follows the run's jobs."""
    keep = [KEEP] * (len(c.outputs) - 1)

    @resetting_errors([Later(lambda n=n: cleared()[n]) for n in range(len(keep))])  # a run gone
    def on_run(run_id):
        return [*refreshed(service, run_id, None), ""]

    @resetting_errors(keep)
    def on_queue(run_id, suite, languages, limit, base):
        if not run_id:
            raise LabError("choose a run first")
        job_id = service.run_benchmark(run_id, suite, languages or None, limit, bool(base))
        return [*refreshed(service, run_id, job_id), queued_line(service, job_id)]

    @resetting_errors(keep)
    def on_cancel(run_id, job_id, other, item):
        if job_id is None:
            raise LabError("choose a job first")
        done = service.cancel_benchmark(job_id)
        said = markdown_text(f"Benchmark #{int(job_id)}: {done}.")
        return [*refreshed(service, run_id, job_id, other, item), said]

    @resetting_errors(keep)
    def on_pick(run_id, job_id, other, item):
        return [*refreshed(service, run_id, job_id, other, item), ""]

    @resetting_errors([KEEP])
    def on_item(job_id, key):
        if job_id is None:
            raise LabError("choose a job first")
        return [item_html(find_item(service.benchmark_items(job_id), key)), ""]

    @resetting_errors([Later(lambda: gr.Timer(active=False)), *keep[1:]])  # a failing tick stops ticking
    def on_tick(run_id, job_id, drawn, other, item):
        return [*ticked(service, run_id, job_id, drawn, other, item), gr.skip()]

    picked = [c.run, c.job, c.other, c.item]
    c.run.input(on_run, c.run, c.outputs)
    queue.click(on_queue, [c.run, *c.choices], c.outputs)
    cancel.click(on_cancel, picked, c.outputs)
    c.job.input(lambda run_id, job_id: on_pick(run_id, job_id, None, None), [c.run, c.job], c.outputs)
    c.other.input(on_pick, picked, c.outputs)
    c.item.input(on_item, [c.job, c.item], [c.item_view, c.outputs[-1]])
    timer.tick(on_tick, [c.run, c.job, c.drawn, c.other, c.item], c.outputs)


def wire_return(service, c: Controls, triggers: list) -> None:
    """Coming back to the tab or reloading the run list reads the runs, the jobs and the scores afresh
    (a job may have ended meanwhile), and says the plan again (a suite may have been fetched)."""

    @resetting_errors([KEEP] * (len(c.outputs) - 1))
    def on_return(run_id, job_id, other, item):
        return [*refreshed(service, run_id, job_id, other, item), ""]

    def runs_kept(current):
        listed = run_choices(service)
        return gr.Dropdown(choices=listed, value=current if current in {v for _, v in listed} else None)

    for trigger in triggers:
        trigger(runs_kept, c.run, c.run).then(on_return, [c.run, c.job, c.other, c.item], c.outputs)


def stop_when_left(tabs: gr.Tabs, timer: gr.Timer, tab_id: str = "benchmarks") -> None:
    """Every other tab, once chosen, stops ``timer``: the jobs are followed only while this tab is
    shown (coming back reads them afresh and starts it again if one is still running)."""
    for tab in tabs.children:
        if isinstance(tab, gr.Tab) and tab.id != tab_id:
            tab.select(lambda: gr.Timer(active=False), None, timer)


def build(service) -> gr.Timer:
    """The tab; returns its timer (``stop_when_left`` stops it when another tab is chosen)."""
    with gr.Tab("Benchmarks", id="benchmarks") as tab:
        gr.Markdown(INTRO)
        run, reload_runs, suite, languages, limit, base, plan = build_choices(service)
        with gr.Row():
            queue = gr.Button("Queue benchmark", variant="primary", elem_id="queue-benchmark", scale=0)
            job = gr.Dropdown([], label="Job", elem_id="benchmark-job", scale=2)
            cancel = gr.Button("Cancel job", elem_id="cancel-benchmark", scale=0)
        message = gr.Markdown(elem_id="benchmark-message")
        jobs = gr.Dataframe(interactive=False, label="Benchmark jobs", elem_id="benchmark-jobs")
        timer = gr.Timer(REFRESH_SECONDS, active=False)  # only while a job runs and this tab is shown
        other = gr.Dropdown([], label="Compare the adapter with", elem_id="benchmark-other")
        state = gr.Markdown(NOTHING_YET, elem_id="benchmark-state")
        metrics = gr.Dataframe(
            table([], ["metric"]), interactive=False, label="Scores per language", elem_id="benchmark-metrics"
        )
        comparison = gr.Dataframe(
            interactive=False, label="A − B item by item, 95 % intervals", elem_id="benchmark-comparison"
        )
        verdicts = gr.Dataframe(interactive=False, label="The judge's verdicts", elem_id="benchmark-verdicts")
        item = gr.Dropdown([], label="Item", elem_id="benchmark-item")
        item_view = gr.HTML(NO_ITEM, elem_id="benchmark-item-view")
        drawn = gr.State(None)  # (job id, status) the scores were read at
        outputs = [timer, jobs, job, other, state, metrics, comparison, verdicts, item, item_view, drawn]
        choices = [suite, languages, limit, base]
        controls = Controls(run, choices, job, other, item, item_view, drawn, [*outputs, message])
        wire_plan(service, suite, languages, limit, base, plan)
        wire_jobs(service, controls, queue, cancel, timer)
        wire_return(service, controls, [reload_runs.click, tab.select])
        tab.select(lambda *values: plan_line(service, *values), [suite, languages, limit, base], plan)
    return timer
