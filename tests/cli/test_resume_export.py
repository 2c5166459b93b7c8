"""Resume skips a checkpoint that is gone or damaged; export refuses a run that has not finished.

Issue 20, items 5 and 7, through the public CLI on a real smoke run (tiny-random-llama): ``capo-lab
train`` in a process of its own, stopped with Ctrl-C (SIGINT) while it trains, leaves an
``interrupted`` run with a checkpoint at every step. Before: a run whose newest checkpoint folder was
gone failed on every resume with FileNotFoundError, and ``capo-lab export`` took a running or
interrupted run's newest checkpoint beside newer metrics, recording neither its status nor its step.
"""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capo_lab.cli import app
from capo_lab.database import Database
from capo_lab.runs import run_dir
from capo_lab.settings import Settings
from storage import queries
from tests.conftest import DIVEMT
from worker import runtime
from worker.huey_app import huey

REPO = Path(__file__).resolve().parents[2]
TOTAL = 12
runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args))


def ok(*args: str) -> str:
    result = cli(*args)
    assert result.exit_code == 0, result.stderr + result.stdout
    return result.stdout


def refused(*args: str) -> str:
    """The command fails with exactly one line on stderr; returns that line."""
    result = cli(*args)
    assert result.exit_code == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def show(run_id: int) -> dict:
    return json.loads(ok("runs", "show", str(run_id), "--format", "json"))


def checkpoint_steps(run_id: int) -> list[int]:
    folder = run_dir(Settings(), run_id) / "checkpoints"
    return sorted(int(p.name.removeprefix("step-")) for p in folder.glob("step-*") if p.name[5:].isdigit())


def checkpoint_folder(run_id: int, step: int) -> Path:
    return run_dir(Settings(), run_id) / "checkpoints" / f"step-{step:06d}"


