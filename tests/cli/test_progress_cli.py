"""``capo-lab train`` shows a progress bar (step, ETA, loss, eval accuracy) on a terminal, and nothing
but its plain lines in a pipe or with --quiet (issue 23 item 5).

The terminal is a real pseudo-terminal (``os.openpty``), 160 columns wide; the run is the smoke
preset on tiny-random-llama, 3 steps on 6 pairs, evaluated after each step."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capo_lab.cli import app
from tests.conftest import DIVEMT

REPO = Path(__file__).resolve().parents[2]
SMALL = ["--set", "train.epochs=3", "--set", "train.eval_every=1", "--set", "train.checkpoint_every=3"]
CURSOR_HIDDEN = "\x1b[?25l"  # rich hides the cursor while a live bar is drawn


def capo_lab(*args: str) -> list[str]:
    return [sys.executable, "-c", "from capo_lab.cli import main; main()", *args]


def in_terminal(args: list[str], env: dict[str, str], timeout: float = 600) -> tuple[int, str]:
    """Run ``args`` with stdin, stdout and stderr on a fresh 40×160 pseudo-terminal; (exit code, output)."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, env=env, cwd=REPO)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], timeout)
        if not ready:
            proc.kill()
            raise AssertionError("the command printed nothing for too long")
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the command exited and closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout), b"".join(chunks).decode(errors="replace")


@pytest.fixture(scope="module")
def lab_env(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> dict[str, str]:
    home = tmp_path_factory.mktemp("progress-lab")
    env = {**os.environ, "CAPO_LAB_HOME": str(home), "TERM": "xterm-256color", "COLUMNS": "160"}
    env.pop("CAPO_LAB_DB_URL", None)
    for variable in ("NO_COLOR", "TERM_PROGRAM"):
        env.pop(variable, None)
    with pytest.MonkeyPatch.context() as patch:  # in this process: the runs below are what is tested
        patch.setenv("CAPO_LAB_HOME", str(home))
        patch.delenv("CAPO_LAB_DB_URL", raising=False)
        imported = CliRunner().invoke(
            app, ["data", "import", str(DIVEMT), "--name", "paper8-cpu", "--per-direction", "1"]
        )
    assert imported.exit_code == 0, imported.stderr
    return env


@pytest.mark.slow
def test_train_draws_a_bar_with_step_eta_loss_and_accuracy_on_a_terminal(lab_env) -> None:
    code, shown = in_terminal(capo_lab("train", "configs/smoke.yaml", *SMALL), lab_env)
    assert code == 0, shown[-2000:]
    assert CURSOR_HIDDEN in shown
    bars = [line for line in shown.replace("\r", "\n").split("\n") if "run " in line and " step " in line]
    last = bars[-1]
    assert "3/3" in last and "succeeded" in last and "ETA" not in last, last  # ended: no ETA
    assert "loss 0." in last and "eval acc 0." in last, last  # the last logged loss and eval accuracy
    assert any("ETA" in line and ("0/3" in line or "1/3" in line) for line in bars), bars  # ETA while it ran
    assert shown.rstrip().endswith("run id 1")


@pytest.mark.slow
def test_train_in_a_pipe_or_quiet_prints_only_its_lines(lab_env) -> None:
    piped = subprocess.run(
        capo_lab("train", "configs/smoke.yaml", *SMALL), env=lab_env, capture_output=True, text=True, cwd=REPO
    )
    assert piped.returncode == 0, piped.stderr[-2000:]
    assert "\x1b" not in piped.stdout and "ETA" not in piped.stdout
    lines = piped.stdout.strip().splitlines()
    assert lines[0].startswith("run 2: training 'smoke'") and lines[-1] == "run id 2"
    code, shown = in_terminal(capo_lab("train", "configs/smoke.yaml", *SMALL, "--quiet"), lab_env)
    assert code == 0, shown[-2000:]
    assert CURSOR_HIDDEN not in shown and "ETA" not in shown and shown.rstrip().endswith("run id 3")
