"""Two workers storing the base scores of one fingerprint at the same moment (issue 20, item 11): on
PostgreSQL the second failed its run with ``UniqueViolation … uq_base_scores_fingerprint_pair``.
Each writer here is a worker's sink with its own engine and connection; the rounds repeat the race
until it would have shown (it did in the first rounds before the fix)."""

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from capo_lab.database import Database
from capo_lab.runs import DatabaseSink
from storage import queries, writes
from tests.scale.servers import postgres_server

ROUNDS = 30
PAIRS_A, PAIRS_B = range(0, 60), range(30, 90)  # overlapping halves: both store pairs 30–59


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lab.db'}"
    return request.getfixturevalue("postgres_url")


def base_scores(pairs: range) -> dict[int, tuple[float, float]]:
    """What scoring the base model gives each pair: the same for every worker."""
    return {pair: (-0.5 * pair, -0.25 * pair - 1) for pair in pairs}


def race(writers: list[Database], fingerprint: str) -> list[BaseException]:
    """Both writers store their scores under ``fingerprint`` at once; returns what each raised."""
    start, failures = threading.Barrier(len(writers)), []

    def store(db: Database, pairs: range) -> None:
        start.wait()
        try:
            DatabaseSink(db, 0, fingerprint).log_base_scores(base_scores(pairs))
        except Exception as err:  # kept for the assertion, which shows it
            failures.append(err)

    threads = [
        threading.Thread(target=store, args=(db, pairs))
        for db, pairs in zip(writers, (PAIRS_A, PAIRS_B), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_two_writers_of_one_fingerprint_both_succeed_and_store_each_pair_once(database_url: str) -> None:
    Database(database_url).close()  # migrated once, before the writers open it
    writers = [Database(database_url) for _ in range(2)]
    try:
        for round_number in range(ROUNDS):
            fingerprint = f"fingerprint-{round_number}"
            failures = race(writers, fingerprint)
            assert failures == [], f"round {round_number}: {failures[0]!r}"
            with writers[0].read() as session:
                stored = queries.base_scores(session, fingerprint)
            assert stored == base_scores(range(PAIRS_A.start, PAIRS_B.stop)), f"round {round_number}"
    finally:
        for db in writers:
            db.close()


def test_a_second_writer_keeps_the_first_writers_rows(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'lab.db'}")
    with db.write() as session:
        writes.add_base_scores(session, "f", {1: (-1.0, -2.0)})
    with db.write() as session:
        writes.add_base_scores(session, "f", {1: (-9.0, -9.0), 2: (-3.0, -4.0)})
    with db.read() as session:
        assert queries.base_scores(session, "f") == {1: (-1.0, -2.0), 2: (-3.0, -4.0)}
