"""Storage faults (issue 20): opening the database says what is wrong in one ``StorageProblem``
line — read-only, damaged, newer than the code — and brings an older one to head, atomically and
safely from several processes at once (the worker included)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from capo_lab.database import Database
from capo_lab.runs import get_run
from capo_lab.settings import Settings
from storage.engine import make_engine, quick_check
from storage.errors import StorageProblem, explain, sqlite_path
from storage.migrate import current_revision, downgrade, head_revision, schema_state, upgrade
from storage.writes import add_dataset
from tests.storage.test_storage import pairs
from tests.worker.conftest import serve_one_job

REPO = Path(__file__).resolve().parents[2]
PAGE = 4096


def lab_db(tmp_path: Path, n_pairs: int = 40) -> str:
    """A lab database at head with one dataset; returns its URL."""
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    db = Database(url)
    with db.write() as session:
        add_dataset(session, "tiny", pairs(n_pairs), {}, [], {})
    db.close()
    return url


def at_0010(url: str) -> None:
    engine = make_engine(url)
    downgrade(engine, "0010")
    engine.dispose()


def columns(url: str, table: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_sqlite_paths_of_plain_and_uri_urls(tmp_path: Path) -> None:
    assert sqlite_path(f"sqlite:///{tmp_path}/lab.db") == tmp_path / "lab.db"
    assert sqlite_path(f"sqlite:///file:{tmp_path}/lab.db?mode=ro&uri=true") == tmp_path / "lab.db"
    assert sqlite_path("sqlite://") is None and sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("postgresql+psycopg://u:p@h/db") is None


def test_a_file_where_the_home_should_be_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StorageProblem) as caught:
        Database(f"sqlite:///{blocker}/home/lab.db")
    assert str(caught.value) == (
        f"{blocker}/home/lab.db: the lab's home cannot be made (Not a directory: {blocker}/home); "
        "set CAPO_LAB_HOME to a writable folder"
    )
    assert not isinstance(caught.value, ValueError)
    assert str(pickle.loads(pickle.dumps(caught.value))) == str(caught.value)  # crosses the job queue


def test_a_write_to_a_read_only_database_is_explained(tmp_path: Path) -> None:
    """As root, chmod does not stop writes; a ``mode=ro`` URI makes SQLite refuse them as on a read-only
    mount. The CLI test does the real read-only mount (tests/cli/test_storage_faults_cli.py)."""
    path = tmp_path / "lab.db"
    lab_db(tmp_path)
    db = Database(f"sqlite:///file:{path}?mode=ro&uri=true")  # at head: opening writes nothing
    assert not (Path.cwd() / "file:").exists()  # the folder made is the file's, not "file:…"
    with pytest.raises(DBAPIError) as caught, db.write() as session:
        session.execute(text("DELETE FROM pairs"))
    problem = explain(caught.value, db.url)
    assert problem is not None and str(problem) == (
        f"{path}: the database is read-only here (attempt to write a readonly database); "
        "set CAPO_LAB_HOME to a writable folder (or CAPO_LAB_DB_URL to a writable database)"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file modes; the CLI test mounts read-only")
def test_a_read_only_home_is_refused_at_open(tmp_path: Path) -> None:
    lab_db(tmp_path)
    (tmp_path / "lab.db").chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(StorageProblem, match="the lab's home is not writable"):
            Database(f"sqlite:///{tmp_path / 'lab.db'}")
    finally:
        tmp_path.chmod(0o755)


@pytest.mark.parametrize("damage", ["pages 2-4", "random bytes"])
def test_a_damaged_file_is_refused_at_open(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "lab.db"
    if damage == "random bytes":
        path.write_bytes(os.urandom(20 * PAGE))
    else:
        lab_db(tmp_path)
        with path.open("r+b") as f:
            f.seek(PAGE)  # page 1 (the header and schema) kept: pages 2-4 hold alembic_version and datasets
            f.write(os.urandom(3 * PAGE))
    with pytest.raises(StorageProblem) as caught:
        Database(f"sqlite:///{path}")
    message = str(caught.value)
    assert message.startswith(f"{path}: not a SQLite database, or a damaged one (")
    assert ("file is not a database" in message) or ("database disk image is malformed" in message)
    assert message.endswith("restore a backup, or move the file aside and the lab starts an empty one")


def test_quick_check_finds_damage_that_opening_does_not(tmp_path: Path) -> None:
    """The finding: with a table's pages overwritten, the revision still reads and health said ok."""
    url = lab_db(tmp_path, n_pairs=200)
    engine = make_engine(url)
    assert quick_check(engine) == []
    with engine.connect() as connection:
        root = connection.execute(text("SELECT rootpage FROM sqlite_master WHERE name = 'pairs'")).scalar()
    engine.dispose()
    with (tmp_path / "lab.db").open("r+b") as f:
        f.seek((root - 1) * PAGE)
        f.write(os.urandom(PAGE))
    db = Database(url)  # opens: alembic_version is intact
    assert current_revision(db.engine) == head_revision(db.engine)
    assert quick_check(db.engine)  # … but the check reads every page
    db.close()


def test_quick_check_is_sqlite_only() -> None:
    assert quick_check(make_engine("postgresql+psycopg://capo@127.0.0.1:1/capo")) is None  # never connects


