"""Runs side by side, read from storage: reward accuracy per direction at the base and at the last step,
and how many pairs two runs decide differently."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from capo_lab.database import Database
from storage import queries


@dataclass(frozen=True)
class Outcomes:
    """Per pair, (direction, lw > ll) at a run's first and last stored scores of a split."""

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


def outcomes(db: Database, run_id: int, split: str) -> Outcomes | None:
    with db.read() as session:
        steps = queries.score_steps(session, run_id, split)
        if not steps:
            return None
        first, last = (queries.pair_scores(session, run_id, split, s) for s in (steps[0], steps[-1]))
    return Outcomes(
        steps[0],
        steps[-1],
        {s.pair_id: (s.direction, not s.tie and s.logp_chosen > s.logp_rejected) for s in first},
        {s.pair_id: (s.direction, not s.tie and s.logp_chosen > s.logp_rejected) for s in last},
    )


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
    last, with n; runs without ``split`` scores are left out."""
    found = {int(r): o for r in run_ids if (o := outcomes(db, int(r), split))}
    directions = sorted({d for o in found.values() for d, _ in o.last.values()})
    rows = []
    for direction in [*directions, "all"] if directions else []:
        pair = disagreement(*found.values(), direction) if len(found) == 2 else (None, None)
        cells = {rid: accuracy_cell(o, direction) for rid, o in found.items()}
        rows.append(DirectionAccuracy(direction, cells, *pair))
    return rows
