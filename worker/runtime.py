"""What the worker process tells its tasks: its name, device, stop flag and its one database."""

from __future__ import annotations

import threading
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
