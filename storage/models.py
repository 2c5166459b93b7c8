"""SQLAlchemy 2.0 typed models. Schema changes go through an Alembic migration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.records import JobKind


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Dataset(Base):
    """A named set of preference pairs built in one import."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    build_options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sources: Mapped[list[Any]] = mapped_column(default=list)
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)

    pairs: Mapped[list[Pair]] = relationship(
        back_populates="dataset", cascade="all, delete-orphan", passive_deletes=True
    )


class Pair(Base):
    """One preference pair: chosen = post-edit, rejected = raw MT."""

    __tablename__ = "pairs"
    __table_args__ = (Index("ix_pairs_dataset_split_direction", "dataset_id", "split", "direction"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    split: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer)
    prompt: Mapped[str] = mapped_column(Text)
    chosen: Mapped[str] = mapped_column(Text)
    rejected: Mapped[str] = mapped_column(Text)
    source_text: Mapped[str] = mapped_column(Text)
    hter: Mapped[float | None] = mapped_column(Float, nullable=True)
    origin: Mapped[str] = mapped_column(String(500))
    # chosen equals rejected as text (no preference), decided once by the data builder's rule
    tie: Mapped[bool] = mapped_column(Boolean, server_default=false())

    dataset: Mapped[Dataset] = relationship(back_populates="pairs")


class Study(Base):
    """A named group of runs on one dataset that differ only in declared factors (key → values)."""

    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    factors: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Run(Base):
    """A training run: its config, lifecycle status and timings."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), index=True)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), nullable=True)
    study_id: Mapped[int | None] = mapped_column(ForeignKey("studies.id"), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    resumed_from_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    traceback: Mapped[str | None] = mapped_column(Text, nullable=True)
    notes: Mapped[list[Any]] = mapped_column(default=list)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    device: Mapped[str | None] = mapped_column(String(32), nullable=True)


class Metric(Base):
    """One logged value: TRL key names (``loss``, ``rewards/accuracies``…, ``/<direction>``)."""

    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_run_step", "run_id", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(120))
    value: Mapped[float] = mapped_column(Float)


class Generation(Base):
    """A translation generated for a pair's prompt by the base model or the adapter at one step."""

    __tablename__ = "generations"
    __table_args__ = (Index("ix_generations_run_split_step", "run_id", "split", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    split: Mapped[str] = mapped_column(String(16))
    pair_id: Mapped[int] = mapped_column(Integer)
    direction: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(16))  # "base" or "adapter"
    text: Mapped[str] = mapped_column(Text)
    n_tokens: Mapped[int] = mapped_column(Integer)
    truncated: Mapped[bool] = mapped_column(Boolean)


class Evaluation(Base):
    """A translation evaluation job on one run: its request, status and progress in sentences."""

    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_run", "run_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(16))  # as asked: a number or "last"
    split: Mapped[str] = mapped_column(String(16))
    base: Mapped[bool] = mapped_column(Boolean)
    max_new_tokens: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)  # a RunStatus, as a run's
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    evaluated_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    traceback: Mapped[str | None] = mapped_column(Text, nullable=True)


