"""``capo-lab study`` and ``capo-lab studies``: queue a grid of runs, list and delete the studies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from capo_lab import lifecycle, studies
from capo_lab.cli.common import enqueue_run, lab, open_database, print_table, stdout, user_errors
from capo_lab.cli.runs import report_deletion


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
) -> None:
    """Queue every run of the grid (validated first); prints the study id last."""
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
