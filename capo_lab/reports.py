"""A study's report: every comparison a researcher asks of it, as one typed record.

``study_report`` reads the study's finished runs from storage, picks each run's
step, and hands the pair-level scores to ``capo.analysis``:

- ``best`` picks each run's step by its highest validation accuracy on the endpoint,
  among its trained steps (never step 0), and reports on another split (eval): a
  step chosen on the split it is reported on would flatter it. ``last`` and a number
  choose no step. Each run records the step used and the split it was chosen on.
- The base model is an arm (``base``: the step-0 scores every run starts from).
- The endpoint is one of ``ENDPOINTS``; the primary comparison is ``all`` directions.

Unfinished runs are left out and named in ``missing``. JSON is ``dataclasses.asdict``
of the record; the HTML report (``capo_lab.report_html``) draws the same record.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from sacrebleu.metrics import CHRF

from capo.analysis.compare import (
    ENDPOINTS,
    AccuracyCell,
    ArmScores,
    Comparison,
    RegimeAccuracy,
    RegimeShare,
    ScoredPair,
    ShiftCorrelation,
    accuracy_table,
    arms_of,
    base_arm,
    compare_all,
    directions_of,
    regime_accuracy,
    regime_table,
    shift_correlation,
)
from capo.analysis.stats import MIN_SEEDS_FOR_SEED_VARIANCE, kde
from capo.analysis.sweep import SweepPoint, sweep_point
from capo.data.stats import direction_stats
from capo_lab import translations
from capo_lab.benchmarks import StudyRun, study_benchmark_sections
from capo_lab.database import Database
from capo_lab.datasets import dataset_pairs
from capo_lab.errors import LabError
from capo_lab.studies import get_study
from storage import queries
from storage.records import PairRecord, RunRecord, RunStatus

GRID_POINTS = 200
SELECTION_SPLIT = "validation"


@dataclass(frozen=True)
class ReportRun:
    run_id: int
    name: str
    arm: str
    seed: int
    status: str
    step: int | None
    chosen_on: str | None = None  # the split the step was chosen on (best); None when no choice


@dataclass(frozen=True)
class Density:
    direction: str
    label: str  # "base" or an arm
    grid: list[float]
    values: list[float] | None  # None when undefined (fewer than two distinct values)


@dataclass(frozen=True)
class Curve:
    run: str
    key: str
    steps: list[int]
    values: list[float]


@dataclass(frozen=True)
class AmbiguousPair:
    pair_id: int
    direction: str
    chrf_mt_vs_pe: float
    hter: float | None
    base_delta: float | None
    delta_change: dict[str, float]  # arm → mean over seeds of (Δ trained − Δ base)


@dataclass(frozen=True)
class ReportMethod:
    """The report's method in plain words (the README states the same)."""

    endpoint: str
    primary: str
    unit: str
    interval: str
    test: str
    correction: str
    detectable: str
    selection: str


def report_method(endpoint: str, step: str, split: str) -> ReportMethod:
    selection = (
        f"best: each run's step with the highest {SELECTION_SPLIT} {endpoint} among its trained steps, "
        f"reported on {split}"
        if step == "best"
        else f"{step}: no step chosen on any split"
    )
    return ReportMethod(
        endpoint=f"rewards/{endpoint} (a tie, post-edit = MT, counts as wrong)",
        primary=f"{endpoint} over all directions, each pair of arms",
        unit="the pair: each pair enters once, as the mean of its outcomes over the matched seeds",
        interval="accuracy: Clopper-Pearson on the effective number of pairs; difference: Tango's score "
        f"interval; both 95 %; seed-to-seed variance added with {MIN_SEEDS_FOR_SEED_VARIANCE} or more seeds",
        test="exact two-sided sign-flip test on per-pair seed-mean differences (one seed: exact McNemar)",
        correction="Holm, within the primary family (all directions) and within the per-direction family",
        detectable="smallest difference with 80 % power at alpha 0.05, from n and the observed discordance",
        selection=selection,
    )


@dataclass(frozen=True)
class StudyReport:
    study_id: int
    study: str
    split: str
    step: str
    endpoint: str
    method: ReportMethod
    factors: dict[str, list]
    runs: list[ReportRun]
    missing: list[str]
    arms: list[str]
    directions: list[str]
    accuracy: list[AccuracyCell]
    comparisons: list[Comparison]
    densities: list[Density]
    bleu_mt_vs_pe: dict[str, float]
    shift: list[ShiftCorrelation]
    regimes: list[RegimeShare]
    regime_accuracy: list[RegimeAccuracy]
    sweep: list[SweepPoint]
    loss_curves: list[Curve]
    translations: dict[str, list] = field(default_factory=dict)  # run name → DirectionChrf rows
    ambiguity: list[AmbiguousPair] = field(default_factory=list)
    benchmarks: list = field(default_factory=list)  # capo.benchmarks.study.SuiteSection per suite run


def arm_label(config: dict, factors: dict[str, list]) -> str:
    """The run's setting of every factor but the seed: ``capo``, ``capo, alpha=2``."""
    parts = []
    for key in factors:
        if key == "train.seed":
            continue
        section, _, name = key.partition(".")
        value = config.get(section, {}).get(name)
        if value is not None:
            parts.append(str(value) if key == "objective.name" else f"{name}={value}")
    return ", ".join(parts) or config["objective"]["name"]


