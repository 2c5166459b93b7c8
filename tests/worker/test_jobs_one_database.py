"""One ``Database`` per worker process (issue 20, item 9): the worker loop opens it once and every job
shares it; before, each job opened its own (an engine and an Alembic upgrade) and left it open."""

import signal

import pytest

from capo_lab import lifecycle, translations
from capo_lab.database import Database
from tests.worker.conftest import tiny_config
from worker import consumer, runtime, tasks
from worker.huey_app import huey


@pytest.fixture
def quiet_queue():
    """The process's queue, empty before and after; the signal handlers the loop installs restored."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    huey.immediate = False
    huey.flush()
    yield huey
    huey.flush()
    for number, handler in handlers.items():
        signal.signal(number, handler)


def test_every_job_of_a_worker_shares_the_one_database_it_opened(lab, quiet_queue, monkeypatch) -> None:
    db, _ = lab
    runs = lifecycle.submit(db, [tiny_config(), tiny_config()], tasks.enqueue_run)
    evaluations = [
        translations.queue_evaluation(db, run_id, tasks.enqueue_evaluation, "last", "eval", True, 4)
        for run_id in runs
    ]
    for run_id, evaluation_id in zip(runs, evaluations, strict=True):  # each job then ends at its claim
        lifecycle.cancel(db, run_id)
        translations.cancel_evaluation(db, evaluation_id)
    opened: list[Database] = []
    real_init = Database.__init__

    def counting_init(self, *args, **kwargs) -> None:
        real_init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(Database, "__init__", counting_init)
    assert consumer.serve(poll_seconds=0.05, max_jobs=4) == 4
    assert len(opened) == 1, f"{len(opened)} databases opened for 4 jobs"
    assert runtime.context.database is None  # closed and let go when the loop ended
