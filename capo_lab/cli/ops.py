"""``capo-lab health`` and ``capo-lab db upgrade``: what containers and operators call."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Annotated

import typer

from capo_lab.cli.common import open_database, stdout, user_errors
from capo_lab.errors import LabError
from storage.migrate import current_revision

db_app = typer.Typer(no_args_is_help=True, help="The lab's database.")


@user_errors
def health_command(
    url: Annotated[
        str | None, typer.Option(help="Also require this URL to answer without an HTTP error")
    ] = None,
    queue: Annotated[bool, typer.Option("--queue", help="Also require the job queue to answer")] = False,
) -> None:
    """Exit 0 when the database (and, if asked, the web app and the queue) answer; else 1 and why."""
    try:
        database = open_database()
        revision = current_revision(database.engine)
    except Exception as err:  # any driver error means unhealthy: reported in one line
        raise LabError(f"database unreachable: {err}") from err
    parts = [f"database ok (revision {revision})"]
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


@db_app.command("upgrade")
@user_errors
def upgrade_command() -> None:
    """Apply the database migrations (every command also does this on first use)."""
    database = open_database()
    stdout.print(f"database at revision {current_revision(database.engine)}", markup=False, highlight=False)
