"""``capo-lab report``: a study's comparisons as JSON or a self-contained HTML page."""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from capo_lab.cli.common import HeldOutSplit, open_database, stdout, user_errors


class ReportFormat(StrEnum):
    json = "json"
    html = "html"


@user_errors
def report_command(
    study: Annotated[str, typer.Argument(help="Study name or id")],
    step: Annotated[str, typer.Option(help="best (highest accuracy), last, or a step")] = "best",
    split: Annotated[HeldOutSplit, typer.Option(help="eval or validation")] = HeldOutSplit.eval,
    output_format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.json,
    out: Annotated[Path | None, typer.Option(help="Write here instead of standard output")] = None,
) -> None:
    """Accuracy per direction with intervals, paired tests, Δr densities, BLEU-shift correlation, regimes."""
    from capo_lab.reports import study_report  # numpy, scipy, sacrebleu: only when reporting

    report = study_report(open_database(), study, step, split.value)
    if output_format is ReportFormat.html:
        from capo_lab.report_html import render

        text = render(report)
    else:
        text = json.dumps(asdict(report), ensure_ascii=False, default=str)
    if out is None:
        typer.echo(text)
        return
    out.write_text(text, encoding="utf-8")
    missing = f"; not finished: {', '.join(report.missing)}" if report.missing else ""
    stdout.print(f"wrote {out}{missing}", markup=False, highlight=False)
