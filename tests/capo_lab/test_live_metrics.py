"""Live charts' reads: one statement for every selected run's rows of the chosen keys after its cursor (a
step logged in two writes is read whole), the runs' statuses read first, nothing read for no runs."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from capo_lab.database import Database
from capo_lab.live_metrics import START, Seen, metrics_since
from storage import writes
from storage.records import MetricRow

KEYS = ["loss", "eval_logps/chosen/*"]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'lab.db'}")
    yield database
    database.close()


@pytest.fixture
def statements(db: Database) -> list[tuple[str, Any]]:
    """Every SQL statement the database runs from now on, with its parameters."""
    seen: list[tuple[str, Any]] = []
    event.listen(
        db.engine, "before_cursor_execute", lambda _c, _cur, sql, params, *_: seen.append((sql, params))
    )
    return seen


def add_run(db: Database, status: str = "running") -> int:
    with db.write() as session:
        return writes.add_run(session, "r", {"objective": {"name": "capo"}}, None, status)


def log(db: Database, run_id: int, rows: list[tuple[int, str, float]]) -> None:
    with db.write() as session:
        writes.add_metrics(session, run_id, rows)


def test_the_first_read_has_every_row_of_the_keys_in_step_order(db: Database) -> None:
    a, b = add_run(db), add_run(db, "queued")
    log(db, a, [(1, "loss", 0.7), (1, "eval_logps/chosen/en-de", -3.0), (2, "loss", 0.6), (2, "other", 1.0)])
    log(db, a, [(2, "eval_logpsXchosen/en-de", 9.0), (2, "eval_logps/chosen", -2.0)])  # _ is no wildcard
    update = metrics_since(db, {}, [a, b], KEYS)
    assert update.rows[a] == (
        MetricRow(1, "loss", 0.7),
        MetricRow(1, "eval_logps/chosen/en-de", -3.0),
        MetricRow(2, "loss", 0.6),
    )
    assert update.rows[b] == () and update.cursor[b] == START and update.active
    assert update.cursor[a].step == 2


def test_a_later_read_has_only_newer_rows_and_reads_a_step_logged_in_two_writes_whole(db: Database) -> None:
    run = add_run(db)
    log(db, run, [(0, "loss", 0.9), (1, "loss", 0.7)])
    first = metrics_since(db, {}, [run], KEYS)
    log(db, run, [(1, "eval_logps/chosen/en-de", -3.0)])  # step 1's evaluation, after its training batch
    log(db, run, [(2, "loss", 0.6)])
    second = metrics_since(db, first.cursor, [run], KEYS)
    assert second.rows[run] == (MetricRow(1, "eval_logps/chosen/en-de", -3.0), MetricRow(2, "loss", 0.6))
    assert second.cursor[run].step == 2 and second.cursor[run].row_id > first.cursor[run].row_id
    third = metrics_since(db, second.cursor, [run], KEYS)
    assert third.rows[run] == () and third.cursor == second.cursor


def test_one_statement_reads_the_rows_of_every_run_after_their_statuses(
    db: Database, statements: list[tuple[str, Any]]
) -> None:
    runs = [add_run(db) for _ in range(3)]
    for run in runs:
        log(db, run, [(step, "loss", 0.5) for step in range(5)])
    statements.clear()
    update = metrics_since(db, {runs[0]: Seen(3, 4)}, runs, KEYS)
    assert [len(update.rows[r]) for r in runs] == [1, 5, 5]
    reads = [(sql, params) for sql, params in statements if sql.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 2 and "FROM runs" in reads[0][0] and "FROM metrics" in reads[1][0]
    with db.engine.connect() as connection:  # each run's rows are a range of the (run_id, step) index
        plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + reads[1][0], reads[1][1]).all()
    searches = [row[-1] for row in plan if row[-1].startswith(("SEARCH", "SCAN"))]
    assert searches == ["SEARCH metrics USING INDEX ix_metrics_run_step (run_id=? AND step>?)"] * 3


def test_active_while_some_run_is_queued_or_running(db: Database) -> None:
    done, failed = add_run(db, "succeeded"), add_run(db, "failed")
    assert not metrics_since(db, {}, [done, failed], KEYS).active
    running = add_run(db)
    assert metrics_since(db, {}, [done, running], KEYS).active
    with db.write() as session:
        writes.update_run(session, running, status="interrupted")
    assert not metrics_since(db, {}, [done, running], KEYS).active
    missing = metrics_since(db, {}, [999], KEYS)
    assert missing.rows == {999: ()} and not missing.active


def test_no_runs_read_nothing(db: Database, statements: list[tuple[str, Any]]) -> None:
    update = metrics_since(db, {}, [], KEYS)
    assert (update.rows, update.cursor, update.active) == ({}, {}, False) and statements == []
