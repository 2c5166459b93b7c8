"""The paper's downstream benchmarks as jobs, the web side: queue one, cancel it, read what the worker
stored.

The worker (``worker.benchmark``) loads the run's base model and its adapter at one step once,
answers each item (every user turn; by the adapter, and with ``base`` also the base model), stores
the answers per item with the exact settings, and ``capo_lab.benchmark_scoring.store_and_score``
scores them: per-item scores with their detail, and the run's metrics at the evaluated step,
``benchmark/{suite}/{metric}[/{language}]`` (the base model's as ``benchmark/{suite}/base_{metric}…``).
Each suite decodes at the paper's settings unless told otherwise
(``capo.benchmarks.suites.PAPER_SETTINGS``: MT-Bench and XLSum sampled at temperature 0.7, M-IFEval
greedy; at most 1024 new tokens), with a seed per answer derived from the job's seed. Nothing here
loads a model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from capo.benchmarks import suites
from capo.benchmarks.items import check_languages, check_suite
from capo_lab.benchmark_sources import load_benchmark
from capo_lab.database import Database
from capo_lab.errors import LabError
from capo_lab.judge import JudgeSettings, planned_requests
from capo_lab.lifecycle import cancel_job, enqueue_job
from capo_lab.runs import get_run, run_config
from capo_lab.settings import Settings
from capo_lab.translations import adapter_at
from storage import queries, writes
from storage.records import BenchmarkRecord, JobKind

ARMS = ("adapter", "base")
TEMPERATURE = 0.0  # greedy; each suite's own default is suites.PAPER_SETTINGS[suite].temperature
MAX_TEMPERATURE = 2.0  # above it a sample is close to uniform over 262k tokens: surely a typo


def arms(base: bool) -> tuple[str, ...]:
    return ARMS if base else ARMS[:1]


def queue_benchmark(
    db: Database,
    run_id: int | str,
    enqueue: Callable[[int], None],
    suite: str,
    languages: Sequence[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
    base: bool = False,
    step: int | str = "last",
    max_new_tokens: int = 1024,
    settings: Settings | None = None,
    temperature: float | None = None,
) -> BenchmarkRecord:
    """Check everything (suite, languages, limit, the fetched files, the step's adapter), record the job
    with the judge's estimated requests, and queue it; one line for the first problem found.
    ``temperature`` None is the suite's paper setting (``suites.PAPER_SETTINGS``); 0 is greedy."""
    run = get_run(db, run_id)
    codes = check_languages(check_suite(suite), languages)
    if limit is not None and limit < 1:
        raise LabError(f"--limit must be at least 1, not {limit}")
    if max_new_tokens < 1:
        raise LabError(f"--max-new-tokens must be at least 1, not {max_new_tokens}")
    temperature = check_temperature(suite, temperature)
    adapter_at(db, run.id, step)
    items = load_benchmark(settings or Settings(), suite, codes, limit, seed)
    request = {
        "step": str(step), "suite": suite, "languages": list(codes), "limit": limit, "seed": seed,
        "base": base, "max_new_tokens": max_new_tokens, "temperature": temperature,
        "template": run_config(run).data.chat_template,
        "judge_requests": judge_requests(suite, len(items), base, JudgeSettings()),
    }  # fmt: skip
    with db.write() as session:
        benchmark_id = writes.add_benchmark(session, run.id, request)
        writes.update_benchmark(session, benchmark_id, total=len(items))
    enqueue_job(db, JobKind.BENCHMARK, benchmark_id, enqueue)
    return get_benchmark(db, benchmark_id)


def judge_requests(suite: str, n_items: int, base: bool, judge: JudgeSettings) -> int:
    """The judge's requests for a job of ``n_items`` at most (``capo_lab.judge.planned_requests``: an upper
    bound, as replies already cached are not asked again); 0 without a judge configured."""
    return planned_requests(suite, n_items, len(arms(base))) if judge.configured else 0


def check_temperature(suite: str, temperature: float | None) -> float:
    """The job's temperature: the suite's paper setting when None; one line when out of [0, 2]."""
    if temperature is None:
        return suites.PAPER_SETTINGS[suite].temperature
    if not 0.0 <= temperature <= MAX_TEMPERATURE:  # also refuses NaN
        raise LabError(f"--temperature must be between 0 (greedy) and {MAX_TEMPERATURE}, not {temperature}")
    return float(temperature)


def get_benchmark(db: Database, benchmark_id: int | str) -> BenchmarkRecord:
    """A benchmark job by id; ``LabError`` (one line) when there is none."""
    if not str(benchmark_id).isdigit():
        raise LabError(f"benchmark ids are numbers, got {benchmark_id!r}")
    with db.read() as session:
        job = queries.get_benchmark(session, int(benchmark_id))
    if job is None:
        raise LabError(f"no benchmark {benchmark_id}")
    return job


def benchmarks(db: Database, run_id: int | str) -> list[BenchmarkRecord]:
    """A run's benchmark jobs, newest first."""
    run = get_run(db, run_id)
    with db.read() as session:
        return queries.benchmarks(session, run.id)


def cancel_benchmark(db: Database, benchmark_id: int | str) -> str:
    """Cancel a queued benchmark now, or ask a running one to stop after its current item."""
    job = get_benchmark(db, benchmark_id)
    done = cancel_job(db, JobKind.BENCHMARK, job.id, "after its current item")
    if done is None:
        status = get_benchmark(db, job.id).status
        raise LabError(f"benchmark {job.id} is {status}; only queued or running benchmarks can be cancelled")
    return done


@dataclass(frozen=True)
class ItemView:
    """One item of a job as the UI inspects it: each arm's prompts and answers per turn, and each
    (arm, metric) score with its detail (checks passed; the judge's verdicts in both orders)."""

    language: str
    item_id: str
    prompts: dict[str, tuple[str, ...]]
    answers: dict[str, tuple[str, ...]]
    scores: dict[str, dict[str, object]]  # "arm/metric" → {"value": …, "detail": {…}}


def benchmark_items(db: Database, benchmark_id: int | str) -> list[ItemView]:
    """Every item of a job with its answers and scores, by language and item id."""
    job = get_benchmark(db, benchmark_id)
    with db.read() as session:
        generations = queries.benchmark_generations(session, job.id)
        scores = queries.benchmark_scores(session, job.id)
    views: dict[suites.Key, ItemView] = {}
    for g in generations:
        view = views.setdefault((g.language, g.item_id), ItemView(g.language, g.item_id, {}, {}, {}))
        view.prompts[g.arm] = (*view.prompts.get(g.arm, ()), g.prompt)
        view.answers[g.arm] = (*view.answers.get(g.arm, ()), g.output)
    for s in scores:
        view = views.setdefault((s.language, s.item_id), ItemView(s.language, s.item_id, {}, {}, {}))
        view.scores[f"{s.arm}/{s.metric}"] = {"value": s.value, "detail": s.detail}
    return [views[k] for k in sorted(views)]


def benchmark_metrics(db: Database, benchmark_id: int | str) -> dict[str, float]:
    """The run's ``benchmark/{suite}/…`` metrics at the step the job evaluated (empty before it ends)."""
    job = get_benchmark(db, benchmark_id)
    if job.evaluated_step is None:
        return {}
    prefix = f"benchmark/{job.suite}/"
    with db.read() as session:
        rows = queries.metrics(session, job.run_id, job.evaluated_step - 1)
    return {m.key: m.value for m in rows if m.step == job.evaluated_step and m.key.startswith(prefix)}


# Per-item scores compared between arms, with the scale each lies on (``capo.benchmarks.paired``).
PAIRED_METRICS = {
    "m-ifeval": (("prompt_strict", 0.0, 1.0), ("prompt_loose", 0.0, 1.0)),
    "xlsum": (("rouge_l", 0.0, 1.0),),
    "mt-bench": (("rating", 1.0, 10.0),),
}


@dataclass(frozen=True)
class BenchmarkComparison:
    """Two arms on the same items: each metric per language and overall (``ArmComparison``), and the
    judge's verdicts of the adapter against the base (``WinComparison``; a job with the base only)."""

    arms: tuple[str, str]
    scores: tuple  # capo.benchmarks.paired.ArmComparison
    verdicts: tuple  # capo.benchmarks.paired.WinComparison


def _scores(db: Database, benchmark_id: int, arm: str, metric: str) -> dict[suites.Key, list[float]]:
    with db.read() as session:
        rows = queries.benchmark_scores(session, benchmark_id)
    return {
        (r.language, r.item_id): [r.value]
        for r in rows
        if r.arm == arm and r.metric == metric and r.value is not None
    }


def _outcomes(db: Database, benchmark_id: int) -> dict[suites.Key, str]:
    with db.read() as session:
        rows = queries.benchmark_scores(session, benchmark_id)
    return {(r.language, r.item_id): r.detail["outcome"] for r in rows if r.metric == "judge_vs_base"}


def compare_benchmark(
    db: Database, benchmark_id: int | str, other_id: int | str | None = None
) -> BenchmarkComparison:
    """This job's adapter against its base (``other_id`` None) or against another job's adapter on the
    same suite (another run, another step), item by item."""
    from capo.benchmarks.paired import compare_scores, compare_verdicts

    job = get_benchmark(db, benchmark_id)
    other = get_benchmark(db, other_id) if other_id is not None else job
    if other.suite != job.suite:
        raise LabError(f"benchmark {job.id} is {job.suite} and benchmark {other.id} is {other.suite}")
    arm_b = "base" if other_id is None else "adapter"
    names = (f"run {job.run_id}", f"run {other.run_id} {arm_b}")
    rows = [
        row
        for metric, low, high in PAIRED_METRICS[job.suite]
        for row in compare_scores(
            job.suite,
            metric,
            names,
            _scores(db, job.id, "adapter", metric),
            _scores(db, other.id, arm_b, metric),
            low,
            high,
        )  # fmt: skip
    ]
    verdicts = compare_verdicts(_outcomes(db, job.id)) if other_id is None else []
    return BenchmarkComparison(names, tuple(rows), tuple(verdicts))


# The study report's section per suite (``capo.benchmarks.study``): each finished run's newest succeeded
# job of the suite made with the same decoding as the newest one of all (temperature, token limit, seed,
# template); jobs made otherwise are named and left out, so every arm answered the same way.
Decoding = tuple[float, int, int, str]


@dataclass(frozen=True)
class StudyRun:
    run_id: int
    name: str
    arm: str
    seed: int


def _decoding(job: BenchmarkRecord) -> Decoding:
    return (job.temperature, job.max_new_tokens, job.seed, job.template)


def _describe(run: StudyRun, job: BenchmarkRecord) -> str:
    return (
        f"{run.name}: benchmark {job.id}, step {job.evaluated_step}, {job.done} items per arm, "
        f"temperature {job.temperature:g}, at most {job.max_new_tokens} new tokens, seed {job.seed}"
    )


def _suite_jobs(db: Database, suite: str, runs: Sequence[StudyRun]):
    """(run → its job, notes on runs left out) for one suite; empty when no run has a finished job."""
    with db.read() as session:
        done = {
            r.run_id: [j for j in queries.benchmarks(session, r.run_id) if j.suite == suite] for r in runs
        }
    done = {run_id: [j for j in jobs if j.status == "succeeded"] for run_id, jobs in done.items()}
    newest = max((j for jobs in done.values() for j in jobs), key=lambda j: j.id, default=None)
    if newest is None:
        return {}, []
    chosen, notes = {}, []
    for run in runs:
        same = [j for j in done[run.run_id] if _decoding(j) == _decoding(newest)]
        if same:
            chosen[run.run_id] = same[0]  # newest first
        elif done[run.run_id]:
            notes.append(
                f"{run.name}: left out, its {suite} jobs decoded otherwise than benchmark {newest.id}"
            )
    return chosen, notes


def _item_results(db: Database, job: BenchmarkRecord, arm: str, metrics) -> tuple[dict, dict]:
    """(metric → item → score, item → (judge outcome vs the base, inconsistent)) of one arm of a job."""
    with db.read() as session:
        rows = [r for r in queries.benchmark_scores(session, job.id) if r.arm == arm]
    names = {name for name, _, _ in metrics}
    scores: dict[str, dict[suites.Key, float]] = {}
    for r in rows:
        if r.metric in names and r.value is not None:
            scores.setdefault(r.metric, {})[(r.language, r.item_id)] = r.value
    verdicts = {
        (r.language, r.item_id): (r.detail.get("outcome", "unjudged"), bool(r.detail.get("inconsistent")))
        for r in rows
        if r.metric == "judge_vs_base"
    }
    return scores, verdicts


def study_benchmark_sections(db: Database, runs: Sequence[StudyRun]) -> list:
    """A ``capo.benchmarks.study.SuiteSection`` per suite with finished jobs on the study's runs."""
    from capo.benchmarks.items import SUITES
    from capo.benchmarks.study import BASE, ArmItems, suite_section

    sections = []
    for suite in SUITES:
        chosen, notes = _suite_jobs(db, suite, runs)
        if not chosen:
            continue
        metrics = PAIRED_METRICS[suite]
        arm_items = []
        for run in (r for r in runs if r.run_id in chosen):
            scores, verdicts = _item_results(db, chosen[run.run_id], "adapter", metrics)
            arm_items.append(ArmItems(run.arm, run.seed, scores, verdicts))
        with_base = [chosen[r.run_id] for r in runs if r.run_id in chosen and chosen[r.run_id].base]
        if with_base:  # the same base weights, items and seeds under every run: one base arm
            arm_items.append(ArmItems(BASE, None, _item_results(db, with_base[0], "base", metrics)[0]))
            notes.append(f"the base arm is benchmark {with_base[0].id}'s base answers")
        jobs = [_describe(r, chosen[r.run_id]) for r in runs if r.run_id in chosen]
        sections.append(suite_section(suite, arm_items, metrics, jobs, notes))
    return sections
