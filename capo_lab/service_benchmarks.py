"""The lab service's downstream benchmarks (M-IFEval, XLSum, MT-Bench): plan, queue, cancel and read.

``LabService`` inherits ``BenchmarkMethods``; each method takes the plain values a front end has (a
dropdown's id, a number box's float, a list or a comma-separated string of languages), checks them once
and answers plain records, or one ``LabError`` line. The worker answers and scores
(``worker.benchmark``); nothing here loads a model.

The judge's request count before a job starts is ``capo_lab.benchmarks.judge_requests`` of the items
``load_benchmark`` selects, the same count ``queue_benchmark`` stores as the job's ``judge_requests``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from capo.benchmarks.items import check_languages, check_suite
from capo_lab import benchmarks as jobs
from capo_lab.benchmark_sources import load_benchmark
from capo_lab.benchmarks import BenchmarkComparison, ItemView
from capo_lab.database import Database
from capo_lab.errors import LabError
from capo_lab.judge import NO_JUDGE, JudgeSettings
from capo_lab.runs import list_runs
from capo_lab.settings import Settings
from storage.records import BenchmarkRecord, RunStatus

READ_ONLY = "this lab service has no job queue: it can only read"
RULE_CHECKED = "M-IFEval is checked by rules: the judge gets no requests"
XLSUM_NEEDS_BASE = "the judge compares the adapter's summaries with the base's: tick base to have them judged"
NO_JUDGE_XLSUM = f"{NO_JUDGE}; ROUGE-L still runs"
NO_JUDGE_MT_BENCH = f"{NO_JUDGE}; MT-Bench is scored by the judge only, so only the answers are stored"


@dataclass(frozen=True)
class BenchmarkPlan:
    """What a job with these choices would do before it is queued: the items per language it reads, the
    arms that answer, the judge's requests at most (0 without a judge), and one line saying so."""

    suite: str
    languages: tuple[str, ...]
    items: int
    arms: tuple[str, ...]
    judge_requests: int
    judge_configured: bool
    max_requests: int
    note: str
    temperature: float = 0.0  # the suite's paper setting (0: greedy)


def whole_number(what: str, value: int | float | str, least: int) -> int:
    """``value`` (an int, a float such as a JSON number or a number box's, or its digits) as an int in
    [least, 2⁶³ − 1], or a LabError naming ``what``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LabError(f"{what} must be a whole number, got {value!r}") from None
    if not number.is_integer() or not least <= number <= 2**63 - 1:
        raise LabError(f"{what} must be a whole number from {least} to 2^63 - 1, got {value!r}")
    return int(number)


def job_id(value: int | float | str) -> int:
    return whole_number("benchmark id", value, 1)


def language_codes(languages: Sequence[str] | str | None) -> tuple[str, ...] | None:
    """A list of codes or one comma-separated string; None (or nothing) means all of the suite's."""
    if isinstance(languages, str):
        languages = languages.replace(",", " ").split()
    codes = tuple(code.strip() for code in languages or () if code.strip())
    return codes or None


def item_limit(limit: int | float | str | None) -> int | None:
    """Items per language: None or an empty box is all of them; else a whole number of at least 1."""
    if limit is None or (isinstance(limit, str) and not limit.strip()):
        return None
    return whole_number("the item limit", limit, 1)


def plan_note(suite: str, base: bool, settings: JudgeSettings, requests: int) -> str:
    """One line on the judge's part in a job of ``suite``."""
    if suite == "m-ifeval":
        return RULE_CHECKED
    if not settings.configured:
        return NO_JUDGE_XLSUM if suite == "xlsum" else NO_JUDGE_MT_BENCH
    if suite == "xlsum" and not base:
        return XLSUM_NEEDS_BASE
    line = f"the judge ({settings.model} at {settings.url}) gets up to {requests} requests"
    if requests > settings.max_requests:
        line += f", more than its budget of {settings.max_requests} (the rest is left unjudged)"
    return line + "; replies already cached are not asked again"


