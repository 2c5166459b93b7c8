"""``capo-lab report``: a study's comparisons as JSON or a self-contained HTML page."""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from capo_lab.cli.common import HeldOutSplit, open_database, stdout, user_errors


class Endpoint(StrEnum):
    accuracies = "accuracies"
    accuracies_per_token = "accuracies_per_token"
    accuracies_vs_base = "accuracies_vs_base"


class ReportFormat(StrEnum):
    json = "json"
    html = "html"
    text = "text"


@user_errors
def report_command(
    study: Annotated[str, typer.Argument(help="Study name or id")],
    step: Annotated[
        str, typer.Option(help="best (chosen on validation, reported on eval), last, or a step")
    ] = "best",
    split: Annotated[HeldOutSplit, typer.Option(help="eval or validation")] = HeldOutSplit.eval,
    endpoint: Annotated[
        Endpoint, typer.Option(help="lw > ll; per token (SimPO's reward); or the shift against the base")
    ] = Endpoint.accuracies,
    output_format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.json,
    out: Annotated[Path | None, typer.Option(help="Write here instead of standard output")] = None,
) -> None:
    """Accuracy per arm (the base model included) and direction with intervals, paired tests with Holm's
    correction and the smallest detectable difference, Δr densities, BLEU-shift correlation, regimes."""
    from capo_lab.reports import study_report  # numpy, scipy, sacrebleu: only when reporting

    report = study_report(open_database(), study, step, split.value, endpoint.value)
    if output_format is ReportFormat.html:
        from capo_lab.report_html import render

        text = render(report)
    elif output_format is ReportFormat.text:
        from capo_lab.report_text import render_text

        text = render_text(report)
    else:
        text = json.dumps(asdict(report), ensure_ascii=False, default=str)
    if out is None:
        typer.echo(text)
        return
    out.write_text(text, encoding="utf-8")
    missing = f"; not finished: {', '.join(report.missing)}" if report.missing else ""
    stdout.print(f"wrote {out}{missing}", markup=False, highlight=False)
