"""``capo-lab serve`` leaves no worker behind: SIGTERM stops both, and a SIGKILLed serve's worker exits."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import wait_for_port
from worker.launch import free_port

REPO = Path(__file__).resolve().parents[2]
PROC = Path("/proc")


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: state, ppid, …; OSError once the process is gone."""
    return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    found = []
    for entry in PROC.iterdir():
        try:
            if entry.name.isdigit() and int(stat_fields(int(entry.name))[1]) == pid:
                found.append(int(entry.name))
        except OSError:  # it exited while we looked
            continue
    return found


def workers_of(pid: int) -> list[int]:
    return [child for child in children(pid) if b"worker" in (PROC / str(child) / "cmdline").read_bytes()]


def alive(pid: int) -> bool:
    """False once ``pid`` has exited: gone, or a zombie not reaped yet."""
    try:
        return stat_fields(pid)[0] not in ("Z", "X")
    except OSError:
        return False


def wait_until_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


@pytest.fixture
def serving(lab_home: Path, tmp_path: Path):
    """A running ``capo-lab serve`` and its worker's PID; a test leaving either running gets them killed."""
    port, log = free_port(), tmp_path / "serve.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [sys.executable, "-m", "capo_lab", "serve", "--port", str(port)]
    serve = subprocess.Popen(command, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    workers: list[int] = []
    try:
        wait_for_port(port, seconds=120)
        workers += workers_of(serve.pid)
        assert len(workers) == 1, f"serve's children: {children(serve.pid)}\n{log.read_text()[-2000:]}"
        yield serve, workers[0]
    finally:
        for pid in [serve.pid, *workers]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        serve.wait(timeout=30)


def test_sigterm_stops_serve_and_its_worker(serving) -> None:
    serve, worker = serving
    serve.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=60) >= 0, "serve died of the signal instead of shutting down"
    assert wait_until_gone(worker, seconds=5), "the worker outlived serve"


def test_worker_exits_by_itself_when_serve_is_killed(serving) -> None:
    serve, worker = serving
    serve.send_signal(signal.SIGKILL)
    serve.wait(timeout=10)
    assert wait_until_gone(worker, seconds=60), "the worker outlived a SIGKILLed serve"


def wait_for_new_worker(serve: subprocess.Popen, old: int, seconds: float) -> int | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        new = [pid for pid in workers_of(serve.pid) if pid != old and alive(pid)]
        if new:
            return new[0]
        time.sleep(0.2)
    return None


def test_serve_starts_a_new_worker_when_its_worker_dies(serving) -> None:
    """Issue 20, item 4: a worker that died stayed dead, and nothing queued from the UI ran."""
    serve, worker = serving
    os.kill(worker, signal.SIGKILL)
    replacement = wait_for_new_worker(serve, worker, seconds=30)
    assert replacement is not None, "serve did not start a new worker"
    serve.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=60) >= 0
    assert wait_until_gone(replacement, seconds=5), "the new worker outlived serve"
