"""``capo-lab evaluate``: translate a split with a run's adapter (and the base), score with sacrebleu."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from capo_lab.cli.common import (
    HeldOutSplit,
    Output,
    fmt,
    open_database,
    print_table,
    stdout,
    user_errors,
)
from capo_lab.cli.progress import CountBar, QuietOption, shows_progress
from capo_lab.settings import Settings
from capo_lab.translations import TranslationReport


@user_errors
def evaluate_command(
    run: Annotated[str, typer.Argument(help="Run id")],
    step: Annotated[str, typer.Option(help="A step with a checkpoint, or last")] = "last",
    split: Annotated[HeldOutSplit, typer.Option(help="eval or validation")] = HeldOutSplit.eval,
    base: Annotated[
        bool, typer.Option("--base", help="Also translate with the base model (adapters off)")
    ] = False,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Longest translation, in tokens")] = 160,
    output_format: Annotated[Output, typer.Option("--format")] = Output.table,
    quiet: QuietOption = False,
) -> None:
    """Greedy translations of the split's sources; chrF, BLEU, TER against the post-edits, per direction.

    On a terminal a bar counts the sentences translated, with an ETA (--quiet: none)."""

    from worker.runtime import quiet_libraries

    quiet_libraries()  # no loading bars under the progress bar; before bitsandbytes loads
    from worker.evaluate import evaluate_translations  # loads the model: imports torch, so only here

    with CountBar("sentences", stdout if shows_progress(quiet) else None) as progress:
        report = evaluate_translations(
            open_database(), Settings(), run, step, split.value, base, max_new_tokens, progress
        )
    if output_format is Output.json:
        stdout.print(json.dumps(asdict(report)), markup=False, highlight=False)
        return
    print_report(report)


def _pair(base: float | None, trained: float) -> str:
    """``40.00 → 44.00 (+4.00)``; a difference below the printed precision keeps one significant digit."""
    if base is None:
        return fmt(trained)
    diff = trained - base
    shown = "0" if diff == 0 else f"{diff:+.2f}" if abs(diff) >= 0.005 else f"{diff:+.1g}"
    return f"{fmt(base)} → {fmt(trained)} ({shown})"


def print_report(report: TranslationReport) -> None:
    rows = [
        [
            q.direction, q.n, _pair(q.base and q.base.chrf, q.trained.chrf), fmt(q.p_chrf, 3),
            _pair(q.base and q.base.bleu, q.trained.bleu), fmt(q.p_bleu, 3), q.bleu_tokenizer,
            _pair(q.base and q.base.ter, q.trained.ter), fmt(q.p_ter, 3),
            _pair(q.base and q.base.chrf_vs_mt, q.trained.chrf_vs_mt),
        ]
        for q in report.quality
    ]  # fmt: skip
    headers = ["direction", "n", "chrF", "p", "BLEU", "p", "tok", "TER", "p", "chrF vs MT"]
    title = (
        f"run {report.run_id}, step {report.step}, {report.split}: base → trained (Δ), paired randomization p"
    )
    print_table(headers, rows, title=title)
    truncated = ", ".join(f"{n} truncated ({model})" for model, n in report.truncated.items())
    stdout.print(
        f"{truncated}; {report.seconds_per_sentence:.2f} s per sentence", markup=False, highlight=False
    )
