"""The job state machine: every status transition of a job, each a compare-and-set.

Every kind of job (``JobKind``: a training run, a translation evaluation) has one lifecycle, its
table holding the same columns. ``RunStatus``: queued → running → succeeded | failed | cancelled |
interrupted. A job is claimed (queued → running, recording the worker), keeps its heartbeat from a
thread whatever its step length while it works (``work_on``), and is finished (running → final
status). A queued job that is cancelled never starts; a running one stops at its next step (a run
keeps its last checkpoint) and becomes ``cancelled``; one stopped by a signal becomes
``interrupted``, as does one whose heartbeat goes stale (its worker died: ``reap_stale_jobs``).

For runs: ``submit`` creates queued runs; ``resume`` re-queues an interrupted, cancelled or failed
run from its newest checkpoint that loads (newer, damaged ones skipped with a note). The work itself
is on the worker's side, which alone loads models: ``worker.training_job.run_job`` (the worker's
task and ``capo-lab train`` alike) and ``worker.evaluate.run_evaluation``. Nothing here imports
torch, so the web process can queue, cancel and resume.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from capo.config import ConfigError, RunConfig, read_config_file
from capo_lab.bugs import log_file
from capo_lab.database import Database
from capo_lab.errors import LabError
from capo_lab.model_names import check_chat_template
from capo_lab.runs import create_run, failure_message, get_run, loadable_checkpoint, now
from storage import queries, writes
from storage.records import RESUMABLE, JobKind, RunStatus

# a failed job's traceback goes to the lab's log file once (``capo_lab.bugs.log_file``), never to a
# terminal: the job itself stores the error in one line (and the traceback, for ``runs show``)
failure_log = logging.getLogger("capo_lab.jobs")
failure_log.propagate = False

# ---- the job lifecycle, the same for every kind of job (``JobKind``: runs, evaluations) -------------


def log_failure(kind: JobKind, job_id: int, err: Exception) -> None:
    """Log a job's failure with its traceback, once, to the lab's log file."""
    path = str(log_file())
    for stale in [h for h in failure_log.handlers if getattr(h, "baseFilename", None) != path]:
        failure_log.removeHandler(stale)  # another home's log (settings changed in this process)
        stale.close()
    if not failure_log.handlers:
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(message)s"))
        failure_log.addHandler(handler)
    failure_log.error("%s %s failed: %s", kind, job_id, failure_message(err), exc_info=err)


def this_process() -> str:
    """How a job names the process that claimed it: ``host:pid`` (a worker's name)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class JobStopped(Exception):
    """Raised inside a job's work once it should stop (a cancel, a stop signal): the job then ends
    ``cancelled`` or ``interrupted``, not ``failed``."""


@dataclass(frozen=True)
class WorkDone:
    """How a job's work ended: ``completed`` (else it stopped early, when asked) and the columns to
    store on the job as it finishes."""

    completed: bool
    fields: Mapping[str, Any] = field(default_factory=dict)


def claim_job(db: Database, kind: JobKind, job_id: int, worker: str) -> bool:
    """queued → running for ``worker``, atomically; False if anyone else has it (or it was cancelled)."""
    with db.write() as session:
        claimed = writes.transition_job(
            session, kind, job_id, RunStatus.QUEUED, status=RunStatus.RUNNING, worker=worker,
            heartbeat_at=now(), cancel_requested=False, error=None, traceback=None,
        )  # fmt: skip
        if claimed:
            writes.mark_started(session, kind, job_id, now())
        return claimed


def finish_job(db: Database, kind: JobKind, job_id: int, status: RunStatus, **fields: Any) -> bool:
    """running → ``status``, atomically; False if the job left ``running`` meanwhile (reaped)."""
    with db.write() as session:
        return writes.transition_job(
            session, kind, job_id, RunStatus.RUNNING, status=status, finished_at=now(), **fields
        )


def cancel_job(db: Database, kind: JobKind, job_id: int, when: str) -> str | None:
    """Cancel a queued job now, or ask a running one to stop (``when``: where it stops); returns what
    happened, None when the job is neither queued nor running."""
    with db.write() as session:
        if writes.transition_job(
            session, kind, job_id, RunStatus.QUEUED, status=RunStatus.CANCELLED, finished_at=now()
        ):
            return "cancelled before it started"
        if writes.transition_job(session, kind, job_id, RunStatus.RUNNING, cancel_requested=True):
            return f"asked to stop {when}"
    return None


def cancel_requested(db: Database, kind: JobKind, job_id: int) -> bool:
    with db.read() as session:
        state = queries.job_state(session, kind, job_id)
    return state is not None and state.cancel_requested


def reap_stale_jobs(db: Database, stale_after_seconds: float) -> list[tuple[JobKind, int]]:
    """Mark ``running`` jobs of every kind whose heartbeat is older than the threshold ``interrupted``,
    with the reason; returns (kind, id) of each."""
    threshold = now() - timedelta(seconds=stale_after_seconds)
    reason = f"interrupted: no heartbeat for over {stale_after_seconds:.0f} s (worker lost)"
    with db.write() as session:
        return [(k, i) for k in JobKind for i in writes.interrupt_stale_jobs(session, k, threshold, reason)]


class Heartbeat:
    """Refreshes a job's ``heartbeat_at`` from a background thread while it works."""

    def __init__(self, db: Database, kind: JobKind, job_id: int, every_seconds: float) -> None:
        self.db, self.kind, self.job_id, self.every = db, kind, job_id, every_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{kind}-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            with self.db.write() as session:
                writes.update_job(session, self.kind, self.job_id, heartbeat_at=now())


def work_on(
    db: Database,
    kind: JobKind,
    job_id: int,
    stop_event: threading.Event,
    heartbeat_seconds: float,
    work: Callable[[Callable[[], bool]], WorkDone],
) -> RunStatus | None:
    """Run a claimed job's ``work(should_stop)`` under a heartbeat and finish the job: succeeded,
    cancelled (a cancel was asked for), interrupted (``stop_event``: a signal) or failed (its error
    stored in one line with the traceback, which is logged once). Returns the status; None when the
    job left ``running`` meanwhile (reaped as stale)."""

    def should_stop() -> bool:
        return stop_event.is_set() or cancel_requested(db, kind, job_id)

    with Heartbeat(db, kind, job_id, heartbeat_seconds):
        try:
            done = work(should_stop)
        except JobStopped:
            done = WorkDone(False)
        except Exception as err:
            log_failure(kind, job_id, err)
            stored = finish_job(
                db,
                kind,
                job_id,
                RunStatus.FAILED,
                error=failure_message(err),
                traceback=traceback.format_exc(),
            )
            return RunStatus.FAILED if stored else None
    stopped = RunStatus.CANCELLED if cancel_requested(db, kind, job_id) else RunStatus.INTERRUPTED
    status = RunStatus.SUCCEEDED if done.completed else stopped
    return status if finish_job(db, kind, job_id, status, **done.fields) else None


# ---- runs --------------------------------------------------------------------------------------------


def load_raw_config(path: Path) -> dict[str, Any]:
    try:
        return read_config_file(path)
    except ConfigError as err:
        raise LabError(str(err)) from None


def submit(
    db: Database, configs: list[RunConfig], enqueue: Callable[[int], None], study_id: int | None = None
) -> list[int]:
    """Create every run as ``queued`` (in ``study_id`` when given), then enqueue them in order."""
    for cfg in configs:
        check_chat_template(cfg)
    run_ids = [create_run(db, cfg, study_id=study_id) for cfg in configs]
    enqueue_all(db, run_ids, enqueue)
    return run_ids


def enqueue_job(db: Database, kind: JobKind, job_id: int, enqueue: Callable[[int], None]) -> None:
    """Put one queued job on the queue; if the queue refuses it, the job is marked failed (so it never
    waits for a worker) and the refusal is one ``LabError`` line."""
    try:
        enqueue(job_id)
    except Exception as err:
        with db.write() as session:
            writes.transition_job(
                session, kind, job_id, RunStatus.QUEUED, status=RunStatus.FAILED,
                finished_at=now(), error=f"could not be queued: {failure_message(err)}",
            )  # fmt: skip
        raise LabError(f"the queue refused {kind} {job_id}: {err}") from None


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
    done = cancel_job(db, JobKind.RUN, run.id, "at its next step")
    if done is None:
        status = get_run(db, run.id).status
        raise LabError(f"run {run.id} is {status}; only queued or running runs can be cancelled")
    return done


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
