"""``capo-lab data render``: the exact text and token ids the trainer feeds for each pair; and the CLI's
tables, printed whole (``print_whole_table``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.segment import Segments
from rich.table import Table

from capo_lab.cli.common import open_database, stdout, user_errors
from capo_lab.rendering import RenderedPairRecord, render_dataset_pairs
from capo_lab.settings import Settings

UNLIMITED = 100_000  # characters: wide enough to measure any table at its natural width


class RenderFormat(StrEnum):
    json = "json"
    text = "text"


class TemplateName(StrEnum):
    none = "none"
    model = "model"
    zephyr = "zephyr"


@user_errors
def render_command(
    dataset: Annotated[str, typer.Argument(help="Dataset name or id")],
    model: Annotated[str, typer.Option(help="Model whose tokenizer to use (gemma-3-270m, a path…)")],
    chat_template: Annotated[TemplateName, typer.Option(help="none, model or zephyr")] = TemplateName.none,
    split: Annotated[str | None, typer.Option(help="train, eval or validation")] = None,
    direction: Annotated[str | None, typer.Option(help="Only this direction, e.g. en-de")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many pairs")] = None,
    format: Annotated[
        RenderFormat, typer.Option(help="json (one object per line) or text")
    ] = RenderFormat.text,
) -> None:
    """Print prompt, chosen and rejected as the trainer feeds them: text, token ids and counts."""
    records = render_dataset_pairs(
        open_database(),
        Settings().home_dir / "models",
        dataset,
        model,
        chat_template.value,
        split=split,
        direction=direction,
        limit=limit,
    )
    for record in records:
        if format is RenderFormat.json:
            stdout.print(json.dumps(record.as_dict(), ensure_ascii=False), markup=False, highlight=False)
        else:
            stdout.print(render_text(record), markup=False, highlight=False)


def render_text(record: RenderedPairRecord) -> str:
    lines = [
        f"## pair {record.pair_id} · {record.direction} · {record.split} · template {record.chat_template}"
    ]
    for label, segment in (
        ("prompt", record.prompt),
        ("chosen", record.chosen),
        ("rejected", record.rejected),
    ):
        scored = "" if label == "prompt" else ", scored"
        lines += [
            f"--- {label} ({len(segment.ids)} tokens{scored})",
            repr(segment.text),
            str(list(segment.ids)),
        ]
    return "\n".join(lines) + "\n"


def whole_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> Table:
    """A table whose cells fold onto more lines where space is short, never cut to "…"."""
    table = Table(*headers, title=title or None)
    for column in table.columns:
        column.overflow = "fold"
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


def print_whole_table(
    console: Console, headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = ""
) -> None:
    """Print a table with nothing cut off: into a pipe or a file at its full width (rich's 80 columns
    there cut "direction" to "dire…"); in a terminal at most the terminal's width, cells folded."""
    table = whole_table(headers, rows, title)
    full = Measurement.get(console, console.options.update(max_width=UNLIMITED), table).maximum
    width = min(full, console.width) if console.is_terminal else full
    lines = console.render_lines(table, console.options.update_width(width), new_lines=True)
    # as rendered: console.print would narrow it to the console's width again
    console.print(Segments(segment for line in lines for segment in line), crop=False, soft_wrap=True)
