"""Inserts and updates. Callers own the transaction (``with session.begin():``)."""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import (
    JOB_MODELS,
    Base,
    BaseScore,
    Benchmark,
    BenchmarkGeneration,
    BenchmarkScore,
    Checkpoint,
    Dataset,
    Evaluation,
    Generation,
    JudgeReply,
    Metric,
    Pair,
    PairScore,
    Run,
    Study,
    TokenPieces,
    utcnow,
)
from storage.queries import dataset_name_taken
from storage.records import JobKind, RunStatus


class DatasetNameTaken(Exception):
    """A user's mistake (``capo_lab.errors.USER_ERRORS``), not a ValueError: nothing is stored."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a dataset named {name!r} already exists; choose another name")


class StudyNameTaken(Exception):
    """A user's mistake (``capo_lab.errors.USER_ERRORS``), not a ValueError: nothing is stored."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a study named {name!r} already exists; choose another name")


class PairLike(Protocol):
    direction: str
    split: str
    prompt: str
    chosen: str
    rejected: str
    source_text: str
    hter: float | None
    origin: str
    tie: bool


def add_dataset(
    session: Session,
    name: str,
    pairs: Iterable[PairLike],
    build_options: dict[str, Any],
    sources: list[Any],
    report: dict[str, Any],
) -> int:
    """Insert a dataset with its pairs; returns the new dataset id."""
    if dataset_name_taken(session, name):
        raise DatasetNameTaken(name)
    dataset = Dataset(name=name, build_options=build_options, sources=sources, report=report)
    session.add(dataset)
    session.flush()
    rows = [
        {
            "dataset_id": dataset.id,
            "split": p.split,
            "direction": p.direction,
            "position": position,
            "prompt": p.prompt,
            "chosen": p.chosen,
            "rejected": p.rejected,
            "source_text": p.source_text,
            "hter": p.hter,
            "origin": p.origin,
            "tie": p.tie,
        }
        for position, p in enumerate(pairs)
    ]
    if rows:
        session.execute(insert(Pair), rows)
    return dataset.id


def add_run(
    session: Session,
    name: str,
    config: dict[str, Any],
    dataset_id: int | None,
    status: str = RunStatus.QUEUED,
    study_id: int | None = None,
) -> int:
    run = Run(
        name=name, config=config, status=status, dataset_id=dataset_id, study_id=study_id, step=0, notes=[]
    )
    session.add(run)
    session.flush()
    return run.id


def add_study(session: Session, name: str, factors: dict[str, list[Any]]) -> int:
    if session.scalar(select(Study.id).where(Study.name == name)) is not None:
        raise StudyNameTaken(name)
    study = Study(name=name, factors=factors)
    session.add(study)
    session.flush()
    return study.id


def update_job(session: Session, kind: JobKind, job_id: int, **fields: Any) -> None:
    """Set columns of one job (``status``, ``step``, ``heartbeat_at``, ``error``…) in its kind's table."""
    model = JOB_MODELS[kind]
    unknown = set(fields) - set(model.__table__.columns.keys())
    if unknown:
        raise ValueError(f"{model.__tablename__} has no column(s) {sorted(unknown)}")
    session.execute(update(model).where(model.id == job_id).values(**fields))


def update_run(session: Session, run_id: int, **fields: Any) -> None:
    """Set columns of one run (``status``, ``step``, ``heartbeat_at``, ``error``…)."""
    update_job(session, JobKind.RUN, run_id, **fields)


def append_run_note(session: Session, run_id: int, note: str) -> None:
    run = session.get(Run, run_id)
    if run is not None:
        run.notes = [*(run.notes or []), note]


def add_metrics(session: Session, run_id: int, rows: Iterable[tuple[int, str, float]]) -> None:
    values = [{"run_id": run_id, "step": s, "key": k, "value": float(v)} for s, k, v in rows]
    if values:
        session.execute(insert(Metric), values)


def pack_floats(values: Iterable[float]) -> bytes | None:
    """A compact float32 array (4 bytes a token); None for none."""
    packed = array("f", values).tobytes()
    return packed or None


