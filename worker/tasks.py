"""The Huey tasks, each taking an id: train a run, evaluate a run's translations, run a benchmark.

``enqueue_run``, ``enqueue_evaluation`` and ``enqueue_benchmark`` put a task on the queue; the
front ends pass them to the services. The tasks run in ``worker.consumer``'s loop, which sets
``runtime.context`` (the worker's name, its stop flag, its ``--device`` and the one database every
job shares). The trainer, the translator and the benchmark are imported only when a job starts, so
the web process that enqueues never loads torch.
"""

from __future__ import annotations

from capo_lab.settings import Settings
from worker import runtime
from worker.huey_app import huey, queue_problems


@huey.task(name="capo_lab.train_run")
def train_run(run_id: int) -> str:
    from worker.execute import train_run as execute
    from worker.training_job import run_job

    settings = Settings()
    ctx = runtime.context
    db = ctx.shared_database(settings.database_url)
    try:
        return run_job(db, settings, run_id, ctx.name, ctx.stop_event, ctx.device, execute=execute)
    finally:
        release_device_memory(ctx.device)


def enqueue_run(run_id: int) -> None:
    with queue_problems():
        train_run(run_id)


@huey.task(name="capo_lab.evaluate_translations")
def evaluate_translations_job(evaluation_id: int) -> str:
    from worker.evaluate import run_evaluation

    settings = Settings()
    ctx = runtime.context
    db = ctx.shared_database(settings.database_url)
    try:
        return run_evaluation(db, settings, evaluation_id, ctx.name, ctx.stop_event, ctx.device)
    finally:
        release_device_memory(ctx.device)


def release_device_memory(device: str | None) -> None:
    """The CUDA memory a finished job cached goes back to the device (nothing to do on a CPU)."""
    import torch

    from capo.distributed import release_cached_memory

    if torch.cuda.is_available() and (device is None or device.startswith("cuda")):
        release_cached_memory(torch.device(device or "cuda"))


def enqueue_evaluation(evaluation_id: int) -> None:
    with queue_problems():
        evaluate_translations_job(evaluation_id)


@huey.task(name="capo_lab.benchmark")
def benchmark_job(benchmark_id: int) -> str:
    from worker.benchmark import run_benchmark

    settings = Settings()
    ctx = runtime.context
    db = ctx.shared_database(settings.database_url)
    try:
        return run_benchmark(db, settings, benchmark_id, ctx.name, ctx.stop_event, ctx.device)
    finally:
        release_device_memory(ctx.device)


def enqueue_benchmark(benchmark_id: int) -> None:
    with queue_problems():
        benchmark_job(benchmark_id)
