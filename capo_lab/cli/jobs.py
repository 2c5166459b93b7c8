"""``capo-lab worker | submit | runs cancel | runs resume``: the queue from the command line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from capo_lab import lifecycle, studies
from capo_lab.cli.common import enqueue_run, open_database, stdout, user_errors


@user_errors
def worker_command(
    device: Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N (default: auto)")] = None,
    exit_with_parent: Annotated[
        int | None,
        typer.Option(
            metavar="PID",
            help="Also stop (as on SIGTERM) once the process PID, this worker's parent, has died",
        ),
    ] = None,
) -> None:
    """Serve queued runs one at a time; SIGINT/SIGTERM checkpoint the current run and stop."""
    from worker.consumer import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    serve(device=device, parent_pid=exit_with_parent)


@user_errors
def submit_command(
    config: Annotated[Path, typer.Argument(help="A YAML run config")],
    overrides: Annotated[list[str] | None, typer.Option("--set", help="section.key=value")] = None,
    sweep: Annotated[
        str | None, typer.Option(help="A study of one run per value: objective.alpha=0.5,1,2")
    ] = None,
) -> None:
    """Queue one run (or, with --sweep, a study); prints the run ids, the last word being the last id."""
    db = open_database()
    raw = lifecycle.load_raw_config(config)
    study_id, run_ids = studies.launch(db, raw, enqueue_run, sweep, overrides or [])
    if study_id is not None:
        stdout.print(
            f"study {study_id}: {studies.get_study(db, study_id).name}", markup=False, highlight=False
        )
    stdout.print(
        f"queued {len(run_ids)} run(s): {' '.join(map(str, run_ids))}", markup=False, highlight=False
    )


@user_errors
def cancel_command(run: Annotated[str, typer.Argument(help="Run id")]) -> None:
    """Cancel a queued run, or stop a running one at its next step (its checkpoint is kept)."""
    stdout.print(f"run {run}: {lifecycle.cancel(open_database(), run)}", markup=False, highlight=False)


@user_errors
def resume_command(run: Annotated[str, typer.Argument(help="Run id")]) -> None:
    """Re-queue an interrupted, cancelled or failed run from its latest checkpoint."""
    step = lifecycle.resume(open_database(), run, enqueue_run)
    where = f"from its checkpoint at step {step}" if step is not None else "from the start (no checkpoint)"
    stdout.print(f"run {run} queued again, {where}", markup=False, highlight=False)