def add_pair_scores(session: Session, run_id: int, rows: Iterable[dict[str, Any]]) -> None:
    """Rows as ``capo.evaluation.PairScoreRow`` fields; per-token log-probs are packed as float32."""
    values = [
        {
            **row,
            "run_id": run_id,
            "chosen_token_logps": pack_floats(row.get("chosen_token_logps", ())),
            "rejected_token_logps": pack_floats(row.get("rejected_token_logps", ())),
        }
        for row in rows
    ]
    if values:
        session.execute(insert(PairScore), values)


def add_evaluation(
    session: Session, run_id: int, step: str, split: str, base: bool, max_new_tokens: int
) -> int:
    row = Evaluation(
        run_id=run_id,
        step=step,
        split=split,
        base=base,
        max_new_tokens=max_new_tokens,
        status="queued",
        done=0,
    )
    session.add(row)
    session.flush()
    return row.id


def update_evaluation(session: Session, evaluation_id: int, **fields: Any) -> None:
    update_job(session, JobKind.EVALUATION, evaluation_id, **fields)


def add_benchmark(session: Session, run_id: int, request: dict[str, Any]) -> int:
    """A queued benchmark job; ``request``: step, suite, languages, limit, seed, base, max_new_tokens,
    temperature, template and judge_requests (``capo_lab.benchmarks.queue_benchmark`` checks them)."""
    row = Benchmark(run_id=run_id, **request, status=RunStatus.QUEUED, done=0)
    session.add(row)
    session.flush()
    return row.id


def update_benchmark(session: Session, benchmark_id: int, **fields: Any) -> None:
    update_job(session, JobKind.BENCHMARK, benchmark_id, **fields)


def add_benchmark_generations(
    session: Session, benchmark_id: int, run_id: int, rows: Iterable[dict[str, Any]]
) -> None:
    """Store answers (``BenchmarkGeneration`` fields) once: an (item, arm, turn) already stored is kept."""
    values = [{**row, "benchmark_id": benchmark_id, "run_id": run_id} for row in rows]
    insert_new(session, BenchmarkGeneration, values, ["benchmark_id", "language", "item_id", "arm", "turn"])


def replace_benchmark_scores(
    session: Session, benchmark_id: int, run_id: int, rows: Iterable[dict[str, Any]]
) -> None:
    """Set the job's per-item scores (``BenchmarkScore`` fields), dropping any it stored before."""
    session.execute(delete(BenchmarkScore).where(BenchmarkScore.benchmark_id == benchmark_id))
    values = [{**row, "benchmark_id": benchmark_id, "run_id": run_id} for row in rows]
    if values:
        session.execute(insert(BenchmarkScore), values)


def add_judge_reply(session: Session, key: str, model: str, messages: list[Any], reply: str) -> None:
    """Cache a judge's reply under its prompt key; a key already stored (another job, another worker
    at the same time) keeps its first reply."""
    row = {"key": key, "model": model, "messages": messages, "reply": reply, "created_at": utcnow()}
    insert_new(session, JudgeReply, [row], ["key"])


def replace_generations(
    session: Session, run_id: int, step: int, split: str, model: str, rows: Iterable[dict[str, Any]]
) -> None:
    """Store one model's generations for a run, step and split, replacing any earlier ones."""
    session.execute(
        delete(Generation).where(
            Generation.run_id == run_id,
            Generation.step == step,
            Generation.split == split,
            Generation.model == model,
        )
    )
    values = [{**row, "run_id": run_id, "step": step, "split": split, "model": model} for row in rows]
    if values:
        session.execute(insert(Generation), values)


def replace_metrics(
    session: Session, run_id: int, step: int, prefix: str, rows: Iterable[tuple[str, float]]
) -> None:
    """Set the metrics under ``prefix`` at ``step``, dropping earlier values with that prefix there."""
    session.execute(
        delete(Metric).where(Metric.run_id == run_id, Metric.step == step, Metric.key.startswith(prefix))
    )
    add_metrics(session, run_id, [(step, key, value) for key, value in rows])


