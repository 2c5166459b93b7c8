"""Scoring a benchmark job's stored answers: per item, per language and overall, then stored.

``store_and_score`` reads the answers the worker stored (``benchmark_generations``), scores them
with ``capo.benchmarks.suites`` and stores each item's scores with their detail, and the run's
metrics at the evaluated step (``benchmark/{suite}/…``; the base model's as ``…/base_{metric}…``):

- m-ifeval: per item ``prompt_strict``/``prompt_loose`` (1, 0, or None when an instruction is not
  checked here), detail: each instruction's verdicts; accuracies per language;
- xlsum: per item ``rouge_l``; with a judge and ``base``, ``judge_vs_base`` on the adapter's row (1 a
  win, 0.5 a tie, 0 a loss, None unjudged), detail: the verdicts in both orders;
- mt-bench: with a judge, per item ``rating`` (the turns' mean), detail: each turn's rating.

Without a judge the judged parts are skipped with ``capo_lab.judge.NO_JUDGE`` as the job's note; a
judge that fails leaves the rest unjudged with its one line, and what it judged stays cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from capo.benchmarks import suites
from capo.benchmarks.items import BenchmarkItem
from capo_lab.database import Database
from capo_lab.judge import NO_JUDGE, Comparison, Judge, StoredCache, grade_items, judge_pairs, make_judge
from storage import queries, writes
from storage.records import BenchmarkRecord

Answers = dict[str, dict[suites.Key, list[str]]]  # arm → (language, item id) → one answer per turn
OUTCOME_VALUES = {"a": 1.0, "tie": 0.5, "b": 0.0, "unjudged": None}


@dataclass(frozen=True)
class Scored:
    """A suite's per-item score rows (``BenchmarkScore`` fields), its metrics, and notes (one line each)."""

    rows: tuple[dict, ...]
    metrics: dict[str, float]
    notes: tuple[str, ...] = ()


def stored_answers(db: Database, job: BenchmarkRecord) -> Answers:
    with db.read() as session:
        generations = queries.benchmark_generations(session, job.id)
    answers: Answers = {}
    for g in generations:  # ordered by turn within an item
        answers.setdefault(g.arm, {}).setdefault((g.language, g.item_id), []).append(g.output)
    return answers


def as_base(metrics: dict[str, float], suite: str) -> dict[str, float]:
    """``benchmark/{suite}/x…`` → ``benchmark/{suite}/base_x…``."""
    prefix = f"benchmark/{suite}/"
    return {prefix + "base_" + k[len(prefix) :]: v for k, v in metrics.items()}


def _arm_metrics(suite: str, arm: str, metrics: dict[str, float]) -> dict[str, float]:
    return as_base(metrics, suite) if arm == "base" else metrics


def _row(key: suites.Key, arm: str, metric: str, value: float | None, detail: dict) -> dict:
    language, item_id = key
    return {"language": language, "item_id": item_id, "arm": arm, "metric": metric, "value": value,
            "detail": detail}  # fmt: skip


def _number(value: bool | None) -> float | None:
    return None if value is None else float(value)


def score_mifeval(items: Sequence[BenchmarkItem], answers: Answers) -> Scored:
    rows, metrics = [], {}
    for arm, by_item in answers.items():
        results, summary = suites.score_mifeval(items, {k: v[0] for k, v in by_item.items()})
        for r in results:
            detail = {"instructions": [asdict(i) for i in r.instructions]}
            rows.append(_row((r.language, r.item_id), arm, "prompt_strict", _number(r.strict), detail))
            rows.append(_row((r.language, r.item_id), arm, "prompt_loose", _number(r.loose), detail))
        metrics |= _arm_metrics("m-ifeval", arm, suites.mifeval_metrics(summary))
    return Scored(tuple(rows), metrics)


