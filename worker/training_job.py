"""A training run as a job, on the worker's side: claim it, keep its heartbeat, train it on the device
it really uses, finish it, and translate at the end when the run asks (``train.generate_at_end``).

``run_job`` is the worker's task and ``capo-lab train`` alike; the state machine it moves the run
through is ``capo_lab.lifecycle``'s. While a run trains, ``mirrored`` follows its metric rows in the
database and mirrors them to the trackers of ``train.report_to`` (``capo.trackers``): the rows of
every rank of a data-parallel run too, and exactly the series the database holds.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from itertools import groupby
from typing import TYPE_CHECKING

from capo.config import RunConfig
from capo.trackers import TrackedRun, TrackerSink
from capo_lab.database import Database
from capo_lab.lifecycle import WorkDone, claim_job, work_on
from capo_lab.runs import get_run, run_config, run_dir
from capo_lab.settings import Settings
from storage import queries, writes
from storage.records import JobKind, RunStatus

if TYPE_CHECKING:
    from capo.train import RunResult

# Trains a claimed run and returns how it ended: ``worker.execute.train_run`` (the lab's trainer,
# on one process or several), or a stand-in in tests.
Executor = Callable[[Database, Settings, int, RunConfig, Callable[[], bool]], "RunResult"]


def run_job(
    db: Database,
    settings: Settings,
    run_id: int,
    worker: str,
    stop_event: threading.Event,
    device: str | None = None,
    *,
    execute: Executor,
) -> str:
    """Claim, heartbeat, train and finish one queued run; returns its final status (never raises for a
    training failure, which is stored on the run). ``execute`` trains it; ``device`` (a worker's
    ``--device``) overrides ``train.device``; ``stop_event`` (a signal) stops it at its next step
    as ``interrupted``."""
    if not claim_job(db, JobKind.RUN, run_id, worker):
        return f"skipped (run {run_id} is {get_run(db, run_id).status})"
    run = get_run(db, run_id)

    def train(should_stop: Callable[[], bool]) -> WorkDone:
        cfg = _on_device(db, run_config(run, device), run_id)
        with mirrored(db, settings, run_id, cfg):
            result = execute(db, settings, run_id, cfg, should_stop)
        return WorkDone(result.status == "succeeded", {"step": result.step})

    status = work_on(db, JobKind.RUN, run_id, stop_event, settings.heartbeat_seconds, train)
    if status is None:
        return f"lost (run {run_id} became {get_run(db, run_id).status} while it trained)"
    cfg = run_config(run)
    if status is RunStatus.SUCCEEDED and cfg.train.generate_at_end:
        from worker.evaluate import evaluate_at_end

        splits, max_new_tokens = cfg.train.eval_splits, cfg.train.generate_max_new_tokens
        evaluate_at_end(db, settings, run_id, splits, max_new_tokens, worker, stop_event, device)
    return status


def _on_device(db: Database, cfg: RunConfig, run_id: int) -> RunConfig:
    """Resolve ``train.device`` once (``auto`` → ``cuda`` or ``cpu``) and record it on the run."""
    from capo.models import resolve_device

    device = resolve_device(cfg.train.device)
    name = str(device) if device.index is not None or device.type == "cpu" else f"{device.type}:0"
    with db.write() as session:
        writes.update_run(session, run_id, device=name)
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"device": name})})


@contextlib.contextmanager
def mirrored(db: Database, settings: Settings, run_id: int, cfg: RunConfig) -> Iterator[None]:
    """While the block trains the run, mirror its new metric rows to ``cfg.train.report_to``'s trackers
    from a thread (every heartbeat period), then the last rows once it ends; a tracker that fails is
    a note on the run (``capo.trackers.TrackerSink``), never a failed run."""
    if not cfg.train.report_to:
        yield
        return
    done = threading.Event()
    follower = threading.Thread(
        target=_follow, args=(db, settings, run_id, cfg, done), name=f"trackers-{run_id}", daemon=True
    )
    follower.start()
    try:
        yield
    finally:
        done.set()
        follower.join()


def _follow(db: Database, settings: Settings, run_id: int, cfg: RunConfig, done: threading.Event) -> None:
    """Open the trackers, mirror each step once the run has moved past it (its evaluation and timings
    are in), and every row left once ``done`` is set. A resumed run starts after its checkpoint's step:
    the rows up to it were mirrored when they were first logged."""

    def note(line: str) -> None:
        with db.write() as session:
            writes.append_run_note(session, run_id, line)

    try:
        run = get_run(db, run_id)
        tracked = TrackedRun(
            run_id, run.name, cfg.model_dump(mode="json"), run_dir(settings, run_id), settings.home_dir
        )
        sink = TrackerSink.open(cfg.train.report_to, tracked, note)
        mirrored_through = -1 if run.resumed_from_step is None else run.resumed_from_step
        while sink.trackers and not done.wait(settings.heartbeat_seconds):
            mirrored_through = _mirror_rows(db, run_id, sink, mirrored_through, finished=False)
        if sink.trackers:
            _mirror_rows(db, run_id, sink, mirrored_through, finished=True)
        sink.close()
    except Exception as err:  # the database read or a note failed: the run goes on, unmirrored
        note(f"report_to: mirroring stopped ({type(err).__name__}: {err})")


def _mirror_rows(db: Database, run_id: int, sink: TrackerSink, after_step: int, finished: bool) -> int:
    """Mirror the run's rows after ``after_step``: every one when ``finished``, else only steps before
    its newest (still being logged). Returns the last step mirrored."""
    with db.read() as session:
        rows = queries.metrics(session, run_id, after_step)
    newest = rows[-1].step if rows else after_step
    last = newest if finished else newest - 1
    for step, group in groupby((r for r in rows if r.step <= last), key=lambda r: r.step):
        sink.log_metrics(step, {r.key: r.value for r in group})
    return max(after_step, last)
