"""`capo-lab train` beside a worker: its heartbeat beats on its own, so the worker never reaps it."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import capo.train as train_module
from capo_lab.cli import app
from tests.conftest import DIVEMT

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
runner = CliRunner()


@pytest.mark.slow
def test_a_slow_cli_run_beside_a_worker_is_never_reaped_and_records_its_device(
    lab_home: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        runner.invoke(
            app, ["data", "import", str(DIVEMT), "--name", "paper8-cpu", "--per-direction", "1"]
        ).exit_code
        == 0
    )
    monkeypatch.setenv("CAPO_LAB_HEARTBEAT_SECONDS", "1")
    env = {**os.environ, "CAPO_LAB_STALE_AFTER_SECONDS": "3", "CAPO_LAB_HEARTBEAT_SECONDS": "1"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "capo_lab", "worker"], env=env, stderr=subprocess.PIPE, text=True
    )
    real_step = train_module.compute_objective

    def slow_objective(*args, **kwargs):  # each step (and evaluation batch) takes over 3 s
        time.sleep(3.5)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train_module, "compute_objective", slow_objective)
    try:
        time.sleep(2)  # the worker is up and reaping every second
        quick = ["--set", "train.max_steps=2", "--set", "train.evaluate=false"]
        result = runner.invoke(app, ["train", str(SMOKE), *quick])
    finally:
        worker.terminate()
        log = worker.communicate(timeout=60)[1]
    assert result.exit_code == 0, result.stderr + result.stdout
    run_id = result.stdout.split()[-1]
    shown = json.loads(runner.invoke(app, ["runs", "show", run_id, "--format", "json"]).stdout)
    assert (shown["status"], shown["error"], shown["device"]) == ("succeeded", None, "cpu")
    assert "lost its worker" not in log
