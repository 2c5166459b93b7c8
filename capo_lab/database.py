"""Open the lab's database once per process: engine, migrations, session factory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from storage.engine import make_engine, make_session_factory
from storage.errors import StorageProblem, explain, writable_problem
from storage.migrate import upgrade


class Database:
    """Holds an engine migrated to head and hands out short sessions.

    Every process that opens it (CLI, web app, worker, each distributed rank) brings an older
    schema to head first; migrating is idempotent and safe from several processes at once.
    A database that cannot be used raises ``StorageProblem`` (one line: the file, what is wrong,
    what to do): a read-only home, a file that is not a database or is damaged, a schema newer
    than this code. ``migrate=False`` opens it as it is (``capo-lab health`` reports, never changes)."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)  # StorageProblem when its folder cannot be made
        try:
            if (problem := writable_problem(url)) is not None:
                raise problem
            if migrate:
                upgrade(self.engine)
            else:
                with self.engine.connect():  # opening runs the pragmas: a damaged file fails here
                    pass
        except (DBAPIError, OSError) as err:
            self.engine.dispose()
            problem = explain(err, url)
            if problem is None:
                raise
            raise problem from err
        except StorageProblem:
            self.engine.dispose()
            raise
        self._sessions: sessionmaker[Session] = make_session_factory(self.engine)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()
