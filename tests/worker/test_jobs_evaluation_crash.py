"""A worker killed with SIGKILL in the middle of a translation evaluation: the next worker marks the
evaluation ``interrupted`` within the stale window, with the reason (issue 20, item 2: the row stayed
``running`` for 16 minutes with two live workers)."""

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from capo.config import load_config
from capo_lab import lifecycle
from capo_lab.database import Database
from capo_lab.settings import Settings
from storage import queries
from tests.conftest import DIVEMT
from tests.worker.test_crash_recovery import REPO, capo_lab, start_worker, wait_for
from worker import training_job
from worker.execute import train_run

STALE_AFTER = 5
QUEUE_EVALUATION = """
import sys
from capo_lab.database import Database
from capo_lab.settings import Settings
from capo_lab.translations import queue_evaluation
from worker.tasks import enqueue_evaluation
db = Database(Settings().database_url)
print(queue_evaluation(db, int(sys.argv[1]), enqueue_evaluation, "last", "eval", True, 256))
"""


def queue_evaluation(run_id: str) -> int:
    """Queue an evaluation as the UI does (``LabService`` → ``translations.queue_evaluation`` with the
    worker's ``enqueue_evaluation``), in a process of its own so that it opens this lab's queue."""
    done = subprocess.run(
        [sys.executable, "-c", QUEUE_EVALUATION, run_id], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


@pytest.mark.slow
def test_an_evaluation_whose_worker_is_killed_is_marked_interrupted_with_the_reason(
    shared_data: Path, lab_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPO_LAB_HEARTBEAT_SECONDS", "1")
    monkeypatch.setenv("CAPO_LAB_STALE_AFTER_SECONDS", str(STALE_AFTER))
    capo_lab("data", "import", str(DIVEMT), "--name", "paper8-cpu", "--per-direction", "1")
    db = Database(Settings().database_url)
    one_sentence_batches = ["train.eval_batch_size=1", "train.epochs=1"]
    cfg = load_config(REPO / "configs" / "smoke.yaml", one_sentence_batches)
    # trained in this process as `capo-lab train` trains (submit, run_job): no second torch import
    (run_id,) = lifecycle.submit(db, [cfg], lambda _: None)
    trained = training_job.run_job(db, Settings(), run_id, "test", threading.Event(), execute=train_run)
    assert trained == "succeeded"
    evaluation_id = queue_evaluation(str(run_id))

    def job():
        with db.read() as session:
            return queries.get_evaluation(session, evaluation_id)

    log = tmp_path / "worker.log"
    worker = start_worker(log)
    try:
        wait_for(
            lambda: job().total is not None and 0 < job().done < job().total, 180, "translation to start"
        )
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        killed = job()
        assert killed.status == "running" and killed.heartbeat_at and killed.worker  # nobody knows yet

        worker = start_worker(log)
        started = time.monotonic()
        wait_for(lambda: job().status != "running", 60, "the evaluation to be reaped")
        assert time.monotonic() - started < 60
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    reaped = job()
    assert reaped.status == "interrupted", (reaped, log.read_text()[-3000:])
    assert reaped.error == f"interrupted: no heartbeat for over {STALE_AFTER} s (worker lost)"
    assert reaped.finished_at is not None and reaped.done == killed.done < reaped.total
    assert f"evaluation {evaluation_id} lost its worker: marked interrupted" in log.read_text()