def _scored(rows, ties: dict[int, bool]) -> tuple[ScoredPair, ...]:
    return tuple(
        ScoredPair(
            s.pair_id, s.direction, s.logp_chosen, s.logp_rejected, s.ref_logp_chosen, s.ref_logp_rejected,
            s.n_tokens_chosen, s.n_tokens_rejected, ties.get(s.pair_id, False),
        )
        for s in rows
    )  # fmt: skip


def _best_step(session, run: RunRecord, steps: list[int], endpoint: str) -> int | None:
    """The trained step with the highest validation accuracy on ``endpoint`` (earliest on a tie)."""
    key = f"{SELECTION_SPLIT}_rewards/{endpoint}"
    curve = {m.step: m.value for m in queries.metrics(session, run.id) if m.key == key}
    trained = [s for s in steps if s > 0 and s in curve]
    if not trained:
        return None
    return max(trained, key=lambda s: (curve[s], -s))


def _pick_step(session, run: RunRecord, split: str, step: str, endpoint: str) -> int | None:
    """The run's reported step; None when it has no trained step scored on ``split``."""
    steps = queries.score_steps(session, run.id, split)
    if not any(s > 0 for s in steps):
        return None
    if step == "last":
        return steps[-1]
    if step == "best":
        return _best_step(session, run, steps, endpoint)
    if not step.isdigit() or int(step) not in steps or int(step) == 0:
        trained = ", ".join(str(s) for s in steps if s > 0)
        raise LabError(f"run {run.id} has no trained {split} scores at step {step}; it has {trained}")
    return int(step)


def _check_step_choice(step: str, split: str, runs: list[RunRecord]) -> None:
    if step != "best":
        return
    if split == SELECTION_SPLIT:
        raise LabError(
            f"--step best chooses steps on the {SELECTION_SPLIT} split, so it cannot report on it; "
            "report on eval, or use --step last"
        )
    lacking = [r.name for r in runs if SELECTION_SPLIT not in r.config["train"].get("eval_splits", ())]
    if lacking:
        raise LabError(
            f"--step best needs a {SELECTION_SPLIT} split to choose steps on, and "
            f"{', '.join(lacking)} scored none (train.eval_splits); use --step last"
        )


def _arm_scores(session, run: RunRecord, arm: str, split: str, at: int, ties) -> ArmScores:
    objective = dict(run.config["objective"])
    name = objective.pop("name")
    rows = queries.pair_scores(session, run.id, split, at)
    return ArmScores(arm, int(run.config["train"]["seed"]), run.id, at, _scored(rows, ties), name, objective)


def _collect(db: Database, run_ids, factors, split, step, endpoint, ties):
    """(report runs, step-0 scores, scores at the chosen step, run records) of finished runs."""
    report_runs, base, trained, records = [], [], [], []
    with db.read() as session:
        runs = [queries.get_run(session, run_id) for run_id in run_ids]
        _check_step_choice(step, split, [r for r in runs if r.status == RunStatus.SUCCEEDED])
        for run in runs:
            arm, seed = arm_label(run.config, factors), int(run.config["train"]["seed"])
            done = run.status == RunStatus.SUCCEEDED
            at = _pick_step(session, run, split, step, endpoint) if done else None
            chosen_on = SELECTION_SPLIT if step == "best" and at is not None else None
            report_runs.append(ReportRun(run.id, run.name, arm, seed, run.status, at, chosen_on))
            if at is None:
                continue
            records.append(run)
            base.append(_arm_scores(session, run, arm, split, 0, ties))
            trained.append(_arm_scores(session, run, arm, split, at, ties))
    return report_runs, base, trained, records


def _densities(base: list[ArmScores], trained: list[ArmScores]) -> list[Density]:
    """Δr densities per direction: the base model (step 0; every run starts from it) and each arm."""
    deltas: dict[tuple[str, str], list[float]] = defaultdict(list)
    for p in base[0].pairs:
        deltas[(p.direction, "base")].append(p.delta)
    for r in trained:
        for p in r.pairs:
            deltas[(p.direction, r.arm)].append(p.delta)
    out = []
    for (direction, label), values in sorted(deltas.items()):
        span = [v for (d, _), vs in deltas.items() if d == direction for v in vs]
        grid = np.linspace(min(span) - 5, max(span) + 5, GRID_POINTS).tolist()
        out.append(Density(direction, label, grid, kde(values, grid)))
    return out


def _shifts(trained: list[ArmScores], bleu: dict[str, float]) -> list[ShiftCorrelation]:
    arms = arms_of(trained)
    capo = [a for a in arms if a.split(",")[0] == "capo"]
    dpo = [a for a in arms if a.split(",")[0] == "dpo"]
    if capo and dpo:
        return [shift_correlation(trained, a, dpo[0], bleu) for a in capo]
    return [shift_correlation(trained, arms[0], arms[1], bleu)] if len(arms) > 1 else []


