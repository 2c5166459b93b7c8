"""The Runs tab's accuracy picker chooses which stored metric keys are drawn; its translation jobs table
and chrF chart come from the service's evaluations and per-direction bars."""

from datetime import datetime

import gradio as gr

from app.charts import NO_TRANSLATIONS
from app.tab_runs import (
    ACCURACIES,
    COMPARISON_OUTPUTS,
    JOB_COLUMNS,
    accuracy_keys,
    evaluation_view,
    fetch_new,
    job_rows,
    refreshed,
    sweep_figure,
)
from capo_lab.translations import DirectionChrf
from storage.records import EvaluationRecord


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
    assert list(chart.data[-1].text) == ["**"] and "run #1" in chart.layout.title.text

    finished = FakeService({1: [job(2, 1, "succeeded", 8, 8)], 2: [job(1, 2, "failed", error="x")]}, {})
    active, table, chart = evaluation_view(finished, [1, 2], "eval")
    assert active is False and list(table["status"]) == ["succeeded", "failed"]
    assert chart.layout.title.text == NO_TRANSLATIONS


def test_evaluation_view_without_runs_has_an_empty_table():
    active, table, chart = evaluation_view(FakeService({}, {}), [], "eval")
    assert active is False and list(table.columns) == JOB_COLUMNS and table.empty
    assert chart.layout.title.text == NO_TRANSLATIONS


class MetricsService:
    """Metric rows appear as a run trains; the Runs tab asks only for rows after the last step it saw."""

    def __init__(self, rows: dict[int, list[dict]]):
        self.rows, self.asked = rows, []

    def metrics(self, run_id, after_step=-1):
        self.asked.append((run_id, after_step))
        return [r for r in self.rows.get(run_id, []) if r["step"] > after_step]

    def run_configs(self, run_ids):
        alphas = {1: 2.0, 2: 0.5}
        return {r: {"objective": {"name": "capo", "alpha": alphas.get(r, 1.0), "beta": 0.1}} for r in run_ids}

    def direction_accuracy(self, run_ids):
        return []

    def score_steps(self, run_id, split="eval"):
        return []


def metric(step: int, key: str, value: float) -> dict:
    return {"step": step, "key": key, "value": value}


def test_each_tick_reads_only_new_rows_and_skips_the_figures_without_any():
    service = MetricsService({1: [metric(1, "loss", 0.7), metric(2, "loss", 0.6)]})
    cache, grew = fetch_new(service, [1], {})
    assert grew and cache[1]["after"] == 2 and [p.run for p in cache[1]["points"]] == ["#1", "#1"]
    service.rows[1].append(metric(3, "loss", 0.5))
    cache, grew = fetch_new(service, [1], cache)
    assert grew and service.asked[-1] == (1, 2) and [p.step for p in cache[1]["points"]] == [1, 2, 3]
    state, *outputs = refreshed(service, [1], cache, "", "", False)
    assert service.asked[-1] == (1, 3) and all(isinstance(o, type(gr.skip())) for o in outputs)
    state, *outputs = refreshed(service, ["1"], cache, "", "", True)  # a new choice redraws
    loss = outputs[COMPARISON_OUTPUTS]
    assert [t.name for t in loss.data] == ["#1 capo · training batches"] and len(outputs) == 11


def test_the_sweep_is_drawn_from_the_cached_rows_of_runs_with_different_alphas():
    rows = {
        r: [metric(4, "eval_rewards/accuracies", 0.5 + r / 10), metric(4, "train_loss", 0.3)] for r in (1, 2)
    }
    service = MetricsService(rows)
    cache, _ = fetch_new(service, [1, 2], {})
    fig = sweep_figure(service.run_configs([1, 2]), cache)
    assert list(fig.data[0].x) == [0.5, 2.0] and list(fig.data[1].y) == [0.7, 0.6]
    alone = sweep_figure(service.run_configs([1]), {1: cache[1]})
    assert alone.data == () and "not drawn" in alone.layout.title.text
