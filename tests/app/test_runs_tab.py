"""The Runs tab's accuracy picker chooses which stored metric keys are drawn; its live charts read, each
tick, only the rows newer than the last read, in one statement, and nothing once the runs are finished;
its translation jobs table and chrF chart come from the service's evaluations and per-direction bars."""

import functools
from datetime import datetime
from pathlib import Path

import gradio as gr
import pytest
from sqlalchemy import event

from app.charts import NO_TRANSLATIONS, Point
from app.runs_compare import run_looks
from app.runs_evaluations import JOB_COLUMNS, evaluation_view, job_rows
from app.tab_runs import (
    ACCURACIES,
    COMPARISON_OUTPUTS,
    MARGINS,
    accuracy_keys,
    chart_keys,
    delete_view,
    metric_figures,
    refreshed,
    sweep_figure,
    training_figures,
)
from capo_lab import live_metrics
from capo_lab.errors import LabError
from capo_lab.runs import run_dir
from capo_lab.service import LabService
from capo_lab.settings import Settings
from capo_lab.translations import DirectionChrf
from storage import writes
from storage.records import EvaluationRecord
from tests.cli.test_delete_cli import rows_of, seed_run


def test_each_choice_draws_its_own_keys_on_every_split():
    per_token, vs_base = list(ACCURACIES)[1:]
    assert accuracy_keys(vs_base) == [
        "rewards/accuracies_vs_base",
        "train_rewards/accuracies_vs_base",
        "eval_rewards/accuracies_vs_base",
        "validation_rewards/accuracies_vs_base",
    ]
    assert accuracy_keys(per_token)[2] == "eval_rewards/accuracies_per_token"
    assert accuracy_keys("")[0] == "rewards/accuracies"  # before the picker has a value


def job(id_, run_id, status, done=0, total=None, evaluated_step=None, error=None) -> EvaluationRecord:
    created = datetime(2025, 1, 1)
    return EvaluationRecord(
        id_, run_id, "last", "eval", True, 8, status, done, total, evaluated_step, error, created, None
    )


class FakeService:
    def __init__(self, jobs: dict[int, list[EvaluationRecord]], bars: dict[int, list[DirectionChrf]]):
        self.jobs, self.bars, self.chrf_asked = jobs, bars, []

    def evaluations(self, run_id):
        return self.jobs.get(run_id, [])

    def direction_chrf(self, run_id, split="eval"):
        self.chrf_asked.append((run_id, split))
        return self.bars.get(run_id, [])


def test_job_rows_show_status_progress_in_sentences_and_the_error():
    rows = job_rows(
        [
            job(3, 1, "failed", 2, 8, error="CUDA out of memory"),
            job(2, 1, "running", 5, 8),
            job(1, 1, "queued"),
            job(4, 2, "succeeded", 8, 8, evaluated_step=40),
        ]
    )
    assert [r["progress"] for r in rows] == [
        "2/8 sentences",
        "5/8 sentences",
        "0/? sentences",
        "8/8 sentences",
    ]
    assert rows[0]["error"] == "CUDA out of memory" and rows[1]["error"] == ""
    assert rows[3] == {
        "run": "#2", "job": 4, "step": "last → 40", "split": "eval",
        "status": "succeeded", "progress": "8/8 sentences", "error": "",
    }  # fmt: skip
    assert list(rows[0]) == JOB_COLUMNS


def test_evaluation_view_watches_while_a_job_is_queued_or_running():
    bars = {1: [DirectionChrf("all", 40.0, 44.0, 0.001)]}
    running = FakeService({1: [job(2, 1, "running", 1, 8)], 2: [job(1, 2, "succeeded", 8, 8)]}, bars)
    active, table, chart = evaluation_view(running, ["1", "2"], "validation")
    assert active is True and list(table["run"]) == ["#1", "#2"]
    assert running.chrf_asked == [(1, "validation")]  # the chart is the first selected run's
    assert list(chart.data[-1].text) == ["Δ +4.00 **"] and "run #1" in chart.layout.title.text

    finished = FakeService({1: [job(2, 1, "succeeded", 8, 8)], 2: [job(1, 2, "failed", error="x")]}, {})
    active, table, chart = evaluation_view(finished, [1, 2], "eval")
    assert active is False and list(table["status"]) == ["succeeded", "failed"]
    assert chart.layout.title.text == NO_TRANSLATIONS


def test_evaluation_view_without_runs_has_an_empty_table():
    active, table, chart = evaluation_view(FakeService({}, {}), [], "eval")
    assert active is False and list(table.columns) == JOB_COLUMNS and table.empty
    assert chart.layout.title.text == NO_TRANSLATIONS


