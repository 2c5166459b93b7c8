"""``capo-lab benchmark``: a run's adapter (and the base) on M-IFEval, XLSum or multilingual MT-Bench."""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import asdict
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console

from capo_lab.benchmarks import benchmark_metrics, get_benchmark, queue_benchmark
from capo_lab.cli.common import fmt, open_database, print_table, stderr, stdout, user_errors
from capo_lab.cli.progress import CountBar, Poller, QuietOption, shows_progress
from capo_lab.database import Database
from capo_lab.errors import LabError
from capo_lab.settings import Settings
from storage.records import BenchmarkRecord, RunStatus


class Output(StrEnum):
    table = "table"
    json = "json"


@user_errors
def benchmark_command(
    run: Annotated[str, typer.Argument(help="Run id")],
    suite: Annotated[str, typer.Option(help="m-ifeval, xlsum or mt-bench")],
    languages: Annotated[str | None, typer.Option(help="Comma-separated, e.g. en,zh (default: all)")] = None,
    limit: Annotated[
        int | None, typer.Option(help="Items per language, a seeded sample (default: all)")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the per-language sample")] = 0,
    base: Annotated[
        bool, typer.Option("--base", help="Also answer with the base model (adapters off)")
    ] = False,
    step: Annotated[str, typer.Option(help="A step with a checkpoint, or last")] = "last",
    max_new_tokens: Annotated[int, typer.Option(help="Longest answer per turn, in tokens")] = 1024,
    temperature: Annotated[
        float | None,
        typer.Option(help="Sampling temperature, 0 = greedy (default: the suite's paper setting)"),
    ] = None,
    queue: Annotated[bool, typer.Option("--queue", help="Put it on the worker's queue instead")] = False,
    output_format: Annotated[Output, typer.Option("--format")] = Output.table,
    quiet: QuietOption = False,
) -> None:
    """Answer the suite's items at the paper's decoding (MT-Bench and XLSum sampled at 0.7, M-IFEval
    greedy), store them per item, score them per language; the judged
    parts need CAPO_LAB_JUDGE_URL and CAPO_LAB_JUDGE_MODEL (without them they are skipped). On a
    terminal a bar counts the answers, with an ETA (--quiet: none)."""
    codes = [c.strip() for c in languages.split(",") if c.strip()] if languages else None
    db = open_database()
    enqueue = _enqueue_benchmark if queue else (lambda _id: None)
    job = queue_benchmark(
        db, run, enqueue, suite, codes, limit, seed, base, step, max_new_tokens, temperature=temperature
    )
    _say_estimate(job)
    if queue:
        stdout.print(f"queued benchmark {job.id}", markup=False, highlight=False)
        return
    # bound to the real stdout: the job's own prints are sent to stderr while it runs
    job = _run_here(db, job, Console(file=sys.stdout) if shows_progress(quiet) else None)
    metrics = benchmark_metrics(db, job.id)
    if output_format is Output.json:
        stdout.print(json.dumps({"benchmark": asdict(job), "metrics": metrics}, default=str), markup=False)
        return
    print_scores(job, metrics)


def _enqueue_benchmark(benchmark_id: int) -> None:
    from worker.tasks import enqueue_benchmark

    enqueue_benchmark(benchmark_id)


def _say_estimate(job: BenchmarkRecord) -> None:
    if job.judge_requests:
        stderr.print(f"the judge will get up to {job.judge_requests} requests", markup=False, highlight=False)


def _run_here(db: Database, job: BenchmarkRecord, console: Console | None) -> BenchmarkRecord:
    """The job in this process, in the one lifecycle, its answers counted on ``console``'s bar (None:
    no bar); its error as one line when it does not succeed."""
    from worker.runtime import quiet_libraries

    quiet_libraries()  # no loading bars under the progress bar; before bitsandbytes loads
    from worker.benchmark import run_benchmark  # loads the model: imports torch, so only here

    def answered() -> tuple[int, int | None]:
        found = get_benchmark(db, job.id)
        return found.done, found.total

    with CountBar("answers", console) as bar, Poller(answered, bar):
        with contextlib.redirect_stdout(sys.stderr):  # libraries' chatter (lm-eval's nltk) off the report
            status = run_benchmark(db, Settings(), job.id)
    done = get_benchmark(db, job.id)
    if status != RunStatus.SUCCEEDED:
        raise LabError(f"benchmark {job.id} {done.status}: {done.error or status}")
    return done


def score_table(suite: str, metrics: dict[str, float]) -> tuple[list[str], list[list[str]]]:
    """A row per metric (the base's after the adapter's), a column per language, then ``all``."""
    prefix = f"benchmark/{suite}/"
    cells: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        name, _, language = key[len(prefix) :].partition("/")
        cells.setdefault(name, {})[language or "all"] = value
    languages = sorted({lang for row in cells.values() for lang in row} - {"all"})
    languages += ["all"] if any("all" in row for row in cells.values()) else []
    names = sorted(cells, key=lambda n: (n.removeprefix("base_"), n.startswith("base_")))
    return ["metric", *languages], [[n, *(fmt(cells[n].get(lang), 3) for lang in languages)] for n in names]


def print_scores(job: BenchmarkRecord, metrics: dict[str, float]) -> None:
    headers, rows = score_table(job.suite, metrics)
    title = f"benchmark {job.id}: run {job.run_id}, step {job.evaluated_step}, {job.suite}"
    print_table(headers, rows, title=title)
    if job.note:
        stdout.print(f"note: {job.note}", markup=False, highlight=False)
