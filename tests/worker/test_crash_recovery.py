"""A worker killed with SIGKILL mid-run: the next worker marks the run interrupted; resume finishes it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from capo_lab.database import Database
from capo_lab.settings import Settings
from storage import queries
from tests.conftest import DIVEMT

REPO = Path(__file__).resolve().parents[2]


def capo_lab(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "capo_lab", *args], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def start_worker(log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "capo_lab", "worker", "--device", "cpu"],
        cwd=REPO,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.slow
def test_sigkill_mid_run_then_interrupted_resumed_and_finished(
    shared_data: Path, lab_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPO_LAB_HEARTBEAT_SECONDS", "1")
    monkeypatch.setenv("CAPO_LAB_STALE_AFTER_SECONDS", "5")
    capo_lab("data", "import", str(DIVEMT), "--name", "paper8-cpu", "--per-direction", "1")
    # 6 train pairs in batches of 4: 2 steps an epoch, 16 in all; checkpoints at 5, 10, 15 and 16
    overrides = [
        "--set",
        "train.epochs=8",
        "--set",
        "train.batch_size=4",
        "--set",
        "train.checkpoint_every=5",
        "--set",
        "train.eval_every=20",
    ]
    first = capo_lab("submit", "configs/smoke.yaml", *overrides).split()[-1]
    second = capo_lab("submit", "configs/smoke.yaml", *overrides).split()[-1]
    db = Database(Settings().database_url)

    def run(run_id: str):
        with db.read() as session:
            return queries.get_run(session, int(run_id))

    assert run(first).status == run(second).status == "queued"
    capo_lab("runs", "cancel", second)
    log = tmp_path / "worker.log"
    worker = start_worker(log)
    try:
        wait_for(lambda: run(first).step >= 7, 120, "step 7")  # past the first checkpoint
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        killed_at = run(first).step
        with db.read() as session:
            before = {(m.step, m.key): m.value for m in queries.metrics(session, int(first))}
        assert run(first).status == "running"  # nobody knows yet

        worker = start_worker(log)
        started = time.monotonic()
        wait_for(lambda: run(first).status == "interrupted", 60, "the run to be marked interrupted")
        assert time.monotonic() - started < 60
        capo_lab("runs", "resume", first)
        finished = wait_for(
            lambda: run(first) if run(first).status in ("succeeded", "failed") else None,
            300,
            "the resumed run to finish",
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    assert finished.status == "succeeded", (finished.error, log.read_text()[-3000:])
    assert finished.resumed_from_step is not None and 5 <= finished.resumed_from_step <= killed_at
    assert finished.step == finished.total_steps == 16 > killed_at
    with db.read() as session:
        after = {(m.step, m.key): m.value for m in queries.metrics(session, int(first))}
    kept = {k: v for k, v in before.items() if k[0] <= finished.resumed_from_step}
    assert kept and all(after[k] == v for k, v in kept.items())
    cancelled = run(second)
    assert cancelled.status == "cancelled" and cancelled.started_at is None
    shown = capo_lab("runs", "show", first, "--format", "json")
    for key in ("status", "step", "error", "resumed_from_step", "heartbeat_at", "started_at", "finished_at"):
        assert f'"{key}"' in shown
    assert os.path.exists(log)
