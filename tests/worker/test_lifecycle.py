"""Queue and lifecycle on MemoryHuey-style immediate mode and direct calls."""

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from capo_lab import lifecycle, studies
from capo_lab.errors import LabError
from capo_lab.runs import base_fingerprint, failure_message, get_run, now
from storage import queries
from storage.records import JobKind
from storage.writes import add_metrics, update_run
from tests.worker.conftest import tiny_config
from worker import tasks, training_job
from worker.execute import train_run
from worker.huey_app import huey


@pytest.fixture
def immediate():
    huey.immediate = True
    yield huey
    huey.immediate = False


def test_submit_runs_through_the_queue_with_the_training_code_path(lab, immediate) -> None:
    db, _ = lab
    (run_id,) = lifecycle.submit(db, [tiny_config(max_steps=3)], tasks.enqueue_run)
    run = get_run(db, run_id)
    assert (run.status, run.step, run.total_steps, run.error) == ("succeeded", 3, 3, None)
    assert run.started_at and run.finished_at and run.heartbeat_at and run.worker


def test_a_sweep_is_a_study_of_one_run_per_value() -> None:
    plan = studies.plan_study(
        "s", {"objective": {"name": "capo"}}, studies.study_factors(vary=["objective.alpha=0.5,1,2,3,4"])
    )
    assert [c.objective.alpha for c in plan.configs] == [0.5, 1, 2, 3, 4]
    assert plan.configs[0].name == "s[alpha=0.5]"
    with pytest.raises(LabError, match="key.sub=v1,v2"):
        studies.study_factors(vary=["objective.alpha"])
    with pytest.raises(LabError, match="^objective.alpha: "):
        studies.plan_study("s", {"objective": {"name": "capo"}}, {"objective.alpha": ["high"]})


def test_sweep_runs_share_a_study(lab) -> None:
    db, _ = lab
    queued: list[int] = []
    study_id, ids = studies.launch(
        db, {"name": "t", "data": {"dataset": "tiny"}}, queued.append, "train.seed=1,2"
    )
    assert queued == ids and len(ids) == 2
    assert {get_run(db, i).study_id for i in ids} == {study_id}
    assert studies.get_study(db, study_id).name.startswith("t-")


def test_a_cancelled_queued_run_never_starts(lab) -> None:
    db, settings = lab
    (run_id,) = lifecycle.submit(db, [tiny_config(max_steps=2)], lambda _: None)
    assert lifecycle.cancel(db, run_id) == "cancelled before it started"
    outcome = training_job.run_job(db, settings, run_id, "w", threading.Event(), execute=train_run)
    assert outcome.startswith("skipped")
    run = get_run(db, run_id)
    assert run.status == "cancelled" and run.started_at is None
    with pytest.raises(LabError, match="only queued or running runs can be cancelled"):
        lifecycle.cancel(db, run_id)


def test_a_running_run_stops_at_its_next_step_when_cancelled(lab) -> None:
    db, settings = lab
    (run_id,) = lifecycle.submit(db, [tiny_config(epochs=200)], lambda _: None)
    job = threading.Thread(
        target=training_job.run_job,
        args=(db, settings, run_id, "w", threading.Event()),
        kwargs={"execute": train_run},
    )
    job.start()
    while get_run(db, run_id).step < 2:
        time.sleep(0.05)
    assert lifecycle.cancel(db, run_id) == "asked to stop at its next step"
    job.join(timeout=60)
    run = get_run(db, run_id)
    assert run.status == "cancelled" and 2 <= run.step < run.total_steps
    with db.read() as session:
        assert queries.latest_checkpoint(session, run_id).step == run.step


def test_a_stop_signal_leaves_the_run_interrupted_and_resumable(lab, immediate) -> None:
    db, settings = lab
    (run_id,) = lifecycle.submit(db, [tiny_config(max_steps=6)], lambda _: None)
    stop = threading.Event()
    stop.set()
    assert training_job.run_job(db, settings, run_id, "w", stop, execute=train_run) == "interrupted"
    assert get_run(db, run_id).status == "interrupted"
    assert lifecycle.resume(db, run_id, tasks.enqueue_run) == 1
    run = get_run(db, run_id)
    assert (run.status, run.step, run.resumed_from_step) == ("succeeded", 6, 1)


