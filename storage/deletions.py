"""Deletes: runs with every row that refers to them, and studies with their runs. Callers own the
transaction (``with session.begin():``) and remove the runs' folders once it has committed.

Every child table is deleted explicitly rather than left to ``ondelete="CASCADE"``: SQLite honours
foreign keys only on connections that turn them on (Alembic's migrations run with them off), and a
row left behind would belong to the next run given the same id (SQLite reuses the highest freed id).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from storage.models import (
    Benchmark,
    BenchmarkGeneration,
    BenchmarkScore,
    Checkpoint,
    Evaluation,
    Generation,
    Metric,
    PairScore,
    Run,
    Study,
    TokenPieces,
)

# Every table with a ``run_id`` column; a test checks that no table with one is missing.
RUN_CHILDREN = (
    Metric, PairScore, Generation, Evaluation, TokenPieces, Checkpoint,
    BenchmarkGeneration, BenchmarkScore, Benchmark,  # a benchmark's rows before the benchmark
)  # fmt: skip


def lock_runs(session: Session, run_ids: Iterable[int], unless: Collection[str] = ()) -> bool:
    """Take the write lock on the runs, none of them in a status of ``unless``; False (nothing
    locked) if some run is missing or in such a status. A worker's claim (a compare-and-set on
    ``queued``) then waits for the transaction, and finds the run gone once it commits."""
    ids = sorted(set(run_ids))
    if not ids:
        return True
    guard = update(Run).where(Run.id.in_(ids)).values(status=Run.status)  # a no-op write: the lock
    if unless:
        guard = guard.where(Run.status.not_in(list(unless)))
    return session.execute(guard).rowcount == len(ids)


def delete_runs(session: Session, run_ids: Iterable[int]) -> list[str]:
    """Delete the runs and all their rows (metrics, pair scores, generations, evaluations, token
    pieces, checkpoints); returns the paths of the checkpoints whose rows were deleted."""
    ids = sorted(set(run_ids))
    if not ids:
        return []
    paths = list(session.scalars(select(Checkpoint.path).where(Checkpoint.run_id.in_(ids))))
    for table in RUN_CHILDREN:
        session.execute(delete(table).where(table.run_id.in_(ids)))
    session.execute(delete(Run).where(Run.id.in_(ids)))
    return paths


def study_run_ids(session: Session, study_id: int) -> list[int]:
    return list(session.scalars(select(Run.id).where(Run.study_id == study_id).order_by(Run.id)))


def delete_study(session: Session, study_id: int) -> list[str]:
    """Delete the study and its runs (``delete_runs``); returns their checkpoints' paths."""
    paths = delete_runs(session, study_run_ids(session, study_id))
    session.execute(delete(Study).where(Study.id == study_id))
    return paths
