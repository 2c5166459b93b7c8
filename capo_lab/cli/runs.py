"""``capo-lab train | pairs | runs | export``."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import sys
import threading
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from capo.config import ConfigError, load_config
from capo_lab import lifecycle, runs
from capo_lab.cli.common import Output, fmt, lab, open_database, print_table, stderr, stdout, user_errors
from capo_lab.cli.progress import QuietOption, RunBars, shows_progress
from capo_lab.errors import LabError
from capo_lab.records import RunStatus
from capo_lab.settings import Settings

runs_app = typer.Typer(no_args_is_help=True, help="List and inspect training runs.")


class RowFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


class ScoreSplit(StrEnum):
    train = "train"
    eval = "eval"
    validation = "validation"


SetOption = Annotated[list[str] | None, typer.Option("--set", help="Override a key: section.key=value")]


@user_errors
def train_command(
    config: Annotated[Path, typer.Argument(help="A YAML run config, e.g. configs/smoke.yaml")],
    overrides: SetOption = None,
    quiet: QuietOption = False,
) -> None:
    """Submit, then run the job in this process: the worker's path (claim, heartbeat, status); run id last.

    On a terminal a bar shows the step, the ETA, the loss and the eval reward accuracy (--quiet: none).
    Ctrl-C stops at the next step with a checkpoint; the run is then ``interrupted`` and resumable."""
    try:
        cfg = load_config(config, overrides or [])
    except ConfigError as err:
        raise LabError(str(err)) from None
    db = open_database()
    (run_id,) = lifecycle.submit(db, [cfg], enqueue=lambda _run_id: None)  # this process runs it
    say(f"run {run_id}: training {cfg.name!r} ({cfg.objective.name}) on {cfg.model.name_or_path}")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    from worker.runtime import quiet_libraries

    quiet_libraries()  # no "Loading weights" bars under the progress bar; before bitsandbytes loads
    from worker.execute import train_run  # the trainer: imports torch, so only here
    from worker.training_job import run_job

    worker = f"cli:{socket.gethostname()}:{os.getpid()}"
    with RunBars(lab(), [run_id], stdout if shows_progress(quiet) else None):
        status = run_job(db, Settings(), run_id, worker, stop, execute=train_run)
    run = runs.get_run(db, run_id)
    for note in run.notes:
        say(f"note: {note}")
    if run.status == RunStatus.FAILED:
        error = " ".join((run.error or status).split())
        stderr.print(f"error: run {run_id} failed: {error}", markup=False, highlight=False)
        raise typer.Exit(1)
    acc = fmt(runs.final_metric(db, run_id, "eval_rewards/accuracies"), 3)
    say(f"run {run.status} after {run.step} steps on {run.device}; eval reward accuracy {acc}")
    say(f"run id {run_id}")


def say(text: str) -> None:
    stdout.print(text, markup=False, highlight=False)


_SCORE_COLUMNS = [
    "pair_id",
    "direction",
    "step",
    "split",
    "logp_chosen",
    "logp_rejected",
    "n_tokens_chosen",
    "n_tokens_rejected",
    "rrm",
    "loss",
    "reward_margin",
    "ref_logp_chosen",
    "ref_logp_rejected",
    "tie",
]


@user_errors
def pairs_command(
    run: Annotated[str, typer.Option("--run", help="Run id")],
    step: Annotated[str, typer.Option(help="first, last or a step number")] = "last",
    split: Annotated[ScoreSplit, typer.Option(help="train, eval or validation")] = ScoreSplit.train,
    output_format: Annotated[RowFormat, typer.Option("--format")] = RowFormat.jsonl,
) -> None:
    """Per-pair scores: log-probs (ref_* = the base model's), token counts, RRM, loss, margin, dL by term."""
    rows = []
    for s in lab().pair_scores(run, split.value, step):
        row = {k: getattr(s, k) for k in _SCORE_COLUMNS}
        row["dL_dlw"], row["dL_dll"] = sum(s.grad_chosen.values()), sum(s.grad_rejected.values())
        row.update({f"dL_dlw/{k}": v for k, v in s.grad_chosen.items()})
        row.update({f"dL_dll/{k}": v for k, v in s.grad_rejected.items()})
        rows.append(row)
    if output_format is RowFormat.jsonl:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else _SCORE_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)


@runs_app.command("list")
@user_errors
def runs_list() -> None:
    """Every run with its status and progress."""
    rows = [
        [
            r.id,
            r.name,
            r.config["objective"]["name"],
            r.status,
            f"{r.step}/{r.total_steps or '?'}",
            r.study_id or "",
            r.created_at.strftime("%Y-%m-%d %H:%M"),
        ]
        for r in reversed(lab().runs())
    ]
    print_table(["id", "name", "objective", "status", "step", "study", "created"], rows)


@runs_app.command("show")
@user_errors
def runs_show(
    run: Annotated[str, typer.Argument(help="Run id")],
    output_format: Annotated[Output, typer.Option("--format")] = Output.table,
) -> None:
    """One run: status, step, config, error, timings."""
    record = lab().run(run)
    if output_format is Output.json:
        typer.echo(json.dumps(record.as_dict(), indent=2))
        return
    data = record.as_dict()
    data["config"] = json.dumps(data["config"])
    print_table(["field", "value"], [[k, v] for k, v in data.items() if k != "traceback"])


@runs_app.command("delete")
@user_errors
def runs_delete(
    run: Annotated[str, typer.Argument(help="Run id")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking")] = False,
) -> None:
    """Delete a run with its metrics, pair scores, translations and checkpoints (its folder too).

    A queued or running run is refused: cancel it first (``capo-lab runs cancel``)."""
    service = lab()
    (record,) = service.deletable_runs([run])
    if not yes:
        question = f"Delete run {record.id} ({record.name}, {record.status}) with its rows and checkpoints?"
        typer.confirm(question, abort=True)
    report_deletion(service.delete_runs([record.id]))


def report_deletion(done: runs.Deletion) -> None:
    """One line saying what was deleted; a warning on stderr per folder that could not be removed."""
    what = f"study {done.study!r} and " if done.study is not None else ""
    ids = ", ".join(map(str, done.run_ids)) or "none"
    say(f"deleted {what}{len(done.run_ids)} run(s) ({ids}); {len(done.removed)} folder(s) removed")
    for left in done.left:
        stderr.print(f"warning: could not remove {left}", markup=False, highlight=False)


@user_errors
def export_command(
    run: Annotated[str, typer.Argument(help="Run id")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the adapter")],
    step: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Export the checkpoint at this step (metrics.csv stops there); "
            "required for a run that has not finished",
        ),
    ] = None,
) -> None:
    """Write a PEFT adapter folder (PeftModel.from_pretrained loads it), run_config.json, metrics.csv.

    A finished run exports its last checkpoint; one that has not finished (queued, running,
    interrupted, cancelled, failed) is refused unless --step names one of its checkpoints."""
    done = lab().export_run(run, out, step)
    say(f"exported run {done.run_id} ({done.status}) at step {done.step} to {done.path}")