@pytest.fixture
def service(lab_home: Path) -> LabService:
    lab = LabService(Settings())
    if not hasattr(lab, "metrics_since"):  # until the service delegates to capo_lab.live_metrics
        lab.metrics_since = functools.partial(live_metrics.metrics_since, lab.db)
    return lab


@pytest.fixture
def statements(service: LabService) -> list[str]:
    """Every SQL statement the lab database runs from now on."""
    seen: list[str] = []
    event.listen(service.db.engine, "before_cursor_execute", lambda _c, _cur, sql, *_: seen.append(sql))
    return seen


def add_run(service: LabService, alpha: float, status: str = "running") -> int:
    config = {"objective": {"name": "capo", "alpha": alpha, "beta": 0.1}}
    with service.db.write() as session:
        return writes.add_run(session, "r", config, None, status)


def log(service: LabService, run_id: int, rows: list[tuple[int, str, float]]) -> None:
    with service.db.write() as session:
        writes.add_metrics(session, run_id, rows)


def finish(service: LabService, run_id: int) -> None:
    with service.db.write() as session:
        writes.update_run(session, run_id, status="succeeded")


def training(step: int) -> list[tuple[int, str, float]]:
    """What a training batch logs: charted keys, and one no chart draws."""
    return [(step, "loss", 1 / step), (step, "learning_rate", 1e-5 * step), (step, "grad_norm", 2.0)]


def evaluation(step: int) -> list[tuple[int, str, float]]:
    """What an evaluation logs: charted keys, per direction too, and one no chart draws."""
    charted = ["eval_loss", "eval_logps/chosen/en-de", "eval_logps/rejected/en-de", "eval_regime/chosen_down"]
    charted += ["eval_rewards/accuracies_vs_base"]
    return [(step, key, (step + i) / 10) for i, key in enumerate(charted)] + [(step, "eval_rrm", 0.1)]


def metric_reads(statements: list[str]) -> int:
    return sum("FROM metrics" in sql for sql in statements)


def skipped(outputs: list) -> list[bool]:
    return [isinstance(o, dict) and o == gr.skip() for o in outputs]


def test_each_tick_reads_only_new_rows_once_and_redraws_only_what_they_change(service, statements):
    run = add_run(service, 2.0)
    log(service, run, training(1))
    state, *outputs = refreshed(service, [run], None, "", "", True)
    assert [t.name for t in outputs[COMPARISON_OUTPUTS].data] == [f"#{run} capo · training batches"]
    assert len(outputs) == 11 and not any(skipped(outputs))
    assert list(state.points[run]) == ["loss", "learning_rate"]  # only the charted keys
    statements.clear()
    same, *outputs = refreshed(service, [run], state, "", "", False)
    assert metric_reads(statements) == 1 and all(skipped(outputs)) and same.points == state.points
    log(service, run, training(2))
    statements.clear()
    state, *outputs = refreshed(service, [run], same, "", "", False)
    assert metric_reads(statements) == 1 and len(statements) == 2  # the statuses, then the rows
    assert [p.step for p in state.points[run]["loss"]] == [1, 2] and state.cursor[run].step == 2
    # redrawn: the loss, the sweep and the learning rate; the other charts have no new row of their keys
    assert skipped(outputs) == [True, True, True, False, True, True, True, True, False, False, True]
    log(service, run, evaluation(2))  # the same step's evaluation, in a later write
    state, *outputs = refreshed(service, [run], state, "", "", False)
    assert list(state.points[run])[2:4] == ["eval_loss", "eval_logps/chosen/en-de"]
    # an evaluation redraws the pair-score views too; none of its keys is the accuracy chosen, a rate
    assert skipped(outputs) == [False, False, False, False, True, False, False, False, False, True, True]


def test_ticks_read_nothing_once_the_selected_runs_are_finished(service, statements):
    first, second = add_run(service, 2.0), add_run(service, 0.5, "queued")
    log(service, first, training(1))
    state = refreshed(service, [first, second], None, "", "", True)[0]
    assert state.active
    finish(service, first)
    finish(service, second)
    state, *outputs = refreshed(service, [first, second], state, "", "", False)
    assert not state.active and all(skipped(outputs))
    statements.clear()
    for _ in range(3):
        state, *outputs = refreshed(service, [first, second], state, "", "", False)
    assert statements == [] and all(skipped(outputs))
    state = refreshed(service, [first, second], state, "", "", True)[0]  # a new choice reads once more
    assert metric_reads(statements) == 1


def as_json(output) -> str:
    """A figure, a table or a line of text, comparable."""
    return output if isinstance(output, str) else output.to_json()


