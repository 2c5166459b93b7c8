"""Execute a claimed run: ``capo.train`` in this process, or its ranks through ``worker.launch``.

``worker.training_job.run_job`` owns the run's status and calls ``train_run`` as its executor;
the worker's task and ``capo-lab train`` both pass it in. Each rank of a data-parallel run
prepares itself with the same ``worker.prepare.prepare_run``.
"""

from __future__ import annotations

from collections.abc import Callable

from capo.config import RunConfig
from capo.train import RunResult, train
from capo_lab.database import Database
from capo_lab.runs import run_dir
from capo_lab.settings import Settings
from worker.launch import train_in_processes
from worker.prepare import prepare_run, training_config


def train_run(
    db: Database, settings: Settings, run_id: int, cfg: RunConfig, should_stop: Callable[[], bool]
) -> RunResult:
    """Train a claimed run, from its checkpoint when it was resumed; metrics, scores and
    checkpoints go to the database as it trains."""
    if cfg.train.num_processes > 1:
        return train_in_processes(run_dir(settings, run_id), run_id, training_config(cfg), should_stop)
    prepared = prepare_run(db, settings, run_id, cfg)
    return train(prepared.config, prepared.inputs, prepared.sink, should_stop)