def benchmark_plan(
    settings: Settings,
    suite: str,
    languages: Sequence[str] | str | None,
    limit: int | float | str | None,
    base: bool,
    seed: int = 0,
) -> BenchmarkPlan:
    """The plan of a job (``BenchmarkPlan``); one line for an unknown suite or language, a bad limit or a
    suite not fetched yet."""
    codes = check_languages(check_suite(suite), language_codes(languages))
    items = load_benchmark(settings, suite, codes, item_limit(limit), seed)
    judge = JudgeSettings()
    requests = jobs.judge_requests(suite, len(items), bool(base), judge)
    note = plan_note(suite, bool(base), judge, requests)
    temperature = jobs.check_temperature(suite, None)
    arms = jobs.arms(bool(base))
    return BenchmarkPlan(
        suite, codes, len(items), arms, requests, judge.configured, judge.max_requests, note, temperature
    )


class BenchmarkMethods:
    """The benchmark half of ``LabService`` (which provides ``db``, ``settings`` and
    ``_enqueue_benchmark``: the worker's queue, or None for a service that only reads)."""

    db: Database
    settings: Settings
    _enqueue_benchmark: Callable[[int], None] | None

    def benchmark_plan(
        self,
        suite: str,
        languages: Sequence[str] | str | None = None,
        limit: int | float | str | None = None,
        base: bool = False,
    ) -> BenchmarkPlan:
        """Before queueing: the items, the arms and the judge's requests at most, with one line on it."""
        return benchmark_plan(self.settings, suite, languages, limit, base)

    def run_benchmark(
        self,
        run_id: int | str,
        suite: str,
        languages: Sequence[str] | str | None = None,
        limit: int | float | str | None = None,
        base: bool = False,
        step: str = "last",
        temperature: float | None = None,
    ) -> int:
        """Queue a benchmark of the run's adapter at ``step`` (and with ``base`` the base model) on the
        worker, decoded at ``temperature`` (None: the suite's paper setting); returns the job's id. A
        read-only service refuses in one line."""
        if self._enqueue_benchmark is None:
            raise LabError(READ_ONLY)
        run = whole_number("run id", run_id, 1)
        codes = check_languages(check_suite(suite), language_codes(languages))
        job = jobs.queue_benchmark(
            self.db, run, self._enqueue_benchmark, suite, codes, item_limit(limit), base=bool(base),
            step=step, settings=self.settings, temperature=temperature,
        )  # fmt: skip
        return job.id

    def cancel_benchmark(self, benchmark_id: int | str) -> str:
        """Cancel a queued benchmark, or ask a running one to stop after its current item."""
        return jobs.cancel_benchmark(self.db, job_id(benchmark_id))

    def benchmarks(self, run_id: int | str) -> list[BenchmarkRecord]:
        """The run's benchmark jobs, newest first."""
        return jobs.benchmarks(self.db, whole_number("run id", run_id, 1))

    def benchmark(self, benchmark_id: int | str) -> BenchmarkRecord:
        return jobs.get_benchmark(self.db, job_id(benchmark_id))

    def benchmark_items(self, benchmark_id: int | str) -> list[ItemView]:
        """Each item of a job: prompts, answers per arm, scores with their detail (checks, verdicts)."""
        return jobs.benchmark_items(self.db, job_id(benchmark_id))

    def benchmark_metrics(self, benchmark_id: int | str) -> dict[str, float]:
        """The job's scores per language and overall (the base's as ``…/base_…``); empty before it ends."""
        return jobs.benchmark_metrics(self.db, job_id(benchmark_id))

    def compare_benchmark(
        self, benchmark_id: int | str, other_id: int | str | None = None
    ) -> BenchmarkComparison:
        """The job's adapter against its base (``other_id`` None) or another job's adapter on the same
        suite, item by item, per language and overall, with intervals and paired tests."""
        other = None if other_id is None else job_id(other_id)
        return jobs.compare_benchmark(self.db, job_id(benchmark_id), other)

    def comparable_benchmarks(self, benchmark_id: int | str) -> list[BenchmarkRecord]:
        """Every other finished job of the same suite, on any run, newest first (what it compares to)."""
        job = self.benchmark(benchmark_id)
        found = [
            other
            for run in list_runs(self.db)
            for other in jobs.benchmarks(self.db, run.id)
            if other.suite == job.suite and other.id != job.id and other.status == RunStatus.SUCCEEDED
        ]
        return sorted(found, key=lambda other: other.id, reverse=True)
