"""The Huey instance, alone: SqliteHuey under CAPO_LAB_HOME, or RedisHuey for a redis:// queue URL.

A SQLite queue that cannot be used (read-only home, a damaged or foreign ``queue.db``) is a
``storage.errors.StorageProblem``: one line naming the file and what to do, when it is opened (at
import) and when a task is put on it or taken from it (``queue_problems``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from huey import Huey, RedisHuey, SqliteHuey

from capo_lab.settings import Settings
from storage.errors import StorageProblem, explain

QUEUE_FILE = "queue.db"
EMPTY_QUEUE = (
    "move it aside and the lab starts an empty queue (runs queued in it then need "
    "`capo-lab runs cancel` and `capo-lab runs resume`)"
)


def queue_problem(err: BaseException, path: Path) -> StorageProblem | None:
    """``storage.errors.explain`` for the queue's file, with the queue's own remedy for a damaged one."""
    problem = explain(err, f"sqlite:///{path}")
    if problem is not None and problem.problem.startswith("not a SQLite database"):
        return StorageProblem(problem.where, problem.problem, EMPTY_QUEUE)
    return problem


@contextmanager
def queue_problems(path: Path | None = None) -> Iterator[None]:
    """Turn a SQLite or file-system error on the queue's file into a ``StorageProblem``."""
    path = path or _queue_path()
    try:
        yield
    except (sqlite3.Error, OSError) as err:
        problem = queue_problem(err, path)
        if problem is None:
            raise
        raise problem from err


def make_huey(settings: Settings) -> Huey:
    url = settings.queue_url
    if url and url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("capo-lab", url=url)
    if url:
        raise StorageProblem(
            f"CAPO_LAB_QUEUE_URL={url}",
            "not a redis:// URL",
            "set a redis:// URL, or unset it for the SQLite queue",
        )
    path = settings.home_dir / QUEUE_FILE
    with queue_problems(path):
        settings.home_dir.mkdir(parents=True, exist_ok=True)
        return SqliteHuey("capo-lab", filename=str(path))


def _queue_path() -> Path:
    """The SQLite queue's file (where this process opened it)."""
    return Path(getattr(huey.storage, "filename", Settings().home_dir / QUEUE_FILE))


huey = make_huey(Settings())