def _ambiguity(
    pairs: list[PairRecord], base: list[ArmScores], trained: list[ArmScores]
) -> list[AmbiguousPair]:
    start = {(r.run_id, p.pair_id): p.delta for r in base for p in r.pairs}
    base_delta = {p.pair_id: p.base_delta for r in base for p in r.pairs}
    changes: dict[tuple[int, str], list[float]] = defaultdict(list)
    for r in trained:
        for p in r.pairs:
            if (r.run_id, p.pair_id) in start:
                changes[(p.pair_id, r.arm)].append(p.delta - start[(r.run_id, p.pair_id)])
    chrf = CHRF()
    rows = [
        AmbiguousPair(
            p.pair_id, p.direction, chrf.sentence_score(p.rejected, [p.chosen]).score, p.hter,
            base_delta.get(p.pair_id),
            {arm: float(np.mean(v)) for (pid, arm), v in changes.items() if pid == p.pair_id},
        )
        for p in pairs
        if p.pair_id in base_delta
    ]  # fmt: skip
    return sorted(rows, key=lambda r: (-r.chrf_mt_vs_pe, abs(r.base_delta or 0.0)))


def _curves(db: Database, records: list[RunRecord]) -> list[Curve]:
    curves = []
    with db.read() as session:
        for run in records:
            rows = [m for m in queries.metrics(session, run.id) if m.key == "loss"]
            curves.append(Curve(run.name, "loss", [m.step for m in rows], [m.value for m in rows]))
    return curves


def _sweep(db: Database, records: list[RunRecord], factors: dict) -> list[SweepPoint]:
    if "objective.alpha" not in factors:
        return []
    with db.read() as session:
        return [
            sweep_point(
                float(r.config["objective"]["alpha"]),
                [(m.step, m.key, m.value) for m in queries.metrics(session, r.id)],
            )
            for r in records
            if "alpha" in r.config["objective"]
        ]


def _benchmarks(db: Database, records: list[RunRecord], factors: dict) -> list:
    """A section per benchmark suite run on the finished runs (``capo_lab.benchmarks``)."""
    runs = [
        StudyRun(r.id, r.name, arm_label(r.config, factors), int(r.config["train"]["seed"])) for r in records
    ]
    return study_benchmark_sections(db, runs)


def _check_comparable(name: str, report_runs: list[ReportRun], trained: list[ArmScores]) -> None:
    waiting = ", ".join(r.name for r in report_runs if r.step is None) or "none"
    if len(trained) < 2:
        raise LabError(
            f"study {name!r} has {len(trained)} finished run(s) with trained scores; a report compares "
            f"at least two; waiting for: {waiting}"
        )
    pair_sets = {r.arm: {p.pair_id for p in r.pairs} for r in trained}
    arms = list(pair_sets)
    for i, a in enumerate(arms):
        for b in arms[i + 1 :]:
            if not pair_sets[a] & pair_sets[b]:
                raise LabError(f"arms {a!r} and {b!r} share no scored pairs; they cannot be compared")


def study_report(
    db: Database, study: str | int, step: str = "best", split: str = "eval", endpoint: str = "accuracies"
) -> StudyReport:
    """The report of ``study`` at ``step`` on ``split``; runs not yet finished are named in ``missing``."""
    if endpoint not in ENDPOINTS:
        raise LabError(f"endpoint {endpoint!r} is not one of {', '.join(ENDPOINTS)}")
    record = get_study(db, study)
    with db.read() as session:
        first = queries.get_run(session, record.run_ids[0]) if record.run_ids else None
    if first is None:
        raise LabError(f"study {record.name!r} has no runs")
    pairs = dataset_pairs(db, first.config["data"]["dataset"], split=split)
    ties = {p.pair_id: p.tie for p in pairs}
    report_runs, base, trained, records = _collect(
        db, record.run_ids, record.factors, split, step, endpoint, ties
    )
    missing = [r.name for r in report_runs if r.step is None]
    _check_comparable(record.name, report_runs, trained)
    # the base arm: its vs-base accuracy is 0 by definition, so it is no arm for that endpoint
    arms = trained + (base_arm(base) if endpoint != "accuracies_vs_base" else [])
    bleu = {s.direction: s.bleu for s in direction_stats(pairs) if s.bleu is not None}
    return StudyReport(
        study_id=record.id, study=record.name, split=split, step=step, endpoint=endpoint,
        method=report_method(endpoint, step, split), factors=record.factors,
        runs=report_runs, missing=missing, arms=arms_of(arms), directions=directions_of(trained),
        accuracy=accuracy_table(arms, endpoint), comparisons=compare_all(arms, endpoint),
        densities=_densities(base, trained), bleu_mt_vs_pe=bleu, shift=_shifts(trained, bleu),
        regimes=regime_table(base, trained), regime_accuracy=regime_accuracy(base, trained, endpoint),
        sweep=_sweep(db, records, record.factors), loss_curves=_curves(db, records),
        translations={r.name: translations.direction_chrf(db, r.id, split) for r in records},
        ambiguity=_ambiguity(pairs, base, trained), benchmarks=_benchmarks(db, records, record.factors),
    )  # fmt: skip
