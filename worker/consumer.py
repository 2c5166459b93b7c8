"""The worker loop: one job at a time, stale runs reaped, graceful stop on SIGINT/SIGTERM.

Huey's own consumer would run jobs in parallel threads and install its own
signal handlers; this loop uses Huey's queue (``dequeue``/``execute``) so that a
signal sets the cooperative stop flag: the running job checkpoints at its next
step and is left ``interrupted`` (resumable).
"""

from __future__ import annotations

import logging
import signal
import time

from capo_lab.database import Database
from capo_lab.lifecycle import reap_stale_runs
from capo_lab.settings import Settings
from worker import runtime
from worker.huey_app import huey

log = logging.getLogger("capo_lab.worker")


def _request_stop(signum: int, _frame: object) -> None:
    log.warning("signal %s: finishing the current step, checkpointing and stopping", signum)
    runtime.context.stop_event.set()


def serve(device: str | None = None, poll_seconds: float = 1.0, max_jobs: int | None = None) -> int:
    """Run queued jobs until stopped; returns how many jobs ran."""
    import worker.tasks  # noqa: F401  (registers the tasks with huey)

    settings = Settings()
    db = Database(settings.database_url)
    ctx = runtime.context
    ctx.device = device
    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    log.info("worker %s serving (device %s)", ctx.name, device or "auto")
    jobs, last_reap = 0, 0.0
    while not ctx.stop_event.is_set() and (max_jobs is None or jobs < max_jobs):
        if time.monotonic() - last_reap >= settings.heartbeat_seconds:
            for run_id in reap_stale_runs(db, settings.stale_after_seconds):
                log.warning("run %s lost its worker: marked interrupted", run_id)
            last_reap = time.monotonic()
        task = huey.dequeue()
        if task is None:
            ctx.stop_event.wait(poll_seconds)
            continue
        log.info("job %s: %s", task.name, task.args)
        outcome = huey.execute(task)
        log.info("job %s%s finished: %s", task.name, task.args, outcome)
        jobs += 1
    return jobs
