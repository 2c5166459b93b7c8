"""Translation evaluations in the one job lifecycle (issue 20, item 4): claimed for a worker, a
heartbeat, cancel while queued or running, a stop signal leaves them interrupted, a failure is one
stored line with the traceback logged once, and a stale one is reaped like a run.

The translation itself is replaced by a stand-in that reports progress batch by batch (the real one
is exercised by tests/cli/test_evaluate_cli.py and tests/worker/test_jobs_evaluation_crash.py)."""

import threading
import time
from datetime import timedelta

import pytest

from capo_lab import lifecycle, translations
from capo_lab.bugs import log_file
from capo_lab.errors import LabError
from capo_lab.runs import now
from storage import queries, writes
from storage.records import JobKind
from tests.worker.conftest import tiny_config
from worker import evaluate


@pytest.fixture
def evaluation(lab):
    """A queued evaluation of a queued run (nothing trained: the translation is a stand-in)."""
    db, settings = lab
    (run_id,) = lifecycle.submit(db, [tiny_config()], lambda _: None)
    return translations.queue_evaluation(db, run_id, lambda _: None, "last", "eval", True, 4)


def job(db, evaluation_id: int):
    with db.read() as session:
        return queries.get_evaluation(session, evaluation_id)


class Translation:
    """Stands in for ``evaluate_translations``: ``batches`` batches of progress, ``pause`` seconds each;
    ``during(batch)`` runs before each batch's progress is reported."""

    def __init__(self, batches: int = 5, pause: float = 0.0, during=lambda batch: None) -> None:
        self.batches, self.pause, self.during = batches, pause, during
        self.reported: list[int] = []

    def __call__(self, db, settings, run_id, step, split, base, max_new_tokens, on_progress, *_models_device):
        for batch in range(1, self.batches + 1):
            time.sleep(self.pause)
            self.during(batch)
            self.reported.append(batch)
            on_progress(batch, self.batches)
        return translations.TranslationReport(run_id, 3, split, self.batches, {"adapter": 0}, 0.1, [])


def test_a_finished_evaluation_records_its_worker_start_heartbeat_and_result(lab, evaluation, monkeypatch):
    db, settings = lab
    monkeypatch.setattr(evaluate, "evaluate_translations", Translation(batches=3, pause=0.3))
    assert evaluate.run_evaluation(db, settings, evaluation, "host:1") == "succeeded"
    done = job(db, evaluation)
    assert (done.status, done.worker, done.evaluated_step, done.done, done.total) == (
        "succeeded", "host:1", 3, 3, 3,
    )  # fmt: skip
    assert done.started_at <= done.heartbeat_at <= done.finished_at  # the thread beat while it worked
    assert done.heartbeat_at > done.started_at
    assert evaluate.run_evaluation(db, settings, evaluation).startswith("skipped")  # claimed once only


def test_a_cancelled_queued_evaluation_never_starts(lab, evaluation, monkeypatch):
    db, settings = lab
    translate = Translation()
    monkeypatch.setattr(evaluate, "evaluate_translations", translate)
    assert translations.cancel_evaluation(db, evaluation) == "cancelled before it started"
    assert evaluate.run_evaluation(db, settings, evaluation).startswith("skipped")
    assert translate.reported == [] and job(db, evaluation).status == "cancelled"
    with pytest.raises(LabError, match=f"^evaluation {evaluation} is cancelled; only queued or running"):
        translations.cancel_evaluation(db, evaluation)
    with pytest.raises(LabError, match="^no evaluation 999$"):
        translations.cancel_evaluation(db, 999)


def test_a_running_evaluation_stops_after_its_current_batch_when_cancelled(lab, evaluation, monkeypatch):
    db, settings = lab
    answers = []
    translate = Translation(
        during=lambda b: b == 2 and answers.append(translations.cancel_evaluation(db, evaluation))
    )
    monkeypatch.setattr(evaluate, "evaluate_translations", translate)
    assert evaluate.run_evaluation(db, settings, evaluation) == "cancelled"
    assert answers == ["asked to stop after its current batch"] and translate.reported == [1, 2]
    stopped = job(db, evaluation)
    assert stopped.status == "cancelled" and stopped.finished_at and stopped.done == 2


def test_a_stop_signal_leaves_a_running_evaluation_interrupted(lab, evaluation, monkeypatch):
    db, settings = lab
    stop = threading.Event()
    translate = Translation(during=lambda batch: batch == 3 and stop.set())
    monkeypatch.setattr(evaluate, "evaluate_translations", translate)
    assert evaluate.run_evaluation(db, settings, evaluation, "w", stop) == "interrupted"
    assert translate.reported == [1, 2, 3] and job(db, evaluation).status == "interrupted"


def test_a_failure_is_one_stored_line_and_its_traceback_is_logged_once(lab, evaluation, monkeypatch, capfd):
    db, settings = lab

    def fail(batch):
        raise RuntimeError("tokenizer said:\n  something long\n  over lines")

    monkeypatch.setattr(evaluate, "evaluate_translations", Translation(during=fail))
    assert evaluate.run_evaluation(db, settings, evaluation) == "failed"
    failed = job(db, evaluation)
    assert failed.error == "RuntimeError: tokenizer said: something long over lines"
    assert "Traceback" in failed.traceback and "fail" in failed.traceback
    logged = log_file(settings).read_text()
    assert logged.count("Traceback") == 1 and f"evaluation {evaluation} failed: {failed.error}" in logged
    terminal = capfd.readouterr()
    assert "Traceback" not in terminal.err + terminal.out


def test_stale_running_evaluations_are_reaped_with_the_reason(lab, evaluation):
    db, _ = lab
    (run_id,) = lifecycle.submit(db, [tiny_config()], lambda _: None)
    fresh = translations.queue_evaluation(db, run_id, lambda _: None, "last", "eval", True, 4)
    legacy = translations.queue_evaluation(db, run_id, lambda _: None, "last", "eval", True, 4)
    with db.write() as session:
        writes.update_evaluation(
            session, evaluation, status="running", heartbeat_at=now() - timedelta(seconds=120)
        )
        writes.update_evaluation(session, fresh, status="running", heartbeat_at=now())
        writes.update_evaluation(session, legacy, status="running")  # running before heartbeats existed
    reaped = lifecycle.reap_stale_jobs(db, 30)
    assert sorted(reaped) == [(JobKind.EVALUATION, evaluation), (JobKind.EVALUATION, legacy)]
    for stale in (evaluation, legacy):
        assert job(db, stale).status == "interrupted" and "no heartbeat for over 30 s" in job(db, stale).error
    assert job(db, fresh).status == "running"
