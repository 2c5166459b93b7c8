"""Run Alembic migrations programmatically (``upgrade(engine)``), no alembic.ini needed.

``upgrade`` is safe to call from several processes at once: the migration runs in one transaction
that first takes the database's write lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an advisory
lock), and the revision is read again under it, so the second process finds the schema at head and
does nothing. A database at a revision these scripts do not know (made by a newer capo-lab) is
refused with ``StorageProblem``, never half-migrated."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine

from storage.errors import newer

MIGRATIONS = Path(__file__).with_name("migrations")
# PostgreSQL advisory lock key held while migrating (any constant; "capo" in ASCII)
_PG_MIGRATION_LOCK = 0x6361706F


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # configparser reads "%" as interpolation: a URL-encoded password (p%40ss) or a file: URI needs "%%"
    url = engine.url.render_as_string(hide_password=False).replace("%", "%%")
    config.set_main_option("sqlalchemy.url", url)
    return config


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@dataclass(frozen=True)
class SchemaState:
    """Where the database's schema stands against this code's migrations."""

    current: str | None  # None: no schema yet (an empty database)
    head: str | None
    known: bool  # the current revision is one of this code's scripts (or None)

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    @property
    def behind(self) -> bool:
        """Older than the code: ``upgrade`` brings it to head."""
        return self.known and not self.at_head

    @property
    def newer(self) -> bool:
        """Made by a newer capo-lab: this code cannot use it."""
        return not self.known


def schema_state(engine: Engine) -> SchemaState:
    script = ScriptDirectory.from_config(alembic_config(engine))
    current = current_revision(engine)
    return SchemaState(current, script.get_current_head(), current is None or _known(script, current))


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return bool(script.get_revisions(revision))
    except CommandError:  # alembic's ResolutionError and friends
        return False


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction; on SQLite with foreign keys off while it runs.

    SQLite alters a table by copying it and dropping the old one (Alembic's batch mode),
    and with foreign keys on, that DROP deletes every row that references it through
    ON DELETE CASCADE: metrics, pair scores and checkpoints of every run. The pragma is a
    no-op inside a transaction, so it is set before the transaction begins."""
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                _lock_for_migration(connection)
                yield connection
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def _lock_for_migration(connection: Connection) -> None:
    """Take the database's write lock before the revision is read, so that two processes
    migrating at once run one after the other and the second finds nothing left to do.

    SQLite: the stdlib driver would begin its transaction only at the first INSERT or UPDATE, so
    the DDL before it ran outside any transaction; ``BEGIN IMMEDIATE`` opens it now, with the
    write lock (waiting up to the busy timeout for another writer)."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; a no-op when it is already there. ``StorageProblem`` when
    the database is at a revision these scripts do not know (a newer capo-lab made it)."""
    state = schema_state(engine)
    if state.newer:
        raise newer(engine.url, str(state.current), state.head)
    if revision == "head" and state.at_head:
        return
    config = alembic_config(engine)
    with _migration_connection(engine) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config(engine)
    with _migration_connection(engine) as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
