"""What the worker process tells its tasks: its name, device and stop flag (one per process)."""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class WorkerContext:
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    device: str | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)


context = WorkerContext()
