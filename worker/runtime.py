"""What the worker process tells its tasks: its name, device, stop flag and its one database; and the
libraries' logging quietened to one line per event (``quiet_libraries``)."""

from __future__ import annotations

import logging
import threading
import warnings
from dataclasses import dataclass, field

from capo_lab.database import Database
from capo_lab.lifecycle import this_process


@dataclass
class WorkerContext:
    name: str = field(default_factory=this_process)
    device: str | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    database: Database | None = None  # opened once by ``worker.consumer.serve``, shared by every job

    def shared_database(self, url: str) -> Database:
        """The process's one ``Database`` for ``url``: the worker loop's, or (tasks run in place, as
        in Huey's immediate mode) one opened on first use and kept; another URL replaces it."""
        if self.database is None or self.database.url != url:
            if self.database is not None:
                self.database.close()
            self.database = Database(url)
        return self.database


context = WorkerContext()


# Loggers whose INFO lines repeat what the lab's own line says (huey: "Executing …" beside the worker's
# "job …"; alembic: two lines per database opened; sacrebleu: its significance tests' progress).
ECHOES = ("huey", "huey.consumer", "alembic", "alembic.runtime.migration", "sacrebleu")
BNB_CPU_OPS = "bitsandbytes.backends.cpu.ops"
KERNEL_LINE = "Failed to load CPU gemm_4bit_forward from kernels-community"


class DropMessage(logging.Filter):
    """Drops the records whose message starts with ``prefix``: a line the lab says in its own words."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def warning_line(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG001
    """``warnings.showwarning`` as one log line (category, message, where), not two lines of stderr."""
    text = " ".join(str(message).split())
    logging.getLogger("py.warnings").warning("%s: %s (%s:%s)", category.__name__, text, filename, lineno)


def quiet_libraries() -> None:
    """One line per event in a worker's log (and so in ``capo-lab serve``'s): no "Loading weights"
    progress bars (transformers' and the hub's bars off), a library's warning as one log line, the
    echoing libraries at WARNING, and bitsandbytes' "Failed to load CPU gemm_4bit_forward" warning
    dropped: it is said once per 4-bit load, with what it costs, by ``capo.models``. Call it before
    bitsandbytes is imported (by peft, through ``capo.models``): bitsandbytes logs that line when
    imported. Imports transformers."""
    from transformers.utils import logging as transformers_logging  # the hub's bars go with its own

    transformers_logging.disable_progress_bar()
    warnings.showwarning = warning_line
    for name in ECHOES:
        logging.getLogger(name).setLevel(logging.WARNING)
    bnb = logging.getLogger(BNB_CPU_OPS)
    if not any(isinstance(f, DropMessage) for f in bnb.filters):
        bnb.addFilter(DropMessage(KERNEL_LINE))
