"""Storage faults through the public CLI (issue 20): a read-only home, a damaged lab.db and a
database newer than the code each give one ``error:`` line naming the file and what to do, from
every command, and never a traceback; ``capo-lab health`` checks every page and says when the
schema is behind.

Measured before: 74–146-line tracebacks from every command, and ``database ok (revision 0010)``
from ``health`` with a table's pages overwritten."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

import pytest
from typer.testing import CliRunner

from capo_lab.cli import app
from storage.engine import make_engine
from storage.migrate import downgrade

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
MIGRATIONS = REPO / "storage" / "migrations" / "versions"
NEWEST = sorted(p.name[:4] for p in MIGRATIONS.glob("[0-9]*.py"))[-1]
PAGE = 4096
BACKUP = "restore a backup, or move the file aside and the lab starts an empty one"
READ_ONLY = (
    "the lab's home is not writable (read-only file system or permissions); "
    "set CAPO_LAB_HOME to a writable folder"
)

# commands that open the database and stop (the worker only where opening fails: it would serve on)
COMMANDS = [
    ["health"],
    ["db", "upgrade"],
    ["data", "list"],
    ["data", "stats", "tiny"],
    ["data", "show", "tiny", "--split", "train"],
    ["runs", "list"],
    ["runs", "show", "1"],
    ["studies", "list"],
    ["submit", str(REPO / "configs" / "smoke.yaml"), "--set", "data.dataset=tiny"],
]


def tiny_jsonl(folder: Path) -> Path:
    path = folder / "tiny.jsonl"
    rows = [
        {
            "src": f"This is source sentence number {i}, long enough to pass the fifty-character filter.",
            "mt": f"Das ist Satz {i} maschinell.",
            "pe": f"Das ist Quellsatz Nummer {i}, lang genug.",
            "direction": "en-de",
        }
        for i in range(30)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def lab(lab_home: Path, tmp_path: Path) -> Path:
    """A real lab.db made by ``capo-lab data import`` of a tiny file; returns its path."""
    made = runner.invoke(
        app, ["data", "import", str(tiny_jsonl(tmp_path)), "--name", "tiny", "--per-direction", "5"]
    )
    assert made.exit_code == 0, made.stderr
    path = lab_home / "lab.db"
    with sqlite3.connect(path) as connection:  # all pages into lab.db, as when the last process exits
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return path


def overwrite_pages(path: Path, first: int, count: int) -> None:
    """Random bytes over pages ``first`` … ``first + count - 1`` (numbered from 1, as SQLite does)."""
    with path.open("r+b") as f:
        f.seek((first - 1) * PAGE)
        f.write(os.urandom(count * PAGE))


def assert_one_line_error(args: list[str], *fragments: str) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 1, (args, result.stdout, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
    line = result.stderr
    assert line.startswith("error: ") and line.count("\n") == 1 and "Traceback" not in line, (args, line)
    for fragment in fragments:
        assert fragment in line, (args, line)
    return line


@pytest.mark.parametrize("damage", ["pages 2-4", "random bytes"])
def test_a_damaged_lab_db_is_one_line_from_every_command(lab: Path, damage: str) -> None:
    if damage == "random bytes":
        lab.write_bytes(os.urandom(30 * PAGE))
    else:
        overwrite_pages(lab, 2, 3)
    for args in [*COMMANDS, ["worker"]]:
        line = assert_one_line_error(args, f"error: {lab}: not a SQLite database, or a damaged one (", BACKUP)
        assert ("file is not a database" in line) or ("database disk image is malformed" in line)


def test_health_reads_every_page_and_fails_on_damage_the_revision_does_not_show(lab: Path) -> None:
    """The finding: with the pairs table's pages overwritten, health said ``database ok (revision …)``."""
    healthy = runner.invoke(app, ["health"])
    assert healthy.exit_code == 0 and healthy.stdout == f"database ok (revision {NEWEST}, quick_check ok)\n"
    with sqlite3.connect(lab) as connection:
        root = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = 'pairs'").fetchone()[0]
    connection.close()
    overwrite_pages(lab, root, 1)
    assert_one_line_error(
        ["health"], f"error: {lab}: not a SQLite database, or a damaged one (quick_check: ", BACKUP
    )
    assert_one_line_error(
        ["data", "show", "tiny", "--split", "train"], "database disk image is malformed", BACKUP
    )
    for args in COMMANDS:  # the others either work (they never read those pages) or fail in one line
        result = runner.invoke(app, args)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
        if result.exit_code:
            assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, (
                args,
                result.stderr,
            )
    from worker.huey_app import huey

    huey.flush()  # submit may have queued a run: leave no task for another test's worker


def test_a_database_newer_than_the_code_is_refused_by_every_command(lab: Path) -> None:
    with sqlite3.connect(lab) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'ffff'")
    connection.close()
    expected = (
        f"error: {lab}: the database is at revision ffff, newer than this capo-lab "
        f"(it knows up to {NEWEST}); upgrade capo-lab (the code) to use it\n"
    )
    for args in [*COMMANDS, ["worker"]]:
        assert assert_one_line_error(args) == expected
    with sqlite3.connect(lab) as connection:  # left as it was
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [("ffff",)]
    connection.close()


