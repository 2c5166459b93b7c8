"""``capo-lab data render``: the exact text and token ids the trainer feeds for each pair."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from capo_lab.cli.common import open_database, stdout, user_errors
from capo_lab.rendering import RenderedPairRecord, render_dataset_pairs
from capo_lab.settings import Settings


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
