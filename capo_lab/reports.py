"""A study's report: every comparison a researcher asks of it, as one typed record.

``study_report`` reads the study's finished runs from storage, picks each run's
step (``best``: its highest ``{split}_rewards/accuracies``; ``last``; or a number),
and hands the pair-level scores to ``capo.analysis``. Unfinished runs are left out
and named in ``missing``. JSON is ``dataclasses.asdict`` of the record; the HTML
report (``capo_lab.report_html``) draws the same record.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from sacrebleu.metrics import CHRF

from capo.analysis.compare import (
    AccuracyCell,
    ArmScores,
    Comparison,
    RegimeAccuracy,
    RegimeShare,
    ScoredPair,
    ShiftCorrelation,
    accuracy_table,
    arms_of,
    compare,
    directions_of,
    regime_accuracy,
    regime_table,
    shift_correlation,
)
from capo.analysis.stats import kde
from capo.analysis.sweep import SweepPoint, sweep_point
from capo.data.stats import direction_stats
from capo_lab import translations
from capo_lab.database import Database
from capo_lab.datasets import dataset_pairs
from capo_lab.errors import LabError
from capo_lab.studies import get_study
from storage import queries
from storage.records import PairRecord, RunRecord, RunStatus

GRID_POINTS = 200


@dataclass(frozen=True)
class ReportRun:
    run_id: int
    name: str
    arm: str
    seed: int
    status: str
    step: int | None


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
class StudyReport:
    study_id: int
    study: str
    split: str
    step: str
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


def _scored(rows) -> tuple[ScoredPair, ...]:
    return tuple(
        ScoredPair(
            s.pair_id, s.direction, s.logp_chosen, s.logp_rejected, s.ref_logp_chosen, s.ref_logp_rejected,
            sum(s.grad_chosen.values()), sum(s.grad_rejected.values()),
        )
        for s in rows
    )  # fmt: skip


def _pick_step(session, run: RunRecord, split: str, step: str) -> int | None:
    steps = queries.score_steps(session, run.id, split)
    if not steps:
        return None
    if step == "last":
        return steps[-1]
    if step == "best":
        key = f"{split}_rewards/accuracies"
        curve = {m.step: m.value for m in queries.metrics(session, run.id) if m.key == key}
        return max(steps, key=lambda s: (curve.get(s, -1.0), -s))
    if not step.isdigit() or int(step) not in steps:
        raise LabError(
            f"run {run.id} has no {split} scores at step {step}; it has {', '.join(map(str, steps))}"
        )
    return int(step)


def _collect(db: Database, run_ids, factors, split, step):
    """(report runs, base scores at step 0, scores at the chosen step, run records) of finished runs."""
    report_runs, base, trained, records = [], [], [], []
    with db.read() as session:
        for run_id in run_ids:
            run = queries.get_run(session, run_id)
            arm, seed = arm_label(run.config, factors), int(run.config["train"]["seed"])
            at = _pick_step(session, run, split, step) if run.status == RunStatus.SUCCEEDED else None
            report_runs.append(ReportRun(run.id, run.name, arm, seed, run.status, at))
            if at is None:
                continue
            records.append(run)
            base.append(
                ArmScores(arm, seed, run.id, 0, _scored(queries.pair_scores(session, run.id, split, 0)))
            )
            trained.append(
                ArmScores(arm, seed, run.id, at, _scored(queries.pair_scores(session, run.id, split, at)))
            )
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


def _comparisons(trained: list[ArmScores], resamples: int) -> list[Comparison]:
    arms = arms_of(trained)
    return [c for i, a in enumerate(arms) for b in arms[i + 1 :] for c in compare(trained, a, b, resamples)]


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


def study_report(
    db: Database, study: str | int, step: str = "best", split: str = "eval", resamples: int = 10_000
) -> StudyReport:
    """The report of ``study`` at ``step`` on ``split``; runs not yet finished are named in ``missing``."""
    record = get_study(db, study)
    report_runs, base, trained, records = _collect(db, record.run_ids, record.factors, split, step)
    missing = [r.name for r in report_runs if r.step is None]
    if not trained:
        raise LabError(f"study {record.name!r} has no finished run yet; waiting for: {', '.join(missing)}")
    dataset = records[0].config["data"]["dataset"]
    pairs = dataset_pairs(db, dataset, split=split)
    bleu = {s.direction: s.bleu for s in direction_stats(pairs) if s.bleu is not None}
    return StudyReport(
        study_id=record.id, study=record.name, split=split, step=step, factors=record.factors,
        runs=report_runs, missing=missing, arms=arms_of(trained), directions=directions_of(trained),
        accuracy=accuracy_table(trained, resamples), comparisons=_comparisons(trained, resamples),
        densities=_densities(base, trained), bleu_mt_vs_pe=bleu, shift=_shifts(trained, bleu),
        regimes=regime_table(base, trained), regime_accuracy=regime_accuracy(base, trained),
        sweep=_sweep(db, records, record.factors), loss_curves=_curves(db, records),
        translations={r.name: translations.direction_chrf(db, r.id, split) for r in records},
        ambiguity=_ambiguity(pairs, base, trained),
    )  # fmt: skip
