"""What can be wrong with the lab's database file itself, each said in one line with what to do.

``StorageProblem`` is a user error (the front ends print it as one line, no traceback): the file
cannot be written, is not a database or is damaged, or was made by a newer capo-lab. ``explain``
turns a driver error into one of these where it is one, and gives ``None`` for anything else
(a bug, a constraint, a lost server), which keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

# SQLite's primary result codes (the low byte of an extended code)
_READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 8, 10, 11, 13, 14, 26

WRITABLE_HOME = "set CAPO_LAB_HOME to a writable folder"


class StorageProblem(Exception):
    """The lab's database cannot be used as it is: ``"<where>: <problem>; <what to do>"``."""

    def __init__(self, where: str, problem: str, remedy: str) -> None:
        self.where, self.problem, self.remedy = where, problem, remedy
        super().__init__(f"{where}: {problem}; {remedy}")

    def __reduce__(self) -> tuple[type[StorageProblem], tuple[str, str, str]]:  # pickles (the job queue)
        return (type(self), (self.where, self.problem, self.remedy))


def sqlite_path(url: str | URL) -> Path | None:
    """The file behind a SQLite URL (also ``sqlite:///file:PATH?mode=ro&uri=true``); None for an
    in-memory database or another backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    name = parsed.database
    if str(parsed.query.get("uri", "")).lower() in {"true", "1"} and name.startswith("file:"):
        name = name.removeprefix("file:").split("?", 1)[0]
        if name.startswith("//"):  # file://host/path or file:///path
            name = "/" + name[2:].split("/", 1)[-1]
        if not name or name == ":memory:" or name.startswith(":memory:"):
            return None
    return Path(name).expanduser()


def where(url: str | URL) -> str:
    """How a message names the database: its file, or its URL without the password."""
    path = sqlite_path(url)
    return str(path) if path is not None else make_url(url).render_as_string(hide_password=True)


def read_only(url: str | URL) -> StorageProblem:
    return StorageProblem(
        where(url), "the lab's home is not writable (read-only file system or permissions)", WRITABLE_HOME
    )


def corrupt(url: str | URL, detail: str) -> StorageProblem:
    return StorageProblem(
        where(url),
        f"not a SQLite database, or a damaged one ({detail})",
        "restore a backup, or move the file aside and the lab starts an empty one",
    )


def newer(url: str | URL, revision: str, head: str | None) -> StorageProblem:
    return StorageProblem(
        where(url),
        f"the database is at revision {revision}, newer than this capo-lab (it knows up to {head})",
        "upgrade capo-lab (the code) to use it",
    )


def home_problem(url: str | URL, err: OSError) -> StorageProblem | None:
    """Why the folder of a SQLite file could not be made, or None when ``err`` is not about that."""
    if isinstance(err, (NotADirectoryError, FileExistsError)):
        return StorageProblem(
            where(url),
            f"the lab's home cannot be made ({err.strerror}: {err.filename})",
            WRITABLE_HOME,
        )
    if err.errno in {errno.EROFS, errno.EACCES, errno.EPERM}:
        return read_only(url)
    if err.errno == errno.ENOSPC:
        return StorageProblem(where(url), "the disk is full", "free some space")
    return None


def writable_problem(url: str | URL) -> StorageProblem | None:
    """A SQLite file, or the folder it must be created in (and its WAL files beside it), that this
    process may not write; None when it may, or for other backends."""
    path = sqlite_path(url)
    if path is None:
        return None
    folder = path.parent
    if (path.exists() and not os.access(path, os.W_OK)) or (
        folder.is_dir() and not os.access(folder, os.W_OK)
    ):
        return read_only(url)
    return None


def explain(err: BaseException, url: str | URL) -> StorageProblem | None:
    """The storage problem behind a driver error on the lab's database, or None if it is not one."""
    if isinstance(err, StorageProblem):
        return err
    if isinstance(err, OSError):
        return home_problem(url, err)
    orig = err.orig if isinstance(err, DBAPIError) else err
    if not isinstance(orig, sqlite3.Error):
        return None
    detail = str(orig) or type(orig).__name__
    code = getattr(orig, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else _code_from_message(detail)
    if primary in {_CORRUPT, _NOTADB}:
        return corrupt(url, detail)
    if primary in {_READONLY, _CANTOPEN}:
        if writable_problem(url) is not None:
            return read_only(url)
        if primary == _READONLY:
            return _opened_read_only(url, detail)
        return StorageProblem(
            where(url),
            f"cannot be opened ({detail})",
            "check that the path names a file in a folder",
        )
    if primary == _FULL:
        return StorageProblem(where(url), f"the disk is full ({detail})", "free some space")
    if primary == _IOERR:
        return StorageProblem(where(url), f"cannot be read or written ({detail})", "check the disk it is on")
    return None


def _opened_read_only(url: str | URL, detail: str) -> StorageProblem:
    """SQLite refused a write although the file and folder look writable: read-only mount options,
    a ``mode=ro`` URL, or permissions only root would get past."""
    return StorageProblem(
        where(url),
        f"the database is read-only here ({detail})",
        f"{WRITABLE_HOME} (or CAPO_LAB_DB_URL to a writable database)",
    )


def _code_from_message(message: str) -> int | None:
    text = message.lower()
    for needle, code in (
        ("malformed", _CORRUPT),
        ("not a database", _NOTADB),
        ("readonly database", _READONLY),
        ("unable to open database", _CANTOPEN),
        ("disk is full", _FULL),
        ("disk i/o error", _IOERR),
    ):
        if needle in text:
            return code
    return None
