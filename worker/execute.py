"""Execute a claimed run: ``capo.train`` in this process, or its ranks through ``worker.launch``.

``capo_lab.lifecycle.run_job`` owns the run's status and calls ``train_run`` as its executor;
the worker's task and ``capo-lab train`` both pass it in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from capo.config import RunConfig
from capo.precision import resolve_bf16
from capo.train import RunResult, train
from capo_lab.database import Database
from capo_lab.datasets import get_dataset
from capo_lab.runs import DatabaseSink, base_fingerprint, get_run, run_dir, run_inputs
from capo_lab.settings import Settings
from storage import queries
from worker.launch import train_in_processes


def train_run(
    db: Database, settings: Settings, run_id: int, cfg: RunConfig, should_stop: Callable[[], bool]
) -> RunResult:
    """Train a claimed run, from its latest checkpoint when it was resumed; metrics, scores and
    checkpoints go to the database as it trains."""
    cfg = resolve_bf16(cfg)  # "auto" decided here, so the fingerprint says what was computed
    resume_from = None
    if get_run(db, run_id).resumed_from_step is not None:
        with db.read() as session:
            checkpoint = queries.latest_checkpoint(session, run_id)
        resume_from = Path(checkpoint.path) if checkpoint else None
    if cfg.train.num_processes > 1:
        return train_in_processes(run_dir(settings, run_id), run_id, cfg, resume_from, should_stop)
    inputs = run_inputs(db, settings, cfg, run_id, resume_from)
    fingerprint = base_fingerprint(cfg, get_dataset(db, cfg.data.dataset).id)
    return train(cfg, inputs, DatabaseSink(db, run_id, fingerprint), should_stop)
