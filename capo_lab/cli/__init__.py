"""The ``capo-lab`` command line."""

from __future__ import annotations

import sys

import typer

from capo_lab.bugs import report_bug
from capo_lab.cli.benchmark import benchmark_command
from capo_lab.cli.data import data_app
from capo_lab.cli.evaluate import evaluate_command
from capo_lab.cli.jobs import cancel_command, resume_command, submit_command, worker_command
from capo_lab.cli.ops import db_app, health_command
from capo_lab.cli.render import render_command
from capo_lab.cli.report import report_command
from capo_lab.cli.runs import export_command, pairs_command, runs_app, train_command
from capo_lab.cli.serve import serve_command
from capo_lab.cli.study import studies_app, study_command

app = typer.Typer(
    no_args_is_help=True,
    help="CAPO Lab: multilingual preference optimization.",
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")
data_app.command("render")(render_command)
app.add_typer(runs_app, name="runs")
app.add_typer(db_app, name="db")
app.command("health")(health_command)
app.command("train")(train_command)
app.command("pairs")(pairs_command)
app.command("export")(export_command)
app.command("evaluate")(evaluate_command)
app.command("benchmark")(benchmark_command)
app.command("serve")(serve_command)
app.command("worker")(worker_command)
app.command("submit")(submit_command)
app.command("study")(study_command)
app.add_typer(studies_app, name="studies")
app.command("report")(report_command)
runs_app.command("cancel")(cancel_command)
runs_app.command("resume")(resume_command)


def command_name(argv: list[str]) -> str:
    """``capo-lab data import`` for ``capo-lab data import x.jsonl --name d``: the command's words."""
    words = [a for a in argv[1:3] if not a.startswith("-")]
    return " ".join(["capo-lab", *words[: 2 if words and words[0] in GROUPS else 1]])


GROUPS = {"data", "runs", "db", "studies"}


def main() -> None:
    """The ``capo-lab`` entry point. A user error is one ``error:`` line (``cli.common.user_errors``);
    anything else is a bug: its traceback goes to the lab's log once, and the terminal gets one line
    saying where (exit code 2)."""
    try:
        app()
    except Exception as err:  # every user error was turned into exit code 1 inside the command
        print(f"error: {report_bug(command_name(sys.argv), err)}", file=sys.stderr)
        sys.exit(2)
