"""train.num_processes = 2: two gloo ranks through `accelerate launch` give one process's losses."""

import threading
import time

import pytest

from capo.config import config_from_dict
from capo_lab import lifecycle
from capo_lab.runs import get_run, run_dir
from storage import queries
from tests.worker.conftest import tiny_config
from worker import training_job
from worker.execute import train_run


def losses(db, run_id: int) -> dict[int, float]:
    with db.read() as session:
        return {m.step: m.value for m in queries.metrics(session, run_id) if m.key == "loss"}


def eval_accuracy(db, run_id: int) -> dict[int, float]:
    with db.read() as session:
        return {
            m.step: m.value for m in queries.metrics(session, run_id) if m.key == "eval_rewards/accuracies"
        }


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["capo", "dpo"])
def test_two_processes_match_one_with_the_same_global_batch(lab, objective) -> None:
    db, settings = lab
    # dropout 0: both runs then see identical forward passes; batch 3 leaves one rank a 1-pair share
    configs = [
        config_from_dict(
            {
                "model": {"name_or_path": "tiny-random-llama"},
                "data": {"dataset": "tiny", "max_length": 64},
                "objective": {"name": objective},
                "lora": {"dropout": 0.0},
                "optim": {"lr": 1e-3},
                "train": {
                    "max_steps": 4,
                    "batch_size": 3,
                    "eval_every": 2,
                    "device": "cpu",
                    "num_processes": n,
                    "bf16": False,  # equal to 1e-5 needs float32 on both sides
                },
            }
        )
        for n in (1, 2)
    ]
    single, double = lifecycle.submit(db, configs, lambda _: None)
    for run_id in (single, double):
        outcome = training_job.run_job(db, settings, run_id, "w", threading.Event(), execute=train_run)
        assert outcome == "succeeded", get_run(db, run_id).error
    launched = run_dir(settings, double)
    assert (launched / "result.json").exists() and not (run_dir(settings, single) / "result.json").exists()
    one, two = losses(db, single), losses(db, double)
    assert sorted(two) == [1, 2, 3, 4]
    for step in one:
        assert two[step] == pytest.approx(one[step], abs=1e-5)
    assert eval_accuracy(db, double) == pytest.approx(eval_accuracy(db, single), abs=1e-9)
    with db.read() as session:
        assert len(queries.pair_scores(session, double, "eval", 4)) == 6  # rank 0 stored every eval pair once
        assert queries.latest_checkpoint(session, double).step == 4


@pytest.mark.slow
def test_a_cancelled_two_process_run_stops_checkpoints_and_resumes(lab) -> None:
    db, settings = lab
    cfg = tiny_config(epochs=200, device="cpu", num_processes=2)
    (run_id,) = lifecycle.submit(db, [cfg], lambda _: None)
    job = threading.Thread(
        target=training_job.run_job,
        args=(db, settings, run_id, "w", threading.Event()),
        kwargs={"execute": train_run},
    )
    job.start()
    deadline = time.monotonic() + 120
    while get_run(db, run_id).step < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lifecycle.cancel(db, run_id) == "asked to stop at its next step"
    job.join(timeout=120)
    run = get_run(db, run_id)
    assert run.status == "cancelled" and 3 <= run.step < run.total_steps, run.error
    with db.read() as session:
        assert queries.latest_checkpoint(session, run_id).step == run.step  # rank 0 saved where both stopped

    assert lifecycle.resume(db, run_id, lambda _: None) == run.step
    shutdown = threading.Event()
    shutdown.set()  # a worker shutting down: the ranks load the checkpoint, train one step and stop
    assert training_job.run_job(db, settings, run_id, "w", shutdown, execute=train_run) == "interrupted"
    again = get_run(db, run_id)
    assert again.status == "interrupted" and again.resumed_from_step == run.step
    assert run.step < again.step < run.total_steps