def score_xlsum(items: Sequence[BenchmarkItem], answers: Answers, judge: Judge | None) -> Scored:
    rows, metrics = [], {}
    for arm, by_item in answers.items():
        rouge = suites.rouge_scores(items, {k: v[0] for k, v in by_item.items()})
        rows += [_row(k, arm, "rouge_l", v, {}) for k, v in rouge.items()]
        metrics |= _arm_metrics("xlsum", arm, suites.rouge_metrics(rouge))
    if judge is None:
        return Scored(tuple(rows), metrics, (NO_JUDGE,))
    if "base" not in answers:
        return Scored(tuple(rows), metrics, ("the judge compares the adapter with the base: add --base",))
    judged = _judge_xlsum(items, answers, judge)
    return Scored(tuple(rows) + judged.rows, metrics | judged.metrics, judged.notes)


def _judge_xlsum(items: Sequence[BenchmarkItem], answers: Answers, judge: Judge) -> Scored:
    """The adapter (a) against the base (b), Fig. 11 in both orders."""
    mine, base = answers["adapter"], answers["base"]
    asks = [
        Comparison(i.item_id, i.language, *suites.xlsum_comparison_prompts(i, mine[k][0], base[k][0]))
        for i in items
        if (k := suites.key(i)) in mine and k in base
    ]
    run = judge_pairs(judge, asks)
    rows = tuple(
        _row((v.language, v.item_id), "adapter", "judge_vs_base", OUTCOME_VALUES[v.outcome], asdict(v))
        for v in run.verdicts
    )
    outcomes = {(v.language, v.item_id): v.outcome for v in run.verdicts}
    inconsistent = {(v.language, v.item_id): v.inconsistent for v in run.verdicts}
    return Scored(rows, suites.win_metrics(outcomes, inconsistent, "base"), (run.note,) if run.note else ())


def score_mt_bench(items: Sequence[BenchmarkItem], answers: Answers, judge: Judge | None) -> Scored:
    if judge is None:
        return Scored((), {}, (NO_JUDGE,))
    rows, metrics, notes = [], {}, []
    for arm, by_item in answers.items():
        asks = [
            (i.item_id, i.language, suites.mt_bench_prompts(i, by_item[suites.key(i)]))
            for i in items
            if suites.key(i) in by_item
        ]
        run = grade_items(judge, asks)
        for g in run.grades:
            rows.append(_row((g.language, g.item_id), arm, "rating", g.score, {"ratings": list(g.ratings),
                                                                              "note": g.note}))  # fmt: skip
        ratings = {(g.language, g.item_id): g.ratings for g in run.grades}
        metrics |= _arm_metrics("mt-bench", arm, suites.mt_bench_metrics(ratings))
        notes += [run.note] if run.note and run.note not in notes else []
    return Scored(tuple(rows), metrics, tuple(notes))


def score(db: Database, job: BenchmarkRecord, items: Sequence[BenchmarkItem], judge: Judge | None) -> Scored:
    answers = stored_answers(db, job)
    if job.suite == "m-ifeval":
        return score_mifeval(items, answers)
    if job.suite == "xlsum":
        return score_xlsum(items, answers, judge)
    return score_mt_bench(items, answers, judge)


def truncation_metrics(db: Database, job: BenchmarkRecord) -> dict[str, float]:
    """``benchmark/{suite}/truncated`` (and ``base_truncated``): answers that hit max_new_tokens."""
    with db.read() as session:
        generations = queries.benchmark_generations(session, job.id)
    counts = {
        arm: float(sum(g.truncated for g in generations if g.arm == arm))
        for arm in {g.arm for g in generations}
    }
    prefix = f"benchmark/{job.suite}/"
    return {prefix + ("base_" if arm == "base" else "") + "truncated": n for arm, n in counts.items()}


def store_and_score(
    db: Database, job: BenchmarkRecord, step: int, items: Sequence[BenchmarkItem], judge: Judge | None = None
) -> Scored:
    """Score the job's stored answers, store the per-item scores and the run's metrics at ``step``."""
    scored = score(db, job, items, judge)
    metrics = scored.metrics | truncation_metrics(db, job)
    with db.write() as session:
        writes.replace_benchmark_scores(session, job.id, job.run_id, scored.rows)
        writes.replace_metrics(session, job.run_id, step, f"benchmark/{job.suite}/", list(metrics.items()))
    return Scored(scored.rows, metrics, scored.notes)


def stored_judge(db: Database) -> Judge | None:
    """The configured judge with its replies cached in the lab's database; None without one."""
    return make_judge(cache=StoredCache(db))
