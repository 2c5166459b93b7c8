"""Runs side by side, read from storage: reward accuracy per direction at the base and at the last step,
and how many pairs two runs decide differently, under each of the three accuracies the trainer logs
(``capo.evaluation``: lw > ll, per token, vs base)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from capo_lab.database import Database
from storage import queries
from storage.records import PairScoreRecord

PAPER = "accuracies"  # lw > ll, the paper's; the rows' own cells
VARIANTS = (PAPER, "accuracies_per_token", "accuracies_vs_base")  # capo.evaluation's, by metric name


@dataclass(frozen=True)
class Outcomes:
    """Per pair, (direction, decided right) at a run's first and last stored scores of a split."""

    first_step: int
    last_step: int
    first: Mapping[int, tuple[str, bool]]
    last: Mapping[int, tuple[str, bool]]


@dataclass(frozen=True)
class AccuracyCell:
    """One run in one direction: n pairs, accuracy at ``base_step`` (0: the base model) and ``last_step``."""

    n: int
    base: float
    last: float
    base_step: int
    last_step: int


@dataclass(frozen=True)
class DirectionAccuracy:
    """A direction (or ``all``): each run's cell; for two runs, ``disagree`` of ``shared`` pairs are decided
    differently at their last steps (else None)."""

    direction: str
    runs: Mapping[int, AccuracyCell]
    disagree: int | None
    shared: int | None
    variants: Mapping[str, DirectionAccuracy] = field(default_factory=dict)

    def in_variant(self, variant: str) -> DirectionAccuracy:
        """This direction under ``variant`` (a name in ``VARIANTS``); itself for the paper's or one not
        computed."""
        return self.variants.get(variant, self)


def decided(score: PairScoreRecord, base: PairScoreRecord | None, variant: str) -> bool:
    """Whether ``score`` prefers the post-edit under ``variant``, as ``capo.evaluation`` counts it: a tie
    is wrong by its flag; vs base, the margin's shift from ``base`` (the run's first scores: the base
    model at step 0) must be > 0, so at the base itself every pair is wrong (0 > 0 is false)."""
    if score.tie:
        return False
    if variant == "accuracies_per_token":
        per_token = score.logp_chosen / max(score.n_tokens_chosen, 1)
        return per_token > score.logp_rejected / max(score.n_tokens_rejected, 1)
    if variant == "accuracies_vs_base":
        if base is None:
            return False
        shift = (score.logp_chosen - base.logp_chosen) - (score.logp_rejected - base.logp_rejected)
        return shift > 0
    return score.logp_chosen > score.logp_rejected


@dataclass(frozen=True)
class StoredScores:
    """A run's pair scores of a split at its first and last stored steps."""

    first_step: int
    last_step: int
    first: list[PairScoreRecord]
    last: list[PairScoreRecord]


def stored_scores(db: Database, run_id: int, split: str) -> StoredScores | None:
    """One read of a run's first and last scores of ``split``; None when it has none."""
    with db.read() as session:
        steps = queries.score_steps(session, run_id, split)
        if not steps:
            return None
        first, last = (queries.pair_scores(session, run_id, split, s) for s in (steps[0], steps[-1]))
    return StoredScores(steps[0], steps[-1], first, last)


def outcomes(scores: StoredScores, variant: str = PAPER) -> Outcomes:
    """Each pair decided under ``variant`` at the first and the last step."""
    base = {s.pair_id: s for s in scores.first}

    def decisions(found: list[PairScoreRecord]) -> dict[int, tuple[str, bool]]:
        return {s.pair_id: (s.direction, decided(s, base.get(s.pair_id), variant)) for s in found}

    return Outcomes(scores.first_step, scores.last_step, decisions(scores.first), decisions(scores.last))


def accuracy(found: Mapping[int, tuple[str, bool]], direction: str) -> tuple[int, float]:
    kept = [ok for d, ok in found.values() if direction in ("all", d)]
    return len(kept), (sum(kept) / len(kept) if kept else float("nan"))


def disagreement(a: Outcomes, b: Outcomes, direction: str) -> tuple[int, int]:
    """(pairs decided differently, pairs both runs scored) at the runs' last steps."""
    shared = [p for p, (d, _) in a.last.items() if direction in ("all", d) and p in b.last]
    return sum(a.last[p][1] != b.last[p][1] for p in shared), len(shared)


def accuracy_cell(found: Outcomes, direction: str) -> AccuracyCell:
    n, base = accuracy(found.first, direction)
    _, last = accuracy(found.last, direction)
    return AccuracyCell(n, base, last, found.first_step, found.last_step)


def direction_accuracy(db: Database, run_ids: list[int], split: str = "eval") -> list[DirectionAccuracy]:
    """Per direction, then ``all``: each run's reward accuracy (lw > ll) at its first stored step and its
    last, with n; runs without ``split`` scores are left out. Each row also holds itself under every
    accuracy in ``VARIANTS`` (``DirectionAccuracy.in_variant``). One read per run."""
    found = {int(r): scores for r in run_ids if (scores := stored_scores(db, int(r), split))}
    by_variant = {v: variant_accuracy({r: outcomes(s, v) for r, s in found.items()}) for v in VARIANTS}
    return [
        replace(row, variants={v: rows[i] for v, rows in by_variant.items()})
        for i, row in enumerate(by_variant[PAPER])
    ]


def variant_accuracy(found: Mapping[int, Outcomes]) -> list[DirectionAccuracy]:
    """``direction_accuracy``'s rows from each run's outcomes under one accuracy, without ``variants``."""
    directions = sorted({d for o in found.values() for d, _ in o.last.values()})
    rows = []
    for direction in [*directions, "all"] if directions else []:
        pair = disagreement(*found.values(), direction) if len(found) == 2 else (None, None)
        cells = {rid: accuracy_cell(o, direction) for rid, o in found.items()}
        rows.append(DirectionAccuracy(direction, cells, *pair))
    return rows