class PairScore(Base):
    """A pair's log-probs, RRM, loss, reward margin and per-term gradients at one step."""

    __tablename__ = "pair_scores"
    __table_args__ = (Index("ix_pair_scores_run_split_step", "run_id", "split", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    split: Mapped[str] = mapped_column(String(16))
    pair_id: Mapped[int] = mapped_column(Integer)
    direction: Mapped[str] = mapped_column(String(16))
    logp_chosen: Mapped[float] = mapped_column(Float)
    logp_rejected: Mapped[float] = mapped_column(Float)
    n_tokens_chosen: Mapped[int] = mapped_column(Integer)
    n_tokens_rejected: Mapped[int] = mapped_column(Integer)
    ref_logp_chosen: Mapped[float | None] = mapped_column(Float, nullable=True)
    ref_logp_rejected: Mapped[float | None] = mapped_column(Float, nullable=True)
    rrm: Mapped[float] = mapped_column(Float)
    loss: Mapped[float] = mapped_column(Float)
    reward_margin: Mapped[float] = mapped_column(Float)
    grad_chosen: Mapped[dict[str, Any]] = mapped_column()
    grad_rejected: Mapped[dict[str, Any]] = mapped_column()
    tie: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    chosen_token_logps: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # float32 array
    rejected_token_logps: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class TokenPieces(Base):
    """A run's response tokens as text, per pair, for heat maps drawn without a tokenizer."""

    __tablename__ = "token_pieces"
    __table_args__ = (UniqueConstraint("run_id", "pair_id", name="uq_token_pieces_run_pair"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    pair_id: Mapped[int] = mapped_column(Integer)
    chosen: Mapped[list[Any]] = mapped_column()
    rejected: Mapped[list[Any]] = mapped_column()


class BaseScore(Base):
    """A pair's log-probs under the base model, shared by every run with the same scoring fingerprint."""

    __tablename__ = "base_scores"
    __table_args__ = (UniqueConstraint("fingerprint", "pair_id", name="uq_base_scores_fingerprint_pair"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    pair_id: Mapped[int] = mapped_column(Integer)
    logp_chosen: Mapped[float] = mapped_column(Float)
    logp_rejected: Mapped[float] = mapped_column(Float)


class Checkpoint(Base):
    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Benchmark(Base):
    """A downstream benchmark job on one run (M-IFEval, XLSum, MT-Bench): its request, the judge's
    estimated requests, status and progress in items; the lifecycle's columns as an evaluation's."""

    __tablename__ = "benchmarks"
    __table_args__ = (Index("ix_benchmarks_run", "run_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(16))  # as asked: a number or "last"
    suite: Mapped[str] = mapped_column(String(16))
    languages: Mapped[list[Any]] = mapped_column()
    limit: Mapped[int | None] = mapped_column(Integer, nullable=True)  # items per language; None: all
    seed: Mapped[int] = mapped_column(Integer)
    base: Mapped[bool] = mapped_column(Boolean)
    max_new_tokens: Mapped[int] = mapped_column(Integer)
    temperature: Mapped[float] = mapped_column(Float)
    template: Mapped[str] = mapped_column(String(16))  # the run's data.chat_template
    judge_requests: Mapped[int | None] = mapped_column(Integer, nullable=True)  # estimated at queueing
    note: Mapped[str | None] = mapped_column(Text, nullable=True)  # e.g. why judged parts were skipped
    status: Mapped[str] = mapped_column(String(16), index=True)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    evaluated_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    traceback: Mapped[str | None] = mapped_column(Text, nullable=True)


class BenchmarkGeneration(Base):
    """One answer of a benchmark job: an item's turn by one arm, with the exact settings it was made with."""

    __tablename__ = "benchmark_generations"
    __table_args__ = (
        UniqueConstraint(
            "benchmark_id", "language", "item_id", "arm", "turn", name="uq_benchmark_generations_item"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    benchmark_id: Mapped[int] = mapped_column(ForeignKey("benchmarks.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    language: Mapped[str] = mapped_column(String(8))
    item_id: Mapped[str] = mapped_column(String(200))
    arm: Mapped[str] = mapped_column(String(16))  # "adapter" or "base"
    turn: Mapped[int] = mapped_column(Integer)  # 1, or MT-Bench's 2
    prompt: Mapped[str] = mapped_column(Text)  # the rendered model input
    output: Mapped[str] = mapped_column(Text)
    n_tokens: Mapped[int] = mapped_column(Integer)
    truncated: Mapped[bool] = mapped_column(Boolean)
    max_new_tokens: Mapped[int] = mapped_column(Integer)
    temperature: Mapped[float] = mapped_column(Float)
    seed: Mapped[int] = mapped_column(Integer)
    template: Mapped[str] = mapped_column(String(16))


class BenchmarkScore(Base):
    """One score of an item under one arm: ``value`` (None: unjudged or unchecked) and its ``detail``
    (which checks passed; the judge's verdicts in both orders; the turn ratings)."""

    __tablename__ = "benchmark_scores"
    __table_args__ = (
        UniqueConstraint(
            "benchmark_id", "language", "item_id", "arm", "metric", name="uq_benchmark_scores_item"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    benchmark_id: Mapped[int] = mapped_column(ForeignKey("benchmarks.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    language: Mapped[str] = mapped_column(String(8))
    item_id: Mapped[str] = mapped_column(String(200))
    arm: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str] = mapped_column(String(40))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class JudgeReply(Base):
    """A judge's reply by prompt key (sha256 of model, messages and sampling settings), kept once."""

    __tablename__ = "judge_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    model: Mapped[str] = mapped_column(String(200))
    messages: Mapped[list[Any]] = mapped_column()
    reply: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# Every table with the job lifecycle's columns, by kind; ``storage.writes`` makes its transitions.
JOB_MODELS: dict[JobKind, type[Run] | type[Evaluation] | type[Benchmark]] = {
    JobKind.RUN: Run,
    JobKind.EVALUATION: Evaluation,
    JobKind.BENCHMARK: Benchmark,
}
