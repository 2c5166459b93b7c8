"""``capo-lab evaluate``: translate a split with a run's adapter (and the base), score with sacrebleu
(and COMET, from a local checkpoint)."""

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
from capo_lab.translations import TranslationReport, scoring


@user_errors
def evaluate_command(
    run: Annotated[str, typer.Argument(help="Run id")],
    step: Annotated[str, typer.Option(help="A step with a checkpoint, or last")] = "last",
    split: Annotated[HeldOutSplit, typer.Option(help="eval or validation")] = HeldOutSplit.eval,
    base: Annotated[
        bool, typer.Option("--base", help="Also translate with the base model (adapters off)")
    ] = False,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Longest translation, in tokens")] = 160,
    metrics: Annotated[
        str, typer.Option(help="Comma-separated, of chrf, bleu, ter, comet (comet needs a checkpoint)")
    ] = "chrf,bleu,ter",
    comet_checkpoint: Annotated[
        str | None,
        typer.Option(help="A COMET checkpoint folder (default: CAPO_LAB_COMET_CHECKPOINT)"),
    ] = None,
    output_format: Annotated[Output, typer.Option("--format")] = Output.table,
    quiet: QuietOption = False,
) -> None:
    """Greedy translations of the split's sources; chrF, BLEU, TER (and COMET) against the post-edits,
    per direction.

    On a terminal a bar counts the sentences translated, with an ETA (--quiet: none)."""
    chosen = scoring(metrics, comet_checkpoint)  # checked before anything loads

    from worker.runtime import quiet_libraries

    quiet_libraries()  # no loading bars under the progress bar; before bitsandbytes loads
    from worker.evaluate import evaluate_translations  # loads the model: imports torch, so only here

    with CountBar("sentences", stdout if shows_progress(quiet) else None) as progress:
        report = evaluate_translations(
            open_database(), Settings(), run, step, split.value, base, max_new_tokens, progress,
            scoring=chosen,
        )  # fmt: skip
    if output_format is Output.json:
        stdout.print(json.dumps(asdict(report)), markup=False, highlight=False)
        return
    print_report(report)


def _pair(base: float | None, trained: float | None, digits: int = 2) -> str:
    """``40.00 → 44.00 (+4.00)``; a difference below the printed precision keeps one significant digit."""
    if base is None or trained is None:
        return fmt(trained, digits)
    diff, least = trained - base, 0.5 * 10**-digits
    shown = "0" if diff == 0 else f"{diff:+.{digits}f}" if abs(diff) >= least else f"{diff:+.1g}"
    return f"{fmt(base, digits)} → {fmt(trained, digits)} ({shown})"


# metric → (its columns' headers, and their cells for one direction's quality)
COLUMNS = {
    "chrf": (["chrF", "p"], lambda q: [_pair(q.base and q.base.chrf, q.trained.chrf), fmt(q.p_chrf, 3)]),
    "bleu": (
        ["BLEU", "p", "tok"],
        lambda q: [_pair(q.base and q.base.bleu, q.trained.bleu), fmt(q.p_bleu, 3), q.bleu_tokenizer],
    ),
    "ter": (["TER", "p"], lambda q: [_pair(q.base and q.base.ter, q.trained.ter), fmt(q.p_ter, 3)]),
    "comet": (
        ["COMET", "p"],
        lambda q: [_pair(q.base and q.base.comet, q.trained.comet, 3), fmt(q.p_comet, 3)],
    ),
    "chrf_vs_mt": (["chrF vs MT"], lambda q: [_pair(q.base and q.base.chrf_vs_mt, q.trained.chrf_vs_mt)]),
}


def print_report(report: TranslationReport) -> None:
    shown = [m for m in COLUMNS if getattr(report.quality[0].trained, m) is not None]
    headers = ["direction", "n"] + [h for m in shown for h in COLUMNS[m][0]]
    rows = [[q.direction, q.n] + [cell for m in shown for cell in COLUMNS[m][1](q)] for q in report.quality]
    title = f"run {report.run_id}, step {report.step}, {report.split}"
    if report.quality[0].base is not None:  # only with --base is there a comparison to test
        title += ": base → trained (Δ), paired randomization p"
    print_table(headers, rows, title=title)
    truncated = ", ".join(f"{n} truncated ({model})" for model, n in report.truncated.items())
    stdout.print(
        f"{truncated}; {report.seconds_per_sentence:.2f} s per sentence", markup=False, highlight=False
    )
