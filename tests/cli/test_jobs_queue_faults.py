"""A damaged or read-only ``queue.db`` (issue 20, item 5): ``capo-lab worker`` and ``capo-lab serve``
printed a traceback, and ``capo-lab submit`` said only "file is not a database". Each is now one
``error:`` line naming the queue's file and what to do, exit code 1."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cli.test_storage_faults_cli import _can_mount_read_only, capo_lab_each, tiny_jsonl

REPO = Path(__file__).resolve().parents[2]
SUBMIT = ["submit", str(REPO / "configs" / "smoke.yaml"), "--set", "data.dataset=tiny"]
READ_ONLY = "the lab's home is not writable (read-only file system or permissions)"


def assert_one_line_error(done: subprocess.CompletedProcess, *fragments: str, logs: bool = False) -> str:
    """Exit code 1 and one ``error:`` line on stderr, after the worker's log lines when ``logs``."""
    assert done.returncode == 1, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    line = done.stderr.splitlines(keepends=True)[-1] if logs else done.stderr
    assert line.startswith("error: ") and line.count("\n") == 1, done.stderr[-3000:]
    for fragment in fragments:
        assert fragment in line, line
    return line


@pytest.fixture
def lab(lab_home: Path, tmp_path: Path) -> Path:
    """A lab with a dataset ``tiny`` and a queue made by a first submit; returns the queue's file."""
    importing = ["data", "import", str(tiny_jsonl(tmp_path)), "--name", "tiny", "--per-direction", "5"]
    imported, submitted = capo_lab_each([importing, SUBMIT], tmp_path / "making")
    assert imported.returncode == 0, imported.stderr
    assert submitted.returncode == 0
    queue = lab_home / "queue.db"
    assert queue.exists()
    return queue


def test_a_damaged_queue_is_one_line_from_worker_submit_and_serve(lab: Path, tmp_path: Path) -> None:
    lab.write_bytes(os.urandom(8 * 4096))
    for wal in lab.parent.glob("queue.db-*"):
        wal.unlink()
    worker, submit, serve = capo_lab_each([["worker"], SUBMIT, ["serve", "--port", "1"]], tmp_path / "logs")
    damaged = f"{lab}: not a SQLite database, or a damaged one (file is not a database); move it aside"
    assert_one_line_error(worker, f"error: {damaged}", logs=True)
    assert_one_line_error(submit, f"error: the queue refused run 2: {damaged}")
    assert_one_line_error(serve, f"error: {damaged}")


def test_a_read_only_queue_is_one_line_from_worker_and_submit(lab: Path, tmp_path: Path) -> None:
    """The home (with queue.db) on a read-only bind mount, lab.db elsewhere, as a subprocess in a
    private mount namespace (which also stops root)."""
    if not _can_mount_read_only(tmp_path):
        pytest.skip("no unprivileged mount namespace (unshare -rm) to mount the home read-only")
    database = tmp_path / "elsewhere" / "lab.db"
    database.parent.mkdir()
    (lab.parent / "lab.db").rename(database)
    for wal in lab.parent.glob("*.db-*"):
        wal.unlink()
    env = {**os.environ, "CAPO_LAB_DB_URL": f"sqlite:///{database}"}
    for done in capo_lab_each([["worker"], SUBMIT], tmp_path / "logs", env, read_only=lab.parent):
        # the last line of stderr (after the worker's log lines)
        assert_one_line_error(done, f"{lab}: {READ_ONLY}; set CAPO_LAB_HOME to a writable folder", logs=True)
