"""Helpers shared by the CLI's command groups: the database, errors as one line, tables."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.exc import DBAPIError

from capo_lab.database import Database
from capo_lab.errors import USER_ERRORS
from capo_lab.service import LabService
from capo_lab.settings import Settings
from storage.errors import StorageProblem, explain

P = ParamSpec("P")
R = TypeVar("R")

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


class HeldOutSplit(StrEnum):
    """The splits that are evaluated during training."""

    eval = "eval"
    validation = "validation"


class Output(StrEnum):
    """How a command prints a record: a table for people, JSON for programs."""

    table = "table"
    json = "json"


def open_database(*, migrate: bool = True) -> Database:
    """The lab's database, brought to the code's schema (``migrate=False``: as it is)."""
    return Database(Settings().database_url, migrate=migrate)


def lab(queue: bool = False) -> LabService:
    """The application API (the one the UI and notebooks call), for this command; ``queue``: with the
    job queue, opened only then."""
    return LabService(Settings(), enqueue_run if queue else None, any_model=True)


def enqueue_run(run_id: int) -> None:
    """Put a run on the job queue; the queue is opened only when a command needs it."""
    from worker.tasks import enqueue_run as enqueue

    enqueue(run_id)


def one_line(err: BaseException) -> str:
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}" if where else first["msg"]
    return " ".join(str(err).split())


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn known user errors into ``error: …`` on stderr and exit code 1.

    A driver error from the lab's database that is a storage problem (read-only, damaged, disk
    full) — met in the middle of a command, after the database opened — is one too."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (*USER_ERRORS, StorageProblem) as err:
            _fail(err)
        except DBAPIError as err:
            problem = explain(err, Settings().database_url)
            if problem is None:
                raise
            _fail(problem)

    return wrapper


def _fail(err: BaseException) -> NoReturn:
    stderr.print(f"error: {one_line(err)}", markup=False, highlight=False)
    raise typer.Exit(1) from None


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
    """The rows as a table with nothing cut off (``render.print_whole_table``)."""
    from capo_lab.cli.render import print_whole_table  # render imports this module

    print_whole_table(stdout, headers, rows, title)


def fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"
