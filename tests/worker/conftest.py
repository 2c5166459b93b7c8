from pathlib import Path

import pytest

from capo.config import config_from_dict
from capo_lab.database import Database
from capo_lab.settings import Settings
from storage.writes import add_dataset
from tests.storage.test_storage import pairs as make_pairs


@pytest.fixture
def lab(lab_home: Path, monkeypatch: pytest.MonkeyPatch):
    """A database with a tiny synthetic dataset, fast heartbeats, and settings for the worker."""
    monkeypatch.setenv("CAPO_LAB_HEARTBEAT_SECONDS", "0.2")
    settings = Settings()
    db = Database(settings.database_url)
    with db.write() as session:
        rows = [
            p.__class__(p.direction, split, p.prompt, p.chosen, p.rejected, p.source_text, p.origin, p.hter)
            for split in ("train", "eval")
            for p in make_pairs(6)
        ]
        add_dataset(session, "tiny", rows, {}, [], {})
    return db, settings


def tiny_config(**train):
    return config_from_dict(
        {
            "name": "t",
            "model": {"name_or_path": "tiny-random-llama"},
            "data": {"dataset": "tiny", "max_length": 64},
            "optim": {"lr": 1e-3},
            "train": {"batch_size": 2, "eval_every": 50, "checkpoint_every": 2, **train},
        }
    )


def serve_one_job() -> None:
    """The worker's loop in this process until it has run one queued job; the signal handlers it
    installs restored, its stop event cleared and the queue emptied after."""
    import signal

    from worker import runtime
    from worker.consumer import serve
    from worker.huey_app import huey

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert serve(max_jobs=1, poll_seconds=0.1) == 1
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        runtime.context.stop_event.clear()
        huey.flush()
