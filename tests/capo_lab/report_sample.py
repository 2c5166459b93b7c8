"""A small hand-built StudyReport: two arms (capo, dpo) × two seeds on three directions."""

from __future__ import annotations

from capo.analysis.compare import AccuracyCell, Comparison, RegimeAccuracy, RegimeShare, ShiftCorrelation
from capo.analysis.stats import Correlation, Interval
from capo_lab.reports import AmbiguousPair, Curve, Density, ReportRun, StudyReport, report_method

STUDY = "<b>cmp</b>"
ARMS = ["capo", "dpo"]
DIRECTIONS = ["en-de", "en-it", "en-nl"]
ACCURACY = {  # (arm, direction) → (estimate, low, high)
    ("capo", "en-de"): (0.75, 0.5, 1.0),
    ("capo", "en-it"): (0.5, 0.25, 0.75),
    ("capo", "en-nl"): (1.0, 1.0, 1.0),
    ("capo", "all"): (0.75, 0.6, 0.9),
    ("dpo", "en-de"): (0.25, 0.0, 0.5),
    ("dpo", "en-it"): (0.5, 0.25, 0.75),
    ("dpo", "en-nl"): (0.75, 0.5, 1.0),
    ("dpo", "all"): (0.5, 0.35, 0.65),
}
GRID = [-2.0, -1.0, 0.0, 1.0, 2.0]


def run_name(arm: str, seed: int) -> str:
    return f"{STUDY}[{arm}, seed={seed}]"


def _runs() -> list[ReportRun]:
    runs = [ReportRun(i, run_name(a, s), a, s, "succeeded", 4) for i, (a, s) in enumerate(
        [("capo", 0), ("capo", 1), ("dpo", 0)], start=1)]  # fmt: skip
    return runs + [ReportRun(4, run_name("dpo", 1), "dpo", 1, "running", None)]


def _comparisons() -> list[Comparison]:
    rows = [("en-de", 0.5, 3, 1, 0.625), ("en-it", 0.0, 1, 1, 1.0), ("en-nl", 0.25, 2, 1, 1.0)]
    rows.append(("all", 0.25, 6, 3, 0.508))
    return [
        Comparison(
            "capo",
            "dpo",
            d,
            Interval(e, e - 0.25, e + 0.25, 8),
            a,
            b,
            p,
            "exact sign-flip",
            p_holm=min(1.0, p * (1 if d == "all" else 3)),
            family="primary" if d == "all" else "per direction",
            mde=0.3,
            seeds=(0, 1),
        )
        for d, e, a, b, p in rows
    ]


def _densities() -> list[Density]:
    rows = []
    for d in DIRECTIONS:
        for k, label in enumerate(["base", *ARMS]):
            values = None if d == "en-nl" else [0.1 * (k + 1)] * len(GRID)
            rows.append(Density(d, label, GRID, values))
    return rows


def _regimes() -> list[RegimeShare]:
    return [
        RegimeShare(arm, d, at, 0.5 if arm == "capo" else 0.0, 0.25, 0.25 if arm == "capo" else 0.0, 4)
        for arm in ARMS
        for at in ("base", "trained")
        for d in ["all", *DIRECTIONS]
    ]


def _regime_accuracy() -> list[RegimeAccuracy]:
    return [
        RegimeAccuracy(arm, d, regime, 2, 0.5, 1.0 if arm == "capo" else 0.25)
        for arm in ARMS
        for d in ["all", *DIRECTIONS]
        for regime in ("chosen_down", "none")
    ]


def _ambiguity(n: int = 60) -> list[AmbiguousPair]:
    change = {"capo": 0.5, "dpo": -0.5}
    return [
        AmbiguousPair(i, DIRECTIONS[i % 3], 100.0 - i, 0.1 if i % 2 else None, -1.0 * i, change)
        for i in range(n)
    ]


def sample_report() -> StudyReport:
    bleu = {"en-de": 30.0, "en-it": 50.0, "en-nl": 70.0}
    shift = ShiftCorrelation(
        "capo", "dpo", tuple(DIRECTIONS), (30.0, 50.0, 70.0), (0.5, 1.0, 2.0), Correlation(0.98, 0.12, 3)
    )
    return StudyReport(
        study_id=1, study=STUDY, split="eval", step="best", endpoint="accuracies",
        method=report_method("accuracies", "best", "eval"),
        factors={"objective.name": ["capo", "dpo"], "train.seed": [0, 1]},
        runs=_runs(), missing=[run_name("dpo", 1)], arms=list(ARMS), directions=[*DIRECTIONS, "all"],
        accuracy=[AccuracyCell(a, d, Interval(*v, 8)) for (a, d), v in ACCURACY.items()],
        comparisons=_comparisons(), densities=_densities(), bleu_mt_vs_pe=bleu, shift=[shift],
        regimes=_regimes(), regime_accuracy=_regime_accuracy(), sweep=[],
        loss_curves=[Curve(r.name, "loss", [1, 2, 3], [0.7, 0.6, 0.5]) for r in _runs()[:3]],
        translations={r.name: [] for r in _runs()[:3]}, ambiguity=_ambiguity(),
    )  # fmt: skip