def test_a_training_error_marks_the_run_failed_and_the_worker_goes_on(lab) -> None:
    db, settings = lab
    (run_id,) = lifecycle.submit(db, [tiny_config(max_steps=2, device="cuda:7")], lambda _: None)
    assert training_job.run_job(db, settings, run_id, "w", threading.Event(), execute=train_run) == "failed"
    run = get_run(db, run_id)
    assert run.status == "failed" and "no CUDA GPU" in run.error and "Traceback" in run.traceback


def test_out_of_memory_errors_get_a_hint() -> None:
    assert "smaller train.batch_size" in failure_message(
        RuntimeError("CUDA out of memory. Tried to allocate")
    )
    assert failure_message(ValueError("other")) == "ValueError: other"


def test_stale_running_runs_become_interrupted(lab) -> None:
    db, _ = lab
    (fresh, stale) = lifecycle.submit(db, [tiny_config(), tiny_config()], lambda _: None)
    with db.write() as session:
        update_run(session, fresh, status="running", heartbeat_at=now())
        update_run(session, stale, status="running", heartbeat_at=now() - timedelta(seconds=120))
    assert lifecycle.reap_stale_jobs(db, 30) == [(JobKind.RUN, stale)]
    assert get_run(db, stale).status == "interrupted" and "no heartbeat" in get_run(db, stale).error
    assert get_run(db, fresh).status == "running"


def test_resume_refuses_runs_that_are_not_resumable(lab) -> None:
    db, _ = lab
    (run_id,) = lifecycle.submit(db, [tiny_config()], lambda _: None)
    with pytest.raises(LabError, match="only interrupted, cancelled, failed runs can be resumed"):
        lifecycle.resume(db, run_id, lambda _: None)


def test_resume_without_checkpoint_starts_over_and_drops_partial_metrics(lab) -> None:
    db, _ = lab
    (run_id,) = lifecycle.submit(db, [tiny_config()], lambda _: None)
    with db.write() as session:
        update_run(session, run_id, status="failed")
        add_metrics(session, run_id, [(0, "eval_loss", 1.0), (1, "loss", 0.5)])
    assert lifecycle.resume(db, run_id, lambda _: None) is None
    with db.read() as session:
        assert queries.metrics(session, run_id) == []
    assert get_run(db, run_id).status == "queued"


def test_base_scores_are_computed_once_per_fingerprint_and_reused(lab, immediate) -> None:
    db, _ = lab
    (first,) = lifecycle.submit(db, [tiny_config(max_steps=1, seed=0)], tasks.enqueue_run)
    with db.write() as session:  # mark the stored scores: a run that reuses them must show the mark
        assert session.scalar(text("SELECT COUNT(*) FROM base_scores")) == 12  # 6 train + 6 eval pairs
        session.execute(text("UPDATE base_scores SET logp_chosen = logp_chosen - 1"))
    (second,) = lifecycle.submit(db, [tiny_config(max_steps=1, seed=1)], tasks.enqueue_run)
    with db.read() as session:
        a, b = (queries.pair_scores(session, r, "eval", 0) for r in (first, second))
        assert session.scalar(text("SELECT COUNT(*) FROM base_scores")) == 12
    assert [s.ref_logp_chosen - 1 for s in a] == pytest.approx([s.ref_logp_chosen for s in b])
    other = tiny_config().data.model_copy(update={"max_length": 48})
    assert base_fingerprint(tiny_config().model_copy(update={"data": other}), 1) != base_fingerprint(
        tiny_config(), 1
    )


def test_per_token_log_probs_and_tokens_are_stored_at_every_evaluation(lab, immediate) -> None:
    db, _ = lab
    (run_id,) = lifecycle.submit(db, [tiny_config(max_steps=2, eval_every=1)], tasks.enqueue_run)
    with db.read() as session:
        for step in (0, 1, 2):
            for score in queries.pair_scores(session, run_id, "eval", step):
                assert len(score.chosen_token_logps) == score.n_tokens_chosen
                assert sum(score.chosen_token_logps) == pytest.approx(score.logp_chosen, abs=1e-3)
                assert sum(score.rejected_token_logps) == pytest.approx(score.logp_rejected, abs=1e-3)
        chosen, rejected = queries.token_pieces(session, run_id, score.pair_id)
    assert (len(chosen), len(rejected)) == (score.n_tokens_chosen, score.n_tokens_rejected)
    assert chosen[-1] == "</s>"  # the end-of-turn token is scored and shown
