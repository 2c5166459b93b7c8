"""`capo-lab health` and `capo-lab db upgrade`: what containers call, with one-line failures."""

import http.server
import threading
from pathlib import Path

from typer.testing import CliRunner

from capo_lab.cli import app
from storage.engine import make_engine
from storage.migrate import current_revision, upgrade
from worker.launch import free_port

runner = CliRunner()
MIGRATIONS = Path(__file__).resolve().parents[2] / "storage" / "migrations" / "versions"
NEWEST = sorted(p.name[:4] for p in MIGRATIONS.glob("[0-9]*.py"))[-1]  # 0001_…, 0002_…: the newest file


def test_db_upgrade_and_health_on_a_fresh_lab(lab_home: Path) -> None:
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0 and f"database at revision {NEWEST}" in upgraded.stdout
    healthy = runner.invoke(app, ["health", "--queue"])
    assert healthy.exit_code == 0, healthy.stderr
    assert f"database ok (revision {NEWEST}" in healthy.stdout and "queue ok (0 pending)" in healthy.stdout


def test_health_fails_in_one_line_when_the_web_app_does_not_answer(lab_home: Path) -> None:
    result = runner.invoke(app, ["health", "--url", f"http://127.0.0.1:{free_port()}/"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: http://127.0.0.1:") and "unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_health_checks_the_http_status(lab_home: Path) -> None:
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args) -> None: ...

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = runner.invoke(app, ["health", "--url", f"http://127.0.0.1:{server.server_port}/"])
    finally:
        server.shutdown()
    assert result.exit_code == 1 and "answered HTTP 503" in result.stderr


def test_health_reports_an_unreachable_database(lab_home: Path, monkeypatch) -> None:
    monkeypatch.setenv("CAPO_LAB_DB_URL", f"postgresql+psycopg://capo@127.0.0.1:{free_port()}/capo")
    result = runner.invoke(app, ["health"])
    assert result.exit_code == 1 and result.stderr.startswith("error: database unreachable")


def test_health_checks_the_database_as_it_is_and_never_migrates_it(lab_home: Path) -> None:
    """A fresh home: health says there is no schema yet and leaves it so (the app's start migrates)."""
    fresh = runner.invoke(app, ["health"])
    assert fresh.exit_code == 0, fresh.stderr
    assert fresh.stdout == (
        "database ok (revision none, an empty database: `capo-lab db upgrade`, or any command, "
        "creates the schema, quick_check ok)\n"
    )
    engine = make_engine(f"sqlite:///{lab_home / 'lab.db'}")
    assert current_revision(engine) is None
    upgrade(engine, "0010")
    behind = runner.invoke(app, ["health"])
    assert behind.exit_code == 0 and f"revision 0010, behind this capo-lab's {NEWEST}: " in behind.stdout
    assert current_revision(engine) == "0010"
    assert runner.invoke(app, ["db", "upgrade"]).stdout == f"database at revision {NEWEST}\n"
    assert runner.invoke(app, ["health"]).stdout == f"database ok (revision {NEWEST}, quick_check ok)\n"
    engine.dispose()


def test_health_fails_in_one_line_on_a_damaged_database(lab_home: Path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    (lab_home / "lab.db").write_bytes(b"not a database, just text" * 400)
    for suffix in ("-wal", "-shm"):
        (lab_home / f"lab.db{suffix}").unlink(missing_ok=True)
    result = runner.invoke(app, ["health"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        f"error: {lab_home / 'lab.db'}: not a SQLite database, or a damaged one (file is not a database); "
        "restore a backup, or move the file aside and the lab starts an empty one\n"
    )