@pytest.fixture
def immediate():
    """``runs resume`` trains the run in this process, as the worker would (Huey's immediate mode)."""
    huey.immediate = True
    yield huey
    huey.immediate = False


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> tuple[Path, Path, dict]:
    """A smoke run stopped by Ctrl-C after a few steps: ``interrupted``, a checkpoint at every step;
    trained once for the module: (its home, a copy of that home as the run stopped, the run).

    While it trains, ``capo-lab export`` of it is tried (the finding: it used to be exported)."""
    home = tmp_path_factory.mktemp("interrupted") / "lab-home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAPO_LAB_HOME", str(home))
        patch.delenv("CAPO_LAB_DB_URL", raising=False)
        patch.delenv("CAPO_LAB_QUEUE_URL", raising=False)
        ok("data", "import", str(DIVEMT), "--name", "paper8-cpu", "--per-direction", "1")
        overrides = [f"train.max_steps={TOTAL}", "train.checkpoint_every=1", "train.eval_every=1000"]
        command = [sys.executable, "-m", "capo_lab", "train", "configs/smoke.yaml"]
        log_path = home.parent / "train.log"
        log = log_path.open("w")
        process = subprocess.Popen(
            command + [a for o in overrides for a in ("--set", o)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
        db = Database(Settings().database_url)
        try:
            deadline = time.monotonic() + 300
            run = None
            while time.monotonic() < deadline and process.poll() is None:
                with db.read() as session:
                    run = queries.get_run(session, 1)
                if run is not None and run.step >= 2:
                    break
                time.sleep(0.02)
            assert run is not None and run.status == "running", log_path.read_text()
            out = home.parent / "while-running"
            line = refused("export", "1", "--out", str(out))
            assert line.startswith(
                "error: run 1 is running, not finished; export one of its checkpoints by step"
            )
            assert not out.exists()
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=300) == 0, log_path.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
            db.close()
        shown = show(1)
        assert shown["status"] == "interrupted" and 3 <= shown["step"] < TOTAL
        steps = checkpoint_steps(1)
        assert steps == list(range(1, shown["step"] + 1))
    as_stopped = home.with_name("as-stopped")
    shutil.copytree(home, as_stopped, symlinks=True)
    return home, as_stopped, {"id": 1, "step": shown["step"], "steps": steps}


@pytest.fixture
def interrupted(stopped: tuple[Path, Path, dict], monkeypatch: pytest.MonkeyPatch) -> dict:
    """``stopped``'s run for one test to change: its home put back as the run stopped, in the same
    place (the database names its checkpoints' folders by their whole paths). The database this
    process keeps for tasks run in place (``immediate``) is let go: its files are replaced."""
    home, as_stopped, run = stopped
    if runtime.context.database is not None:
        runtime.context.database.close()
        runtime.context.database = None
    shutil.rmtree(home)
    shutil.copytree(as_stopped, home, symlinks=True)
    monkeypatch.setenv("CAPO_LAB_HOME", str(home))
    monkeypatch.delenv("CAPO_LAB_DB_URL", raising=False)
    monkeypatch.delenv("CAPO_LAB_QUEUE_URL", raising=False)
    return run


@pytest.mark.slow
def test_resume_skips_a_missing_newest_checkpoint_and_finishes_from_the_one_before(
    interrupted, immediate
) -> None:
    newest, before = interrupted["steps"][-1], interrupted["steps"][-2]
    shutil.rmtree(checkpoint_folder(1, newest))
    said = ok("runs", "resume", "1")
    assert f"from its checkpoint at step {before}" in said
    run = show(1)
    assert (run["status"], run["step"], run["resumed_from_step"], run["error"]) == (
        "succeeded",
        TOTAL,
        before,
        None,
    )
    skipped = [n for n in run["notes"] if n.startswith("resume: ")]
    folder = checkpoint_folder(1, newest)
    assert skipped == [f"resume: skipped the checkpoint at step {newest}: its folder {folder} is missing"]


@pytest.mark.slow
def test_resume_skips_a_truncated_adapter_and_starts_over_when_none_loads(
    interrupted, immediate, tmp_path: Path
) -> None:
    newest, before = interrupted["steps"][-1], interrupted["steps"][-2]
    adapter = checkpoint_folder(1, newest) / "adapter_model.safetensors"
    size = adapter.stat().st_size
    with adapter.open("r+b") as handle:
        handle.truncate(size // 2)
    ok("runs", "resume", "1")
    run = show(1)
    assert (run["status"], run["step"], run["resumed_from_step"]) == ("succeeded", TOTAL, before)
    assert [n for n in run["notes"] if n.startswith("resume: ")] == [
        f"resume: skipped the checkpoint at step {newest}: adapter_model.safetensors is truncated "
        f"({size // 2} of {size} bytes)"
    ]
    # the metrics of the steps after the checkpoint were logged again, once each
    ok("export", "1", "--out", str(tmp_path / "done"))
    exported = json.loads((tmp_path / "done" / "run_config.json").read_text())
    assert exported["run"]["status"] == "succeeded" and exported["run"]["adapter_step"] == TOTAL
    with (tmp_path / "done" / "metrics.csv").open() as handle:
        losses = [int(r["step"]) for r in csv.DictReader(handle) if r["key"] == "loss"]
    assert losses == list(range(1, TOTAL + 1))


@pytest.mark.slow
def test_resume_starts_over_with_a_note_when_no_checkpoint_loads(interrupted, immediate) -> None:
    steps = interrupted["steps"]
    for step in steps[1:]:
        shutil.rmtree(checkpoint_folder(1, step))
    (checkpoint_folder(1, steps[0]) / "trainer_state.pt").write_bytes(b"")
    assert "from the start" in ok("runs", "resume", "1")
    run = show(1)
    assert (run["status"], run["step"], run["resumed_from_step"]) == ("succeeded", TOTAL, None)
    notes = [n for n in run["notes"] if n.startswith("resume: ")]
    assert notes[0] == f"resume: skipped the checkpoint at step {steps[-1]}: its folder " + (
        f"{checkpoint_folder(1, steps[-1])} is missing"
    )
    assert notes[-2].startswith(
        "resume: skipped the checkpoint at step 1: trainer_state.pt is truncated (0 of "
    )
    assert notes[-1] == "resume: no checkpoint loads; the run starts over from step 0"
    assert len(notes) == len(steps) + 1


@pytest.mark.slow
def test_export_of_an_unfinished_run_needs_a_step_and_records_status_and_step(
    interrupted, tmp_path: Path
) -> None:
    stopped, steps = interrupted["step"], interrupted["steps"]
    line = refused("export", "1", "--out", str(tmp_path / "a"))
    have = ", ".join(map(str, steps))
    assert line == (
        f"error: run 1 is interrupted, not finished; export one of its checkpoints by step "
        f"(its checkpoint steps: {have})"
    )
    assert refused("export", "1", "--step", "999", "--out", str(tmp_path / "b")) == (
        f"error: run 1 has no checkpoint at step 999 (its checkpoint steps: {have})"
    )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()

    at = steps[1]
    said = ok("export", "1", "--step", str(at), "--out", str(tmp_path / "c"))
    assert said.strip() == f"exported run 1 (interrupted) at step {at} to {tmp_path / 'c'}"
    exported = json.loads((tmp_path / "c" / "run_config.json").read_text())
    assert exported["run"] == {
        "id": 1,
        "name": "smoke",
        "status": "interrupted",
        "step": stopped,
        "adapter_step": at,
    }
    saved = checkpoint_folder(1, at) / "adapter_model.safetensors"
    assert (tmp_path / "c" / "adapter_model.safetensors").read_bytes() == saved.read_bytes()
    with (tmp_path / "c" / "metrics.csv").open() as handle:
        metric_steps = {int(r["step"]) for r in csv.DictReader(handle)}
    assert max(metric_steps) == at and 0 in metric_steps

    # a checkpoint that does not load is refused by name, and nothing is left behind
    (checkpoint_folder(1, at) / "adapter_model.safetensors").write_bytes(b"")
    line = refused("export", "1", "--step", str(at), "--out", str(tmp_path / "d"))
    assert line.startswith(
        f"error: run 1's checkpoint at step {at} does not load (adapter_model.safetensors "
    )
    assert not (tmp_path / "d").exists()


def old_style_checkpoint(folder: Path, step: int) -> Path:
    """The files a checkpoint saved before checksums has: checked by structure."""
    import numpy as np
    import torch
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text('{"r": 16}')
    save_file({"w": np.full(64, step, dtype=np.float32)}, str(folder / "adapter_model.safetensors"))
    torch.save({"step": step, "state": torch.arange(256)}, folder / "trainer_state.pt")
    return folder


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10])


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda f: truncate(f / "adapter_model.safetensors"), "adapter_model.safetensors is truncated ("),
        (lambda f: (f / "adapter_model.safetensors").write_bytes(b"weights"), "adapter_model.safetensors is"),
        (lambda f: truncate(f / "trainer_state.pt"), "trainer_state.pt is not a whole torch archive"),
        (lambda f: flip_a_byte(f / "trainer_state.pt"), "trainer_state.pt is damaged ("),
        (lambda f: (f / "adapter_config.json").write_text("{"), "adapter_config.json is not valid JSON"),
        (lambda f: (f / "trainer_state.pt").unlink(), "trainer_state.pt is missing"),
    ],
)
def test_a_damaged_checkpoint_saved_without_checksums_is_refused_by_name(
    lab_home: Path, tmp_path: Path, damage, problem: str
) -> None:
    """Checkpoints written before checksums are checked by their files' structure."""
    from storage import writes

    db = Database(Settings().database_url)
    with db.write() as session:
        config = {"name": "r", "model": {"name_or_path": "tiny-random-llama"}, "data": {"dataset": "d"}}
        run_id = writes.add_run(session, "r", config, None, "failed", None)
        for step in (1, 2):
            folder = old_style_checkpoint(tmp_path / f"step-{step}", step)
            writes.add_checkpoint(session, run_id, step, str(folder))
    db.close()
    ok("export", str(run_id), "--step", "1", "--out", str(tmp_path / "whole"))
    damage(tmp_path / "step-1")
    line = refused("export", str(run_id), "--step", "1", "--out", str(tmp_path / "damaged"))
    assert line.startswith(f"error: run {run_id}'s checkpoint at step 1 does not load ({problem}"), line
    assert line.endswith("; its checkpoint steps: 1, 2")
    assert not (tmp_path / "damaged").exists()
