"""``capo-lab health`` and ``capo-lab db upgrade``: what containers and operators call."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Annotated

import typer
from sqlalchemy.exc import DBAPIError

from capo_lab.cli.common import open_database, stdout, user_errors
from capo_lab.errors import LabError
from storage.engine import quick_check
from storage.errors import StorageProblem, corrupt, explain, newer
from storage.migrate import current_revision, schema_state

db_app = typer.Typer(no_args_is_help=True, help="The lab's database.")


@user_errors
def health_command(
    url: Annotated[
        str | None, typer.Option(help="Also require this URL to answer without an HTTP error")
    ] = None,
    queue: Annotated[bool, typer.Option("--queue", help="Also require the job queue to answer")] = False,
) -> None:
    """Exit 0 when the database (and, if asked, the web app and the queue) answer; else 1 and why.

    The database is checked as it is, never migrated: its revision (and whether it is behind this
    code, which any command that opens it then fixes), SQLite's ``PRAGMA quick_check`` of every page;
    a damaged file, one from a newer capo-lab, or a read-only home fails."""
    parts = [_database_health()]
    if queue:
        from worker.huey_app import huey

        try:
            pending = huey.pending_count()
        except Exception as err:
            raise LabError(f"queue unreachable: {err}") from err
        parts.append(f"queue ok ({pending} pending)")
    if url:
        try:
            urllib.request.urlopen(url, timeout=5).close()  # raises for any status >= 400
        except urllib.error.HTTPError as err:
            raise LabError(f"{url} answered HTTP {err.code}") from err
        except (urllib.error.URLError, OSError) as err:
            raise LabError(f"{url} unreachable: {err}") from err
        parts.append(f"{url} ok")
    stdout.print("; ".join(parts), markup=False, highlight=False)


def _database_health() -> str:
    """``database ok (revision …, …)``; raises a one-line user error when the database is unusable."""
    try:
        database = open_database(migrate=False)
    except StorageProblem:
        raise
    except Exception as err:  # any driver error means unhealthy: reported in one line
        raise LabError(f"database unreachable: {err}") from err
    try:
        state = schema_state(database.engine)
        if state.newer:
            raise newer(database.url, str(state.current), state.head)
        problems = quick_check(database.engine)
    except DBAPIError as err:
        raise (explain(err, database.url) or LabError(f"database unreachable: {err}")) from err
    finally:
        database.close()
    if problems:
        first = problems[0].splitlines()[-1].strip()  # the first line is "*** in database main ***"
        raise corrupt(database.url, f"quick_check: {first}" + (" …" if len(problems) > 1 else ""))
    if state.current is None:
        notes = [
            "revision none, an empty database: `capo-lab db upgrade`, or any command, creates the schema"
        ]
    elif state.behind:
        notes = [
            f"revision {state.current}, behind this capo-lab's {state.head}: "
            "`capo-lab db upgrade`, or any command, upgrades it"
        ]
    else:
        notes = [f"revision {state.current}"]
    notes.append("quick_check ok" if problems is not None else "integrity not checked: not SQLite")
    return f"database ok ({', '.join(notes)})"


@db_app.command("upgrade")
@user_errors
def upgrade_command() -> None:
    """Apply the database migrations (every command also does this on first use)."""
    database = open_database()
    stdout.print(f"database at revision {current_revision(database.engine)}", markup=False, highlight=False)
