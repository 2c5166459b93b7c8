"""``capo-lab study --wait`` waits for the study's runs (run by a worker process) and prints the
report's summary; in a pipe it draws no bar (issue 23 item 5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capo_lab.cli import app
from tests.conftest import DIVEMT

REPO = Path(__file__).resolve().parents[2]


def capo_lab(*args: str) -> list[str]:
    return [sys.executable, "-c", "from capo_lab.cli import main; main()", *args]


@pytest.mark.slow
def test_study_wait_prints_the_summary_once_the_worker_has_run_every_run(
    lab_home: Path, shared_data: Path
) -> None:
    env = {**os.environ}
    imported = CliRunner().invoke(  # in this process: the study and the worker below are what is tested
        app, ["data", "import", str(DIVEMT), "--name", "paper8-cpu", "--per-direction", "1"]
    )
    assert imported.exit_code == 0, imported.stderr
    study = capo_lab(
        "study", "configs/smoke.yaml", "--name", "w", "--objectives", "capo,dpo", "--set", "train.epochs=1",
        "--wait",
    )  # fmt: skip
    waiting = subprocess.Popen(
        study, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    worker = subprocess.Popen(capo_lab("worker"), env=env, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        out, err = waiting.communicate(timeout=900)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=120)
    assert waiting.returncode == 0, err[-2000:]
    lines = out.strip().splitlines()
    assert lines[:3] == ["queued run 1: w[capo]", "queued run 2: w[dpo]", "study 'w': 2 runs; study id 1"]
    assert lines[3].startswith("waiting for the runs")
    assert lines[4] == "Study w (#1), eval split, step last"  # smoke scores no validation split: last
    assert lines[5:7] == ["#1 w[capo]: succeeded, step 1", "#2 w[dpo]: succeeded, step 1"]
    assert "Primary comparisons:" in lines and any(
        line.startswith("capo − dpo, all directions:") for line in lines
    )
    assert lines[-1] == "The whole report: capo-lab report 1 --format html --out report.html"
    assert "\x1b" not in out and "ETA" not in out  # no bar in a pipe
