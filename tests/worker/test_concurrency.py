"""The UI and CLI read while a worker writes: no 'database is locked' under WAL and short transactions."""

import threading
import time

from capo_lab.database import Database
from capo_lab.runs import DatabaseSink
from storage import queries
from storage.writes import add_run


def test_a_reader_never_sees_database_is_locked_while_a_writer_logs(lab) -> None:
    db, settings = lab
    with db.write() as session:
        run_id = add_run(session, "r", {}, None, status="running")
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        sink = DatabaseSink(Database(settings.database_url), run_id)
        try:
            for step in range(300):
                sink.log_metrics(step, {f"key{i}": float(i) for i in range(20)})
                sink.log_progress(step, 300)
        except BaseException as err:  # noqa: BLE001  (collected and asserted below)
            errors.append(err)
        finally:
            done.set()

    def read() -> None:
        reader = Database(settings.database_url)
        try:
            while not done.is_set():
                with reader.read() as session:
                    queries.metrics(session, run_id)
                    queries.get_run(session, run_id)
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=write), threading.Thread(target=read), threading.Thread(target=read)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [], errors
    with db.read() as session:
        assert len(queries.metrics(session, run_id)) == 300 * 20
    assert time.monotonic() - start < 120