_INSERT_BY_DIALECT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def insert_new(session: Session, model: type[Base], rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Insert the rows whose ``keys`` (a unique constraint's columns) are not stored yet, skipping the
    others, also when a concurrent transaction stores them first: ``INSERT … ON CONFLICT DO NOTHING``
    on SQLite and PostgreSQL, so the first writer's rows are kept and no writer fails."""
    if rows:
        dialect_insert = _INSERT_BY_DIALECT[session.get_bind().dialect.name]
        session.execute(dialect_insert(model).on_conflict_do_nothing(index_elements=keys), rows)


def add_base_scores(session: Session, fingerprint: str, scores: dict[int, tuple[float, float]]) -> None:
    """Store base log-probs under ``fingerprint``; pairs already stored under it (by this worker or
    another computing the same fingerprint at the same time) are left as they are."""
    rows = [
        {"fingerprint": fingerprint, "pair_id": pid, "logp_chosen": chosen, "logp_rejected": rejected}
        for pid, (chosen, rejected) in scores.items()
    ]
    insert_new(session, BaseScore, rows, ["fingerprint", "pair_id"])


def add_token_pieces(session: Session, run_id: int, pieces: dict[int, tuple[list[str], list[str]]]) -> None:
    """Store each pair's response tokens for the run, once (pairs already stored are kept)."""
    rows = [
        {"run_id": run_id, "pair_id": pid, "chosen": chosen, "rejected": rejected}
        for pid, (chosen, rejected) in pieces.items()
    ]
    insert_new(session, TokenPieces, rows, ["run_id", "pair_id"])


def add_checkpoint(session: Session, run_id: int, step: int, path: str) -> None:
    session.add(Checkpoint(run_id=run_id, step=step, path=path))


def transition_job(session: Session, kind: JobKind, job_id: int, from_status: str, **fields: Any) -> bool:
    """Update a job only if it is in ``from_status`` (atomic compare-and-set); True if it was."""
    model = JOB_MODELS[kind]
    result = session.execute(
        update(model).where(model.id == job_id, model.status == from_status).values(**fields)
    )
    return bool(result.rowcount)


def mark_started(session: Session, kind: JobKind, job_id: int, at: datetime) -> None:
    """Set a job's ``started_at`` unless it has one (a resumed run keeps its first start)."""
    model = JOB_MODELS[kind]
    session.execute(update(model).where(model.id == job_id, model.started_at.is_(None)).values(started_at=at))


def transition(session: Session, run_id: int, from_status: str, **fields: Any) -> bool:
    """``transition_job`` for a run."""
    return transition_job(session, JobKind.RUN, run_id, from_status, **fields)


def delete_logged_after(session: Session, run_id: int, step: int) -> None:
    """Drop metrics and pair scores logged after ``step`` (a resumed run recomputes them)."""
    session.execute(delete(Metric).where(Metric.run_id == run_id, Metric.step > step))
    session.execute(delete(PairScore).where(PairScore.run_id == run_id, PairScore.step > step))


def interrupt_stale_jobs(session: Session, kind: JobKind, threshold: datetime, reason: str) -> list[int]:
    """``running`` jobs of ``kind`` whose heartbeat is older than ``threshold`` (or that never had one:
    rows from before heartbeats) become ``interrupted``, with ``reason`` as their error; each update
    checks both again, so a job that beat or finished meanwhile is left alone."""
    model = JOB_MODELS[kind]
    stale = (
        model.status == RunStatus.RUNNING,
        or_(model.heartbeat_at < threshold, model.heartbeat_at.is_(None)),
    )
    interrupted = []
    for job_id in session.scalars(select(model.id).where(*stale)).all():
        result = session.execute(
            update(model)
            .where(model.id == job_id, *stale)
            .values(status=RunStatus.INTERRUPTED, finished_at=utcnow(), error=reason)
        )
        if result.rowcount:
            interrupted.append(job_id)
    return interrupted
