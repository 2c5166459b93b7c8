"""One run on several processes: ``accelerate launch`` starts the ranks of ``worker.distributed_run``.

The worker stays the run's owner: it keeps the heartbeat, turns a stop request
into a ``STOP`` file that rank 0 watches, and reads rank 0's ``result.json``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from capo.config import RunConfig
from capo.train import RunResult

STOP_FILE = "STOP"
RESULT_FILE = "result.json"
LOG_FILE = "distributed.log"


class DistributedRunError(RuntimeError):
    """The launched processes exited with an error; the message carries the end of their log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_command(run_id: int, cfg: RunConfig) -> list[str]:
    """``accelerate launch`` with ``train.num_processes`` ranks on this machine (DDP; gloo on CPU); each
    rank prepares the run itself (``worker.prepare.prepare_run``: its config, checkpoint, inputs)."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(cfg.train.num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        "--module",
        "worker.distributed_run",
        str(run_id),
        "--device",
        cfg.train.device,
    ]


def train_in_processes(
    folder: Path,
    run_id: int,
    cfg: RunConfig,
    should_stop: Callable[[], bool],
    poll_seconds: float = 1.0,
) -> RunResult:
    folder.mkdir(parents=True, exist_ok=True)
    for name in (STOP_FILE, RESULT_FILE):
        (folder / name).unlink(missing_ok=True)
    with (folder / LOG_FILE).open("w") as log:
        process = subprocess.Popen(launch_command(run_id, cfg), stdout=log, stderr=subprocess.STDOUT)
        while process.poll() is None:
            if should_stop():
                (folder / STOP_FILE).touch()
            with contextlib.suppress(subprocess.TimeoutExpired):  # returns as soon as the ranks exit
                process.wait(timeout=poll_seconds)
    result = folder / RESULT_FILE
    if process.returncode != 0 or not result.exists():
        tail = (folder / LOG_FILE).read_text(errors="replace")[-2000:]
        raise DistributedRunError(
            f"{cfg.train.num_processes} processes exited with {process.returncode}: {tail}"
        )
    return RunResult(**json.loads(result.read_text()))
