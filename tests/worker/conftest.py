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
