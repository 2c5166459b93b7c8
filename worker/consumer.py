"""The worker loop: one job at a time, stale jobs (runs, evaluations) reaped, graceful stop on SIGINT/SIGTERM
(and, when asked, when the process that started it dies).

Huey's own consumer would run jobs in parallel threads and install its own
signal handlers; this loop uses Huey's queue (``dequeue``/``execute``) so that a
signal sets the cooperative stop flag: the running job checkpoints at its next
step and is left ``interrupted`` (resumable).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from capo_lab.database import Database
from capo_lab.lifecycle import reap_stale_jobs
from capo_lab.settings import Settings
from worker import runtime

log = logging.getLogger("capo_lab.worker")


def _request_stop(signum: int, _frame: object) -> None:
    log.warning("signal %s: finishing the current step, checkpointing and stopping", signum)
    runtime.context.stop_event.set()


def watch_parent(parent_pid: int, stop_event: threading.Event, poll_seconds: float = 1.0) -> threading.Thread:
    """A daemon thread that sets ``stop_event`` once ``parent_pid`` is no longer this process's parent.

    When a parent dies its children are re-parented (to PID 1 or a subreaper), so ``os.getppid()`` changes.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            if stop_event.wait(poll_seconds):
                return
        log.warning("parent %s is gone: finishing the current step, checkpointing and stopping", parent_pid)
        stop_event.set()

    thread = threading.Thread(target=watch, name=f"watch-parent-{parent_pid}", daemon=True)
    thread.start()
    return thread


def serve(
    device: str | None = None,
    poll_seconds: float = 1.0,
    max_jobs: int | None = None,
    parent_pid: int | None = None,
) -> int:
    """Run queued jobs until stopped (also once ``parent_pid``, when given, dies); returns how many ran.

    The database is opened once here and shared by every job (``runtime.context.database``)."""
    runtime.quiet_libraries()  # before the tasks import transformers and bitsandbytes
    settings = Settings()
    # the database first, so that a storage problem (read-only home, damaged file, newer schema) is
    # one line before the queue is imported and opened; an older schema is brought to head here
    db = Database(settings.database_url)
    ctx = runtime.context
    ctx.database, ctx.device = db, device
    try:
        return _serve_jobs(db, settings, poll_seconds, max_jobs, parent_pid)
    finally:
        ctx.database = None
        db.close()


def _serve_jobs(
    db: Database, settings: Settings, poll_seconds: float, max_jobs: int | None, parent_pid: int | None
) -> int:
    import worker.tasks  # noqa: F401  (registers the tasks with huey)
    from worker.huey_app import huey, queue_problems  # opens the queue (under CAPO_LAB_HOME unless Redis)

    ctx = runtime.context
    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    if parent_pid is not None:
        watch_parent(parent_pid, ctx.stop_event, poll_seconds)
    log.info("worker %s serving (device %s)", ctx.name, ctx.device or "auto")
    jobs, last_reap = 0, 0.0
    while not ctx.stop_event.is_set() and (max_jobs is None or jobs < max_jobs):
        if time.monotonic() - last_reap >= settings.heartbeat_seconds:
            for kind, job_id in reap_stale_jobs(db, settings.stale_after_seconds):
                log.warning("%s %s lost its worker: marked interrupted", kind, job_id)
            last_reap = time.monotonic()
        with queue_problems():
            task = huey.dequeue()
        if task is None:
            ctx.stop_event.wait(poll_seconds)
            continue
        log.info("job %s: %s", task.name, task.args)
        outcome = huey.execute(task)
        log.info("job %s%s finished: %s", task.name, task.args, outcome)
        jobs += 1
    return jobs
