"""Job lifecycle: submit, claim, run, cancel, resume, and reaping stale runs.

Statuses: queued → running → succeeded | failed | cancelled | interrupted.
A queued run that is cancelled never starts; a running one stops at its next
step (cooperative flag), keeps its last checkpoint and becomes ``cancelled``.
A run whose heartbeat goes stale while ``running`` becomes ``interrupted``.
``resume`` re-queues an interrupted, cancelled or failed run from its latest checkpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from capo.config import ConfigError, RunConfig, read_config_file
from capo_lab.database import Database
from capo_lab.errors import LabError
from capo_lab.runs import create_run, execute_run, get_run, now
from capo_lab.settings import Settings
from storage import queries, writes

RESUMABLE = ("interrupted", "cancelled", "failed")


def load_raw_config(path: Path) -> dict[str, Any]:
    try:
        return read_config_file(path)
    except ConfigError as err:
        raise LabError(str(err)) from None


def check_chat_template(cfg: RunConfig) -> None:
    """Refuse ``data.chat_template: model`` for a model whose tokenizer has no template, before queuing."""
    if cfg.data.chat_template != "model":
        return
    from capo.models import model_has_chat_template

    try:
        has_template = model_has_chat_template(cfg.model.name_or_path)
    except OSError:  # not loadable here (offline hub id): the trainer checks it when it loads the model
        return
    if not has_template:
        raise LabError(
            f"data.chat_template: model {cfg.model.name_or_path!r} has no chat template of its own; "
            "use data.chat_template=zephyr or none"
        )


def submit(
    db: Database, configs: list[RunConfig], enqueue: Callable[[int], None], study_id: int | None = None
) -> list[int]:
    """Create every run as ``queued`` (in ``study_id`` when given), then enqueue them in order."""
    for cfg in configs:
        check_chat_template(cfg)
    run_ids = [create_run(db, cfg, status="queued", study_id=study_id) for cfg in configs]
    enqueue_all(db, run_ids, enqueue)
    return run_ids


def enqueue_all(db: Database, run_ids: list[int], enqueue: Callable[[int], None]) -> None:
    """Enqueue runs in order; if the queue refuses one, it and the rest are marked failed."""
    for position, run_id in enumerate(run_ids):
        try:
            enqueue(run_id)
        except Exception as err:
            with db.write() as session:
                for orphan in run_ids[position:]:
                    writes.update_run(
                        session,
                        orphan,
                        status="failed",
                        finished_at=now(),
                        error=f"could not be queued: {type(err).__name__}: {err}",
                    )
            raise LabError(f"the queue refused run {run_id}: {err}") from None


def cancel(db: Database, run_id: int | str) -> str:
    """Cancel a queued run now, or ask a running one to stop; returns what happened."""
    run = get_run(db, run_id)
    with db.write() as session:
        if writes.transition(session, run.id, "queued", status="cancelled", finished_at=now()):
            return "cancelled before it started"
        if writes.transition(session, run.id, "running", cancel_requested=True):
            return "asked to stop at its next step"
    status = get_run(db, run.id).status
    raise LabError(f"run {run.id} is {status}; only queued or running runs can be cancelled")


def resume(db: Database, run_id: int | str, enqueue: Callable[[int], None]) -> int | None:
    """Re-queue a resumable run from its latest checkpoint; returns that step (None: from scratch)."""
    run = get_run(db, run_id)
    if run.status not in RESUMABLE:
        raise LabError(f"run {run.id} is {run.status}; only {', '.join(RESUMABLE)} runs can be resumed")
    with db.write() as session:
        checkpoint = queries.latest_checkpoint(session, run.id)
        step = checkpoint.step if checkpoint else None
        after = step if step is not None else -1
        writes.delete_logged_after(session, run.id, after)
        writes.update_run(
            session,
            run.id,
            status="queued",
            resumed_from_step=step,
            cancel_requested=False,
            error=None,
            traceback=None,
            finished_at=None,
            worker=None,
            step=max(after, 0),
        )
    enqueue(run.id)
    return step


def claim(db: Database, run_id: int, worker: str) -> bool:
    """Atomically move a queued run to running for ``worker``; False if anyone else has it."""
    with db.write() as session:
        return writes.transition(
            session,
            run_id,
            "queued",
            status="running",
            worker=worker,
            heartbeat_at=now(),
            cancel_requested=False,
        )


def reap_stale_runs(db: Database, stale_after_seconds: float) -> list[int]:
    """Mark ``running`` runs with a heartbeat older than the threshold ``interrupted``."""
    threshold = now() - timedelta(seconds=stale_after_seconds)
    reason = f"interrupted: no heartbeat for over {stale_after_seconds:.0f} s (worker lost)"
    with db.write() as session:
        return writes.interrupt_stale_runs(session, threshold, reason)


class Heartbeat:
    """Refreshes a run's ``heartbeat_at`` from a background thread while it trains."""

    def __init__(self, db: Database, run_id: int, every_seconds: float) -> None:
        self.db, self.run_id, self.every = db, run_id, every_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            with self.db.write() as session:
                writes.update_run(session, self.run_id, heartbeat_at=now())


def run_job(
    db: Database,
    settings: Settings,
    run_id: int,
    worker: str,
    stop_event: threading.Event,
    device: str | None = None,
) -> str:
    """What a worker does with one queued run id; never raises for a training failure."""
    run = get_run(db, run_id)
    if not claim(db, run_id, worker):
        return f"skipped (run {run_id} is {get_run(db, run_id).status})"
    resume_from = None
    if run.resumed_from_step is not None:
        with db.read() as session:
            checkpoint = queries.latest_checkpoint(session, run_id)
        resume_from = Path(checkpoint.path) if checkpoint else None

    def cancel_requested() -> bool:
        return get_run(db, run_id).cancel_requested

    def should_stop() -> bool:
        return stop_event.is_set() or cancel_requested()

    try:
        with Heartbeat(db, run_id, settings.heartbeat_seconds):
            result = execute_run(
                db,
                settings,
                run_id,
                should_stop,
                resume_from,
                device,
                stopped_status=lambda: "cancelled" if cancel_requested() else "interrupted",
            )
    except Exception:  # stored on the run by execute_run; the worker goes on to the next job
        return "failed"
    return result.status
