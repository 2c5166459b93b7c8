"""A training run as a job, on the worker's side: claim it, keep its heartbeat, train it on the device
it really uses, finish it, and translate at the end when the run asks (``train.generate_at_end``).

``run_job`` is the worker's task and ``capo-lab train`` alike; the state machine it moves the run
through is ``capo_lab.lifecycle``'s.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from capo.config import RunConfig
from capo_lab.database import Database
from capo_lab.lifecycle import WorkDone, claim_job, work_on
from capo_lab.runs import get_run, run_config
from capo_lab.settings import Settings
from storage import writes
from storage.records import JobKind, RunStatus

if TYPE_CHECKING:
    from capo.train import RunResult

# Trains a claimed run and returns how it ended: ``worker.execute.train_run`` (the lab's trainer,
# on one process or several), or a stand-in in tests.
Executor = Callable[[Database, Settings, int, RunConfig, Callable[[], bool]], "RunResult"]


def run_job(
    db: Database,
    settings: Settings,
    run_id: int,
    worker: str,
    stop_event: threading.Event,
    device: str | None = None,
    *,
    execute: Executor,
) -> str:
    """Claim, heartbeat, train and finish one queued run; returns its final status (never raises for a
    training failure, which is stored on the run). ``execute`` trains it; ``device`` (a worker's
    ``--device``) overrides ``train.device``; ``stop_event`` (a signal) stops it at its next step
    as ``interrupted``."""
    if not claim_job(db, JobKind.RUN, run_id, worker):
        return f"skipped (run {run_id} is {get_run(db, run_id).status})"
    run = get_run(db, run_id)

    def train(should_stop: Callable[[], bool]) -> WorkDone:
        cfg = _on_device(db, run_config(run, device), run_id)
        result = execute(db, settings, run_id, cfg, should_stop)
        return WorkDone(result.status == "succeeded", {"step": result.step})

    status = work_on(db, JobKind.RUN, run_id, stop_event, settings.heartbeat_seconds, train)
    if status is None:
        return f"lost (run {run_id} became {get_run(db, run_id).status} while it trained)"
    cfg = run_config(run)
    if status is RunStatus.SUCCEEDED and cfg.train.generate_at_end:
        from worker.evaluate import evaluate_at_end

        splits, max_new_tokens = cfg.train.eval_splits, cfg.train.generate_max_new_tokens
        evaluate_at_end(db, settings, run_id, splits, max_new_tokens, worker, stop_event, device)
    return status


def _on_device(db: Database, cfg: RunConfig, run_id: int) -> RunConfig:
    """Resolve ``train.device`` once (``auto`` → ``cuda`` or ``cpu``) and record it on the run."""
    from capo.models import resolve_device

    device = resolve_device(cfg.train.device)
    name = str(device) if device.index is not None or device.type == "cpu" else f"{device.type}:0"
    with db.write() as session:
        writes.update_run(session, run_id, device=name)
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"device": name})})
