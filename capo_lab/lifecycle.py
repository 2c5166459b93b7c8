"""The run state machine: every status transition of a run, each a compare-and-set.

``RunStatus``: queued → running → succeeded | failed | cancelled | interrupted.
``submit`` creates queued runs; ``run_job`` (the worker's task and ``capo-lab train``
alike) claims one (queued → running, recording the worker and the device it really
uses), keeps its heartbeat from a thread whatever the step length, trains, and
finishes it (running → final status). A queued run that is cancelled never starts;
a running one stops at its next step, keeps its last checkpoint and becomes
``cancelled``; one stopped by a signal becomes ``interrupted``, as does one whose
heartbeat goes stale (its worker died). ``resume`` re-queues an interrupted,
cancelled or failed run from its newest checkpoint that loads (newer, damaged ones skipped with a note).
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capo.config import ConfigError, RunConfig, read_config_file
from capo_lab.database import Database
from capo_lab.errors import LabError
from capo_lab.runs import create_run, failure_message, get_run, loadable_checkpoint, now, run_config
from capo_lab.settings import Settings
from storage import writes
from storage.records import RESUMABLE, RunStatus

if TYPE_CHECKING:
    from capo.train import RunResult

# Trains a claimed run and returns how it ended: ``worker.execute.train_run`` (the lab's trainer,
# on one process or several). Passed in, so that the services never import the worker.
Executor = Callable[[Database, Settings, int, RunConfig, Callable[[], bool]], "RunResult"]


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
    run_ids = [create_run(db, cfg, study_id=study_id) for cfg in configs]
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
                        status=RunStatus.FAILED,
                        finished_at=now(),
                        error=f"could not be queued: {type(err).__name__}: {err}",
                    )
            raise LabError(f"the queue refused run {run_id}: {err}") from None


def cancel(db: Database, run_id: int | str) -> str:
    """Cancel a queued run now, or ask a running one to stop; returns what happened."""
    run = get_run(db, run_id)
    with db.write() as session:
        if writes.transition(
            session, run.id, RunStatus.QUEUED, status=RunStatus.CANCELLED, finished_at=now()
        ):
            return "cancelled before it started"
        if writes.transition(session, run.id, RunStatus.RUNNING, cancel_requested=True):
            return "asked to stop at its next step"
    status = get_run(db, run.id).status
    raise LabError(f"run {run.id} is {status}; only queued or running runs can be cancelled")


def resume(db: Database, run_id: int | str, enqueue: Callable[[int], None]) -> int | None:
    """Re-queue a resumable run from its newest checkpoint that loads; returns that step (None: from
    the start). A newer checkpoint whose folder is gone or whose files are damaged is skipped, with a
    note on the run saying its step and why; when none loads, a note says the run starts over."""
    run = get_run(db, run_id)
    if run.status not in RESUMABLE:
        raise LabError(f"run {run.id} is {run.status}; only {', '.join(RESUMABLE)} runs can be resumed")
    checkpoint, skipped = loadable_checkpoint(db, run.id)
    step = checkpoint.step if checkpoint else None
    notes = [f"resume: {line}" for line in skipped]
    if skipped and checkpoint is None:
        notes.append("resume: no checkpoint loads; the run starts over from step 0")
    with db.write() as session:
        after = step if step is not None else -1
        if not writes.transition(session, run.id, run.status, status=RunStatus.QUEUED):
            raise LabError(f"run {run.id} changed status meanwhile; try again")
        writes.delete_logged_after(session, run.id, after)
        writes.update_run(
            session,
            run.id,
            resumed_from_step=step,
            cancel_requested=False,
            error=None,
            traceback=None,
            finished_at=None,
            worker=None,
            step=max(after, 0),
        )
        for note in notes:
            writes.append_run_note(session, run.id, note)
    enqueue(run.id)
    return step


def claim(db: Database, run_id: int, worker: str) -> bool:
    """queued → running for ``worker``, atomically; False if anyone else has it (or it was cancelled)."""
    with db.write() as session:
        return writes.transition(
            session,
            run_id,
            RunStatus.QUEUED,
            status=RunStatus.RUNNING,
            worker=worker,
            heartbeat_at=now(),
            cancel_requested=False,
            error=None,
            traceback=None,
        )


def finish(db: Database, run_id: int, status: RunStatus, **fields: Any) -> bool:
    """running → ``status``, atomically; False if the run left ``running`` meanwhile (reaped)."""
    with db.write() as session:
        return writes.transition(
            session, run_id, RunStatus.RUNNING, status=status, finished_at=now(), **fields
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
    *,
    execute: Executor,
) -> str:
    """Claim, heartbeat, train and finish one queued run; returns its final status (never raises for a
    training failure, which is stored on the run). ``execute`` trains it; ``device`` (a worker's
    ``--device``) overrides ``train.device``; ``stop_event`` (a signal) stops it at its next step
    as ``interrupted``."""
    if not claim(db, run_id, worker):
        return f"skipped (run {run_id} is {get_run(db, run_id).status})"
    run = get_run(db, run_id)
    if run.started_at is None:  # a resumed run keeps its first start
        with db.write() as session:
            writes.update_run(session, run_id, started_at=now())

    def cancel_requested() -> bool:
        return get_run(db, run_id).cancel_requested

    with Heartbeat(db, run_id, settings.heartbeat_seconds):
        try:
            cfg = _on_device(db, run_config(run, device), run_id)
            result = execute(db, settings, run_id, cfg, lambda: stop_event.is_set() or cancel_requested())
        except Exception as err:
            finish(db, run_id, RunStatus.FAILED, error=failure_message(err), traceback=traceback.format_exc())
            return RunStatus.FAILED
    stopped = RunStatus.CANCELLED if cancel_requested() else RunStatus.INTERRUPTED
    status = RunStatus.SUCCEEDED if result.status == "succeeded" else stopped
    if not finish(db, run_id, status, step=result.step):
        return f"lost (run {run_id} became {get_run(db, run_id).status} while it trained)"
    if status is RunStatus.SUCCEEDED and cfg.train.generate_at_end:
        from capo_lab.translations import evaluate_at_end  # it imports the run services

        evaluate_at_end(db, settings, run_id, cfg.train.eval_splits, cfg.train.generate_max_new_tokens)
    return status


def _on_device(db: Database, cfg: RunConfig, run_id: int) -> RunConfig:
    """Resolve ``train.device`` once (``auto`` → ``cuda`` or ``cpu``) and record it on the run."""
    from capo.models import resolve_device

    device = resolve_device(cfg.train.device)
    name = str(device) if device.index is not None or device.type == "cpu" else f"{device.type}:0"
    with db.write() as session:
        writes.update_run(session, run_id, device=name)
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"device": name})})
