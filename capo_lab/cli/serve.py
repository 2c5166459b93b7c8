"""``capo-lab serve``: the web UI, plus one worker process unless told otherwise."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Annotated

import typer

from capo_lab.cli.common import user_errors
from capo_lab.database import Database
from capo_lab.errors import LabError
from capo_lab.settings import Settings

MAX_UPLOAD = "200mb"
WORKER_STOP_SECONDS = 120  # a worker checkpoints its run at the next step; SIGKILL after this long


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``user:password`` → (user, password); None when unset."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise LabError("CAPO_LAB_AUTH must look like user:password")
    return user, password


def _sigterm_as_interrupt(signum: int, _frame: object) -> None:
    """SIGTERM takes Ctrl-C's path: Gradio closes its server and ``serve``'s ``finally`` stops the worker."""
    raise KeyboardInterrupt(f"signal {signum}")


def start_worker() -> subprocess.Popen:
    """One ``capo-lab worker`` that also stops by itself should this process die without stopping it."""
    command = [sys.executable, "-m", "capo_lab", "worker", "--exit-with-parent", str(os.getpid())]
    return subprocess.Popen(command)


def stop_worker(process: subprocess.Popen) -> None:
    """SIGTERM the worker (it checkpoints its current run, then exits); SIGKILL it if it takes too long."""
    process.terminate()
    try:
        process.wait(timeout=WORKER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@user_errors
def serve_command(
    host: Annotated[
        str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the lab to the network")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 7860,
    worker: Annotated[
        bool, typer.Option(help="Also start one worker process (--no-worker where workers run elsewhere)")
    ] = True,
) -> None:
    """Serve the lab UI (Data, Train, Runs, Inspect, Export) and, by default, one worker."""
    from app.main import CSS, build_app
    from capo_lab.service import LabService
    from worker.tasks import enqueue_evaluation, enqueue_run

    settings = Settings()
    auth = parse_auth(settings.auth)
    Database(settings.database_url).close()  # applies the migrations before anything listens
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    worker_process = start_worker() if worker else None
    try:
        demo = build_app(LabService(settings, enqueue_run, enqueue_evaluation))
        demo.queue(default_concurrency_limit=4).launch(
            server_name=host,
            server_port=port,
            auth=auth,
            max_file_size=MAX_UPLOAD,
            css=CSS,
            show_error=True,
        )
    finally:
        if worker_process is not None:
            stop_worker(worker_process)