def test_health_says_when_the_database_is_behind_and_db_upgrade_brings_it_to_head(lab: Path) -> None:
    engine = make_engine(f"sqlite:///{lab}")
    downgrade(engine, "0010")
    engine.dispose()
    behind = runner.invoke(app, ["health"])
    assert behind.exit_code == 0, behind.stderr
    assert behind.stdout == (
        f"database ok (revision 0010, behind this capo-lab's {NEWEST}: "
        "`capo-lab db upgrade`, or any command, upgrades it, quick_check ok)\n"
    )
    assert runner.invoke(app, ["db", "upgrade"]).stdout == f"database at revision {NEWEST}\n"
    shown = runner.invoke(app, ["data", "show", "tiny", "--split", "train"])
    assert shown.exit_code == 0 and '"tie": false' in shown.stdout


def test_a_file_where_the_home_should_be_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("CAPO_LAB_HOME", str(blocker / "home"))
    monkeypatch.delenv("CAPO_LAB_DB_URL", raising=False)
    for args in [*COMMANDS, ["worker"]]:
        assert assert_one_line_error(args) == (
            f"error: {blocker}/home/lab.db: the lab's home cannot be made (Not a directory: {blocker}/home); "
            "set CAPO_LAB_HOME to a writable folder\n"
        )


def test_a_database_opened_read_only_reads_and_refuses_writes_in_one_line(
    lab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's own read-only refusal (``attempt to write a readonly database``), met mid-command."""
    monkeypatch.setenv("CAPO_LAB_DB_URL", f"sqlite:///file:{lab}?mode=ro&uri=true")
    listed = runner.invoke(app, ["data", "list"])
    assert listed.exit_code == 0 and "tiny" in listed.stdout
    assert_one_line_error(
        ["data", "import", str(tiny_jsonl(tmp_path)), "--name", "again"],
        f"error: {lab}: the database is read-only here (attempt to write a readonly database); ",
    )


def _can_mount_read_only(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = tmp_path / "probe"
    probe.mkdir()
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && ! touch "$0/x" 2>/dev/null'
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script, str(probe)], capture_output=True)
    return done.returncode == 0


# One Python imports capo_lab.cli (what every `python -m capo_lab` does before main(), and most of its
# ~3 s) and runs each command in a child forked from it, as `python -m capo_lab <args>` runs it. Frozen,
# the imported objects are not walked again by each child's garbage collector (0.7 s a child).
DRIVER = """
import gc, json, os, runpy, sys
import capo_lab.cli
gc.freeze()
commands, logs = json.loads(sys.argv[1]), sys.argv[2]
for i, args in enumerate(commands):
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        for fd, name in ((1, "out"), (2, "err")):
            file = os.open(f"{logs}/{i}.{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(file, fd)
            os.close(file)
        sys.argv[1:] = args
        runpy.run_module("capo_lab", run_name="__main__", alter_sys=True)
        sys.exit(0)
    with open(f"{logs}/{i}.rc", "w") as rc:
        rc.write(str(os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])))
"""


def capo_lab_each(
    commands: list[list[str]], logs: Path, env: dict[str, str] | None = None, read_only: Path | None = None
) -> list[subprocess.CompletedProcess]:
    """Each command's exit code, stdout and stderr as a process of its own (``DRIVER``), in order;
    with ``read_only``, inside a private mount namespace (``unshare -rm``, which also stops root)
    where that folder is bind-mounted read-only. ``logs`` (a new folder) keeps their outputs."""
    logs.mkdir()
    driver = [sys.executable, "-c", DRIVER, json.dumps(commands), str(logs)]
    if read_only is not None:
        script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" || exit 99\nexec "$@"'
        driver = ["unshare", "-rm", "sh", "-c", script, str(read_only), *driver]
    with subprocess.Popen(
        driver, cwd=REPO, env=env, stdout=PIPE, stderr=PIPE, text=True, start_new_session=True
    ) as process:
        try:
            out, err = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the driver and the command it waits on
            raise
    assert process.returncode == 0, err[-2000:]
    assert out == err == "", (out[-2000:], err[-2000:])  # what importing printed would begin every output
    return [
        subprocess.CompletedProcess(
            args,
            int((logs / f"{i}.rc").read_text()),
            (logs / f"{i}.out").read_text(),
            (logs / f"{i}.err").read_text(),
        )
        for i, args in enumerate(commands)
    ]


@pytest.mark.parametrize("home", ["with its lab.db", "empty"])
def test_a_read_only_home_is_one_line_from_every_command(lab: Path, tmp_path: Path, home: str) -> None:
    """The user's case: the home on a read-only file system (a read-only bind mount in a private mount
    namespace, which also stops root) with chmod 0555 / 0444 as well, each command a process of its own."""
    if not _can_mount_read_only(tmp_path):
        pytest.skip("no unprivileged mount namespace (unshare -rm) to mount the home read-only")
    folder = lab.parent
    if home == "empty":
        lab.unlink()
    for wal in folder.glob("lab.db-*"):
        wal.unlink()
    if lab.exists():
        lab.chmod(0o444)
    folder.chmod(0o555)
    env = {**os.environ, "CAPO_LAB_HOME": str(folder)}
    env.pop("CAPO_LAB_DB_URL", None)
    try:
        done = capo_lab_each([*COMMANDS, ["worker"]], tmp_path / "logs", env, read_only=folder)
    finally:
        folder.chmod(0o755)
    for result in done:
        assert result.returncode == 1, (result.args, result.stderr[-2000:])
        assert result.stderr == f"error: {lab}: {READ_ONLY}\n", (result.args, result.stderr[-3000:])
