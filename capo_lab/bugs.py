"""Bugs, as distinct from user errors: each logged once, with its traceback, to the lab's log file,
and shown to the user as one line saying that an internal error happened and where the log is.

The log is ``$CAPO_LAB_HOME/logs/capo-lab.log`` (``capo-lab-logs/capo-lab.log`` in the system's
temporary folder when the home cannot be written). Nothing here prints a traceback to a terminal or a page.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from capo_lab.settings import Settings

LOG_NAME = "capo-lab.log"
LOGGED = "_capo_lab_logged"  # set on an exception once its traceback is in the log
log = logging.getLogger("capo_lab.bugs")
log.propagate = False  # the traceback goes to the file only, never to a terminal through the root logger


def log_file(settings: Settings | None = None) -> Path:
    """The file this process writes bugs to: the first of the home's and the temporary folder's
    ``logs/`` that can be written."""
    for folder in _log_folders(settings or Settings()):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with (folder / LOG_NAME).open("a", encoding="utf-8"):
                return folder / LOG_NAME
        except OSError:
            continue
    raise OSError("no folder to write the lab's log to")  # not reached: the temporary folder is writable


def _log_folders(settings: Settings) -> list[Path]:
    return [settings.home_dir / "logs", Path(tempfile.gettempdir()) / "capo-lab-logs"]


def _handler_for(path: Path) -> logging.Handler:
    for handler in log.handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == path:
            return handler
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(message)s"))
    log.addHandler(handler)
    return handler


def report_bug(action: str, err: BaseException, settings: Settings | None = None) -> str:
    """Log ``err`` with its traceback (once: a bug already reported is not logged again) and return
    the line to show: ``internal error in ACTION (Type: message); the traceback is in PATH``."""
    path = log_file(settings)
    if not getattr(err, LOGGED, False):
        _handler_for(path)
        log.error("internal error in %s", action, exc_info=(type(err), err, err.__traceback__))
        if hasattr(err, "__dict__"):  # every exception but one whose type declares __slots__
            vars(err)[LOGGED] = True
    what = " ".join(f"{type(err).__name__}: {err}".split())[:300]
    return f"internal error in {action} ({what}); the traceback is in {path}"
