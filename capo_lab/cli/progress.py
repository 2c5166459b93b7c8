"""Progress bars for the commands that wait on work: ``train`` and ``study --wait`` (a run's steps, its
ETA from ``capo_lab.eta``, its last loss and eval reward accuracy), ``evaluate`` (sentences) and
``benchmark`` (answers).

Rich draws them on stdout, and only when stdout is a terminal and ``--quiet`` is not given: a pipe
or a file gets the commands' plain lines and nothing else. Runs are watched by polling the lab's
database from a thread (``LabService``: the run's step and total, its new metric rows), whether the
run trains in this process or in a worker.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from capo_lab import eta
from capo_lab.live_metrics import Seen
from capo_lab.service import LabService
from storage.records import DatasetInfo, MetricRow, RunRecord

log = logging.getLogger(__name__)
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar")]
LOSS, EVAL_ACCURACY = "loss", "eval_rewards/accuracies"
WATCHED_KEYS = [LOSS, EVAL_ACCURACY, f"{eta.TIMING_PREFIX}*"]
POLL_SECONDS = 1.0


def shows_progress(quiet: bool, stream=None) -> bool:
    """A bar is drawn only on a terminal, and not when asked to be quiet."""
    return not quiet and (stream or sys.stdout).isatty()


def bar(console: Console, *fields: str) -> Progress:
    """A bar with its count, elapsed time, then ``fields`` (task fields shown as plain text)."""
    columns = [TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn()]
    columns += [TimeElapsedColumn(), *(TextColumn(f"{{task.fields[{f}]}}", markup=False) for f in fields)]
    return Progress(*columns, console=console, transient=False, auto_refresh=True)


def eta_text(found: eta.Estimate | None) -> str:
    if found is None:
        return "ETA ?"
    return f"ETA {'~' if found.rough else ''}{clock_text(found.seconds)}"


def clock_text(seconds: float) -> str:
    """``0:42``, ``12:05``, ``1:02:03``."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def value_text(name: str, value: float | None) -> str:
    return f"{name} {'—' if value is None else f'{value:.3f}'}"


class RunWatch:
    """What the bar knows of one run: its record, its dataset, its latest values and timing rows."""

    def __init__(self, record: RunRecord, dataset: DatasetInfo | None) -> None:
        self.record, self.dataset = record, dataset
        self.latest: dict[str, float] = {}
        self.timings: list[MetricRow] = []

    def add(self, rows: Sequence[MetricRow]) -> None:
        for row in rows:
            if row.key.startswith(eta.TIMING_PREFIX):
                self.timings.append(row)
            else:
                self.latest[row.key] = row.value

    def fields(self, now: datetime) -> dict[str, str]:
        ended = self.record.status not in ("queued", "running")
        return {
            "eta": "" if ended else eta_text(eta.run_estimate(self.record, self.dataset, self.timings, now)),
            "loss": value_text("loss", self.latest.get(LOSS)),
            "accuracy": value_text("eval acc", self.latest.get(EVAL_ACCURACY)),
            "status": str(self.record.status),
        }


class RunBars:
    """``with RunBars(service, run_ids, console):`` draws a bar per run, updated every ``every``
    seconds from the database until the block ends; ``console`` None draws nothing."""

    def __init__(
        self,
        service: LabService,
        run_ids: Sequence[int],
        console: Console | None,
        every: float = POLL_SECONDS,
    ) -> None:
        self.service, self.run_ids, self.every = service, list(run_ids), every
        self.progress = bar(console, "eta", "loss", "accuracy", "status") if console else None
        self.tasks: dict[int, TaskID] = {}
        self.watches: dict[int, RunWatch] = {}
        self.cursor: dict[int, Seen] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="progress", daemon=True)

    def __enter__(self) -> RunBars:
        if self.progress is not None:
            datasets = {d.name: d for d in self.service.datasets()}
            for run_id in self.run_ids:
                record = self.service.run(run_id)
                watch = RunWatch(record, datasets.get(record.config["data"]["dataset"]))
                self.watches[run_id] = watch
                fields = watch.fields(datetime.now(UTC))
                self.tasks[run_id] = self.progress.add_task(
                    f"run {run_id} step", total=record.total_steps, **fields
                )
            self.progress.start()
            self.refresh()
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.stop.set()
            self.thread.join()
            self.refresh()
            self.progress.stop()

    def _loop(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self.refresh()
            except Exception as err:  # a bar that cannot read is no reason to stop the work it shows
                log.warning("progress bar stopped: %s", " ".join(str(err).split()))
                return

    def refresh(self) -> None:
        """Read the runs' records and new rows; redraw their bars."""
        update = self.service.metrics_since(self.cursor, self.run_ids, WATCHED_KEYS)
        self.cursor = dict(update.cursor)
        now = datetime.now(UTC)
        for run_id, watch in self.watches.items():
            watch.record = self.service.run(run_id)
            watch.add(update.rows.get(run_id, ()))
            total = watch.record.total_steps
            self.progress.update(
                self.tasks[run_id], completed=watch.record.step, total=total, **watch.fields(now)
            )

    def active(self) -> bool:
        """Whether any watched run is still queued or running (read now)."""
        return any(self.service.run(r).status in ("queued", "running") for r in self.run_ids)


class CountBar:
    """A bar over a count that a job reports (sentences translated, items answered): call it with
    (done, total); ``console`` None draws nothing."""

    def __init__(self, what: str, console: Console | None) -> None:
        self.progress = bar(console, "rate") if console else None
        self.task = self.progress.add_task(what, total=None, rate="") if self.progress else None

    def __enter__(self) -> CountBar:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, done: int, total: int | None) -> None:
        if self.progress is not None:
            elapsed = self.progress.tasks[0].elapsed or 0.0
            left = (total - done) * elapsed / done if done and total else None
            self.progress.update(self.task, completed=done, total=total, rate=eta_text_seconds(left))


def eta_text_seconds(seconds: float | None) -> str:
    return "ETA ?" if seconds is None else f"ETA {clock_text(seconds)}"


class Poller:
    """Calls ``report(*read())`` every ``every`` seconds from a thread while the block runs (a job
    that stores its own progress: a benchmark's answers)."""

    def __init__(self, read: Callable[[], tuple[int, int | None]], report, every: float = POLL_SECONDS):
        self.read, self.report, self.every = read, report, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="progress", daemon=True)

    def _loop(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self.report(*self.read())
            except Exception as err:  # a bar that cannot read is no reason to stop the work it shows
                log.warning("progress bar stopped: %s", " ".join(str(err).split()))
                return

    def __enter__(self) -> Poller:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.report(*self.read())
