"""Thin named tasks: each takes a run id and calls the same training path as ``capo-lab train``."""

from __future__ import annotations

from capo_lab.database import Database
from capo_lab.lifecycle import run_job
from capo_lab.settings import Settings
from worker import runtime
from worker.huey_app import huey


@huey.task(name="capo_lab.train_run")
def train_run(run_id: int) -> str:
    settings = Settings()
    ctx = runtime.context
    return run_job(Database(settings.database_url), settings, run_id, ctx.name, ctx.stop_event, ctx.device)


def enqueue_run(run_id: int) -> None:
    train_run(run_id)
