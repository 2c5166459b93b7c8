"""``capo-lab study`` and ``capo-lab studies``: queue a grid of runs, list and delete the studies."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from capo_lab import lifecycle, studies
from capo_lab.cli.common import enqueue_run, lab, open_database, print_table, stdout, user_errors
from capo_lab.cli.progress import POLL_SECONDS, QuietOption, RunBars, shows_progress
from capo_lab.cli.runs import report_deletion

if TYPE_CHECKING:  # numpy, scipy, sacrebleu: imported only when a report is made
    from capo_lab.reports import StudyReport


@user_errors
def study_command(
    config: Annotated[Path, typer.Argument(help="A YAML run config: what every run shares")],
    name: Annotated[str, typer.Option(help="Name of the study")],
    objectives: Annotated[str | None, typer.Option(help="capo,dpo,simpo,dpo_nll")] = None,
    vary: Annotated[list[str] | None, typer.Option(help="key=v1,v2,... (repeatable)")] = None,
    seeds: Annotated[str | None, typer.Option(help="Training seeds, e.g. 0,1,2")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="section.key=value for every run")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the runs (a worker runs them), then print the summary")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Queue every run of the grid (validated first); prints the study id last.

    With --wait: a progress bar per run on a terminal (--quiet: none) until every run has ended, then
    the report's summary (runs, accuracy over all directions, primary comparisons)."""
    db = open_database()
    chosen = [o.strip() for o in (objectives or "").split(",") if o.strip()]
    factors = studies.study_factors(chosen, vary or [], studies.parse_seeds(seeds))
    plan = studies.plan_study(name, lifecycle.load_raw_config(config), factors, overrides or [])
    study_id, run_ids = studies.submit_study(db, plan, enqueue_run)
    for run_id, cfg in zip(run_ids, plan.configs, strict=True):
        stdout.print(f"queued run {run_id}: {cfg.name}", markup=False, highlight=False)
    stdout.print(
        f"study {plan.name!r}: {len(run_ids)} runs; study id {study_id}", markup=False, highlight=False
    )
    if wait:
        wait_for_runs(run_ids, quiet)
        step = "best" if all("validation" in c.train.eval_splits for c in plan.configs) else "last"
        for line in summary_lines(lab().study_report(study_id, step)):
            stdout.print(line, markup=False, highlight=False)


def wait_for_runs(run_ids: list[int], quiet: bool) -> None:
    """Until no run is queued or running: bars on a terminal, silence elsewhere."""
    stdout.print(
        "waiting for the runs (a worker runs them: capo-lab worker or serve)", markup=False, highlight=False
    )
    with RunBars(lab(), run_ids, stdout if shows_progress(quiet) else None) as bars:
        while bars.active():
            time.sleep(POLL_SECONDS)


def summary_lines(report: StudyReport) -> list[str]:
    """The report's runs, each arm's accuracy over all directions, and the primary comparisons."""
    from capo.analysis.compare import ALL
    from capo_lab.report_text import accuracy_lines, comparison_line, run_lines

    primary = [c for c in report.comparisons if c.direction == ALL]
    accuracy = [line for cell, line in zip(report.accuracy, accuracy_lines(report), strict=True)
                if cell.direction == ALL]  # fmt: skip
    return [
        f"Study {report.study} (#{report.study_id}), {report.split} split, step {report.step}",
        *run_lines(report),
        f"Accuracy (rewards/{report.endpoint}), all directions:",
        *accuracy,
        "Primary comparisons:",
        *map(comparison_line, primary),
        f"The whole report: capo-lab report {report.study_id} --format html --out report.html",
    ]


studies_app = typer.Typer(help="List (the default) and delete studies.")


@studies_app.callback(invoke_without_command=True)
def studies_main(ctx: typer.Context) -> None:
    """Every study with its factors and runs; `capo-lab studies delete NAME` deletes one."""
    if ctx.invoked_subcommand is None:
        studies_command()


@studies_app.command("list")
@user_errors
def studies_command() -> None:
    """Every study with its factors and runs."""
    rows = [
        [
            s.id,
            s.name,
            "; ".join(f"{k}={','.join(map(str, v))}" for k, v in s.factors.items()),
            len(s.run_ids),
        ]
        for s in lab().studies()
    ]
    print_table(["id", "name", "factors", "runs"], rows)


@studies_app.command("delete")
@user_errors
def studies_delete(
    study: Annotated[str, typer.Argument(help="Study name or id")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking")] = False,
) -> None:
    """Delete a study with its runs, their rows and checkpoints (their folders too).

    Refused while one of its runs is queued or running: cancel those first."""
    service = lab()
    record = service.deletable_study(study)
    if not yes:
        count = len(record.run_ids)
        question = f"Delete study {record.name!r} and its {count} run(s) with their rows and checkpoints?"
        typer.confirm(question, abort=True)
    report_deletion(service.delete_study(record.id))
