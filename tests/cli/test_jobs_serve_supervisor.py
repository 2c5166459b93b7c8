"""``capo-lab serve`` keeps its worker running (issue 20, item 4): the supervisor ``serve`` uses,
tested with a cheap child in place of ``capo-lab worker`` (tests/cli/test_serve_shutdown.py kills
the worker of a real ``capo-lab serve``)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from capo_lab.cli.serve import WorkerSupervisor, exit_description, restart_allowed

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
CRASHER = [sys.executable, "-c", "raise SystemExit(3)"]


def wait_until(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out after {seconds} s waiting for {what}")


class Starts:
    """``start`` for the supervisor: records every child it starts."""

    def __init__(self, command: list[str]) -> None:
        self.command, self.children = command, []

    def __call__(self) -> subprocess.Popen:
        self.children.append(subprocess.Popen(self.command))
        return self.children[-1]


@pytest.fixture
def supervised(request):
    """Make supervisors; each is stopped, and its children reaped, at the end of the test."""
    made: list[tuple[WorkerSupervisor, Starts]] = []

    def make(command: list[str], limit: int = 2, window: float = 60.0):
        starts = Starts(command)
        made.append((WorkerSupervisor(starts, limit, window, poll_seconds=0.02), starts))
        return made[-1]

    yield make
    for supervisor, starts in made:
        supervisor.stop()
        for child in starts.children:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=10)


def test_a_killed_worker_is_replaced_with_one_log_line_until_the_cap(supervised, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="capo_lab.serve")
    supervisor, starts = supervised(SLEEPER, limit=2)
    for restart in (1, 2):
        os.kill(supervisor.process.pid, signal.SIGKILL)
        wait_until(lambda n=restart: len(starts.children) == n + 1, 10, f"restart {restart}")
        assert supervisor.process is starts.children[-1] and supervisor.process.poll() is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        warnings == ["the worker stopped unexpectedly (killed by signal 9 (SIGKILL)); starting a new one"] * 2
    )
    os.kill(supervisor.process.pid, signal.SIGKILL)
    wait_until(
        lambda: any(r.levelno == logging.ERROR for r in caplog.records), 10, "the supervisor to give up"
    )
    time.sleep(0.2)  # several polls: no third restart
    assert len(starts.children) == 3
    (gave_up,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "after 2 restarts within 60 s; not starting another" in gave_up and "capo-lab worker" in gave_up


def test_a_worker_crashing_at_start_is_restarted_only_up_to_the_cap(supervised, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="capo_lab.serve")
    supervisor, starts = supervised(CRASHER, limit=3)
    wait_until(
        lambda: any(r.levelno == logging.ERROR for r in caplog.records), 30, "the supervisor to give up"
    )
    time.sleep(0.2)
    assert len(starts.children) == 1 + 3 and len(supervisor.restarts) == 3
    assert all("(exit code 3)" in r.getMessage() for r in caplog.records)


def test_stop_ends_the_worker_and_starts_no_other(supervised) -> None:
    supervisor, starts = supervised(SLEEPER)
    supervisor.stop()
    assert starts.children[0].returncode == -signal.SIGTERM
    time.sleep(0.2)
    assert len(starts.children) == 1


def test_restarts_are_counted_within_the_window() -> None:
    assert restart_allowed((), 0.0, 1, 60.0)
    assert not restart_allowed((10.0,), 20.0, 1, 60.0)
    assert restart_allowed((10.0,), 70.0, 1, 60.0)  # the earlier one left the window
    assert not restart_allowed((10.0, 50.0), 70.0, 1, 60.0)


def test_exit_codes_are_described() -> None:
    assert exit_description(3) == "exit code 3"
    assert exit_description(-signal.SIGKILL) == "killed by signal 9 (SIGKILL)"
