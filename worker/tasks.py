"""Thin named tasks taking ids: a run to train (the same path as `capo-lab train`), an evaluation to run."""

from __future__ import annotations

from capo_lab.database import Database
from capo_lab.lifecycle import run_job
from capo_lab.settings import Settings
from capo_lab.translations import run_evaluation
from worker import runtime
from worker.huey_app import huey


@huey.task(name="capo_lab.train_run")
def train_run(run_id: int) -> str:
    settings = Settings()
    ctx = runtime.context
    return run_job(Database(settings.database_url), settings, run_id, ctx.name, ctx.stop_event, ctx.device)


def enqueue_run(run_id: int) -> None:
    train_run(run_id)


@huey.task(name="capo_lab.evaluate_translations")
def evaluate_translations_job(evaluation_id: int) -> str:
    settings = Settings()
    return run_evaluation(Database(settings.database_url), settings, evaluation_id)


def enqueue_evaluation(evaluation_id: int) -> None:
    evaluate_translations_job(evaluation_id)
