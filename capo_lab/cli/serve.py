"""``capo-lab serve``: the web UI, plus one worker process unless told otherwise.

The worker is supervised (``WorkerSupervisor``): when it exits unexpectedly, serve logs one line
with its exit code and starts a new one, at most ``RESTARTS`` times within ``RESTART_WINDOW_SECONDS``;
past that it logs that it gives up and the UI keeps serving."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Annotated

import typer

from capo_lab.cli.common import user_errors
from capo_lab.database import Database
from capo_lab.errors import LabError
from capo_lab.settings import Settings

MAX_UPLOAD = "200mb"
WORKER_STOP_SECONDS = 120  # a worker checkpoints its run at the next step; SIGKILL after this long
RESTARTS = 5  # new workers started after unexpected exits, at most, within the window
RESTART_WINDOW_SECONDS = 600.0

log = logging.getLogger("capo_lab.serve")


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
    if process.poll() is not None:  # gone already (reaped)
        return
    process.terminate()
    try:
        process.wait(timeout=WORKER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def restart_allowed(restarts: tuple[float, ...], at: float, limit: int, window_seconds: float) -> bool:
    """Whether one more restart at ``at`` stays within ``limit`` restarts in any ``window_seconds``."""
    return sum(1 for t in restarts if at - t < window_seconds) < limit


def exit_description(code: int) -> str:
    """``exit code 3``, or ``killed by signal 9 (SIGKILL)`` for a negative return code."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by signal {-code} ({signal.Signals(-code).name})"
    except ValueError:
        return f"killed by signal {-code}"


class WorkerSupervisor:
    """Keeps one worker process running: ``start()`` makes one now, and a watcher thread makes a new
    one whenever it exits unexpectedly (one warning line with its exit code), at most ``limit`` times
    within ``window_seconds``; past that it logs that it gives up and leaves it. ``stop`` ends the
    watch first, then stops the current worker (``stop_worker``), so nothing starts after it."""

    def __init__(
        self,
        start: Callable[[], subprocess.Popen],
        limit: int = RESTARTS,
        window_seconds: float = RESTART_WINDOW_SECONDS,
        poll_seconds: float = 1.0,
    ) -> None:
        self._start, self.limit, self.window, self.poll = start, limit, window_seconds, poll_seconds
        self.process = start()
        self.restarts: tuple[float, ...] = ()  # monotonic times of the restarts made
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll):
            code = self.process.poll()
            if code is not None and not self._stopping.is_set() and not self._restart(code):
                return

    def _restart(self, code: int) -> bool:
        at = time.monotonic()
        if not restart_allowed(self.restarts, at, self.limit, self.window):
            log.error(
                "the worker stopped (%s) after %d restarts within %.0f s; not starting another: "
                "the UI keeps serving, start a worker with `capo-lab worker`",
                exit_description(code), self.limit, self.window,
            )  # fmt: skip
            return False
        log.warning("the worker stopped unexpectedly (%s); starting a new one", exit_description(code))
        self.restarts = (*(t for t in self.restarts if at - t < self.window), at)
        self.process = self._start()
        return True

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        stop_worker(self.process)


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
    from worker.tasks import enqueue_benchmark, enqueue_evaluation, enqueue_run

    settings = Settings()
    auth = parse_auth(settings.auth)
    Database(settings.database_url).close()  # applies the migrations before anything listens
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    supervisor = WorkerSupervisor(start_worker) if worker else None
    try:
        demo = build_app(LabService(settings, enqueue_run, enqueue_evaluation, enqueue_benchmark))
        demo.queue(default_concurrency_limit=4).launch(
            server_name=host,
            server_port=port,
            auth=auth,
            max_file_size=MAX_UPLOAD,
            css=CSS,
            show_error=True,
        )
    finally:
        if supervisor is not None:
            supervisor.stop()
