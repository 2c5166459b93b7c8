"""Engine and session factories. SQLite gets WAL and a busy timeout so readers never block."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from storage.errors import home_problem, sqlite_path

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str) -> Engine:
    """An engine for any SQLAlchemy URL; for SQLite files also create the folder (a folder that
    cannot be made raises ``StorageProblem``: read-only, a file in the way, a full disk)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    path = sqlite_path(parsed)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise (home_problem(parsed, err) or err) from err
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def quick_check(engine: Engine, max_problems: int = 3) -> list[str] | None:
    """SQLite's ``PRAGMA quick_check``: ``[]`` when the file is sound, else its first problems;
    None for other backends (their server checks its own pages). It reads the whole file."""
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(f"PRAGMA quick_check({int(max_problems)})").scalars().all()
    return [] if rows == ["ok"] else [str(r) for r in rows]