def test_a_database_newer_than_the_code_is_refused_and_left_alone(tmp_path: Path) -> None:
    url = lab_db(tmp_path)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    head = head_revision(engine)
    assert schema_state(engine).newer
    with pytest.raises(StorageProblem) as caught:
        Database(url)
    assert str(caught.value) == (
        f"{tmp_path / 'lab.db'}: the database is at revision ffff, newer than this capo-lab "
        f"(it knows up to {head}); upgrade capo-lab (the code) to use it"
    )
    assert current_revision(engine) == "ffff"
    engine.dispose()


def test_a_database_older_than_the_code_is_upgraded_on_open(tmp_path: Path) -> None:
    url = lab_db(tmp_path)
    at_0010(url)
    assert "tie" not in columns(url, "pairs")
    engine = make_engine(url)
    state = schema_state(engine)
    assert (state.current, state.behind, state.newer) == ("0010", True, False)
    engine.dispose()
    db = Database(url)
    assert current_revision(db.engine) == head_revision(db.engine) and "tie" in columns(url, "pairs")
    db.close()


def test_a_failed_migration_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    """The whole upgrade is one transaction: the DDL too (the stdlib driver would otherwise run
    CREATE TABLE outside it, leaving a half-built ``_alembic_tmp_pairs`` behind)."""
    url = lab_db(tmp_path)
    at_0010(url)
    engine = make_engine(url)
    with engine.begin() as connection:  # fails after 0011's DDL and backfill, when the version is set
        connection.execute(
            text(
                "CREATE TRIGGER refuse BEFORE UPDATE ON alembic_version "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
        )
    with pytest.raises(DBAPIError, match="refused by the test"):
        upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert current_revision(engine) == "0010"
    assert "tie" not in columns(url, "pairs") and not {t for t in tables if t.startswith("_alembic")}
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM pairs")).scalar() == 40
    engine.dispose()


UPGRADER = """
import sys, time
from capo_lab.database import Database
from storage.migrate import current_revision
url, start = sys.argv[1], float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
db = Database(url)
print(current_revision(db.engine))
"""


def race_upgrades(url: str, start: float, head: str) -> None:
    """Two processes upgrade ``url`` at ``start`` (a wall-clock time): both succeed and end at ``head``."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", UPGRADER, url, str(start)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    outcomes = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-800:] for _, err in outcomes]
    assert [out.strip() for out, _ in outcomes] == [head, head]


def test_two_processes_upgrading_at_once_both_succeed(tmp_path: Path) -> None:
    """Before: the second of two processes failed ("table _alembic_tmp_pairs already exists" or
    "expected to match one row when updating '0010' to '0011'") every time."""
    url = lab_db(tmp_path, n_pairs=400)
    head = head_revision(make_engine(url))
    for _ in range(2):
        at_0010(url)
        start = time.time() + 4  # both processes have imported by then
        race_upgrades(url, start, head)
        assert "tie" in columns(url, "pairs")
        engine = make_engine(url)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT COUNT(*) FROM pairs")).scalar() == 400
        assert quick_check(engine) == []
        engine.dispose()


def test_two_processes_upgrading_postgresql_at_once_both_succeed() -> None:
    """PostgreSQL, from an empty database (an app and a worker starting together on a new server) and
    from 0010: the second waits on an advisory lock, then finds the schema at head. Without the lock
    the second failed from empty every time (a duplicate key creating the same table)."""
    from sqlalchemy import create_engine

    from tests.scale.servers import postgres_server

    with postgres_server() as server:
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        for name, start_at in (("fresh", None), ("older", "0010")):
            with admin.connect() as connection:
                connection.execute(text(f"CREATE DATABASE {name}"))
            url = server.rsplit("/", 1)[0] + f"/{name}"
            engine = make_engine(url)
            if start_at:
                upgrade(engine, start_at)
            head = head_revision(engine)
            start = time.time() + 4
            race_upgrades(url, start, head)
            assert "tie" in {c["name"] for c in inspect(engine).get_columns("pairs")}
            engine.dispose()
        admin.dispose()


def test_the_worker_upgrades_an_older_database_before_it_runs(lab_home: Path) -> None:
    """The finding: a database at 0010 under code at 0011 made every run fail with
    ``no such column: pairs.tie``. The worker opens it through ``Database``, which upgrades."""
    from capo.config import config_from_dict
    from capo_lab import lifecycle
    from worker import tasks
    from worker.huey_app import huey

    settings = Settings()
    db = Database(settings.database_url)
    with db.write() as session:
        rows = [
            p.__class__(p.direction, split, p.prompt, p.chosen, p.rejected, p.source_text, p.origin, p.hter)
            for split in ("train", "eval")
            for p in pairs(6)
        ]
        add_dataset(session, "tiny", rows, {}, [], {})
    cfg = config_from_dict(
        {
            "name": "old-db",
            "model": {"name_or_path": "tiny-random-llama"},
            "data": {"dataset": "tiny", "max_length": 64},
            "train": {"batch_size": 2, "max_steps": 1, "eval_every": 50, "checkpoint_every": 50},
        }
    )
    huey.flush()
    (run_id,) = lifecycle.submit(db, [cfg], tasks.enqueue_run)
    db.close()
    at_0010(settings.database_url)
    assert "tie" not in columns(settings.database_url, "pairs")
    assert threading.current_thread() is threading.main_thread()
    serve_one_job()
    db = Database(settings.database_url)
    run = get_run(db, run_id)
    assert run.error is None and run.status == "succeeded", run.error
    assert current_revision(db.engine) == head_revision(db.engine)
    db.close()