def test_the_figures_after_ticks_are_those_of_one_full_read(service):
    runs = [add_run(service, 2.0), add_run(service, 0.5)]
    for run in runs:
        log(service, run, training(1) + evaluation(1))
    choices = (list(ACCURACIES)[2], list(MARGINS)[0])
    shown = refreshed(service, runs, None, *choices, True)
    for step in range(2, 6):
        for rows in (training(step), evaluation(step)):  # a tick may come between a step's two writes
            for run in runs:
                log(service, run, rows)
            ticked = refreshed(service, runs, shown[0], *choices, False)
            shown = [
                old if skip else new for old, new, skip in zip(shown, ticked, skipped(ticked), strict=True)
            ]
    full = refreshed(service, runs, None, *choices, True)
    assert shown[0].points == full[0].points and shown[0].cursor == full[0].cursor
    assert [as_json(o) for o in shown[1:]] == [as_json(o) for o in full[1:]]
    loss, margins = full[1 + COMPARISON_OUTPUTS], full[3 + COMPARISON_OUTPUTS]
    assert len(loss.data) == 4 and len(margins.data) == 2  # both runs' losses; the en-de margin panel
    every_row = [Point(f"#{r}", m.step, m.key, m.value) for r in runs for m in service.metrics(r)]
    objectives = {f"#{r}": "capo" for r in runs}
    looks = run_looks(full[0].configs)
    before = training_figures(lambda _keys: every_row, looks, choices[0], objectives, choices[1])
    per_run = {r: [p for p in every_row if p.run == f"#{r}"] for r in runs}
    before.insert(4, sweep_figure(full[0].configs, per_run))  # as the tab drew them: from every row read
    assert [f.to_json() for f in before] == [f.to_json() for f in metric_figures(full[0], *choices)]


def test_a_new_choice_of_keys_reads_afresh(service, statements):
    run = add_run(service, 2.0)
    log(service, run, [(1, "eval_rewards/margins", 0.3), (1, "eval_logps/chosen", -1.0)])
    by_delta = refreshed(service, [run], None, "", list(MARGINS)[0], True)[0]
    statements.clear()
    by_margin = refreshed(service, [run], by_delta, "", list(MARGINS)[1], False)[0]
    assert metric_reads(statements) == 1 and by_margin.keys == chart_keys("", list(MARGINS)[1])
    assert list(by_delta.points[run]) == ["eval_logps/chosen"]
    assert list(by_margin.points[run]) == ["eval_rewards/margins"]


def test_the_sweep_is_drawn_from_the_points_of_runs_with_different_alphas(service):
    runs = [add_run(service, alpha) for alpha in (2.0, 0.5)]
    for i, run in enumerate(runs, 1):
        log(service, run, [(4, "eval_rewards/accuracies", 0.5 + i / 10), (4, "train_loss", 0.3)])
    state = refreshed(service, runs, None, "", "", True)[0]
    points = {run: state.select(["eval_rewards/accuracies", "train_loss"], [run]) for run in runs}
    fig = sweep_figure(state.configs, points)
    assert list(fig.data[0].x) == [0.5, 2.0] and list(fig.data[1].y) == [0.7, 0.6]
    alone = sweep_figure({runs[0]: state.configs[runs[0]]}, points)
    assert alone.data == () and "not drawn" in alone.layout.title.text


def test_delete_needs_the_confirmation_refuses_a_running_run_and_removes_rows_and_folder(service):
    """Through ``LabService.delete_runs``: all or none of the selected runs go, with their checkpoints."""
    done, running = seed_run(service.db, service.settings), seed_run(service.db, service.settings, "running")
    delete = functools.partial(delete_view, service)
    with pytest.raises(LabError, match="tick “I understand”"):
        delete([done], False)
    with pytest.raises(LabError, match=f"run {running} is running; cancel it first"):
        delete([done, running], True)
    assert set(rows_of(service.db, done).values()) == {1} and run_dir(service.settings, done).exists()
    message, choices, sure = delete([done], True)
    assert message == f"Deleted 1 run(s) (#{done}); 1 folder(s) removed." and sure is False
    assert [rid for _, rid in choices["choices"]] == [running] and choices["value"] == []
    assert set(rows_of(service.db, done).values()) == {0} and not run_dir(service.settings, done).exists()
    assert set(rows_of(service.db, running).values()) == {1}


def test_the_tab_builds_with_its_delete_button(service):
    from app import tab_runs

    with gr.Blocks() as demo:
        tab_runs.build(service)
    assert {"delete-runs", "runs-select"} <= {getattr(b, "elem_id", None) for b in demo.blocks.values()}
