"""The ``capo-lab`` command line."""

from __future__ import annotations

import typer

from capo_lab.cli_data import data_app

app = typer.Typer(
    no_args_is_help=True,
    help="CAPO Lab: multilingual preference optimization.",
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")


def main() -> None:
    app()
