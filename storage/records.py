"""Plain dataclasses that queries return, so callers never hold ORM objects or sessions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class DatasetInfo:
    id: int
    name: str
    created_at: datetime
    pair_count: int
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # direction → split → n
    sources: list[Any] = field(default_factory=list)
    build_options: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def directions(self) -> list[str]:
        return sorted(self.counts)


@dataclass(frozen=True)
class PairRecord:
    pair_id: int
    dataset_id: int
    split: str
    direction: str
    position: int
    prompt: str
    chosen: str
    rejected: str
    source_text: str
    hter: float | None
    origin: str
    tie: bool  # chosen equals rejected as text: the pair states no preference

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["source"] = row.pop("source_text")
        return row


class RunStatus(StrEnum):
    """Every job's lifecycle (a run's, an evaluation's): queued → running → succeeded | failed |
    cancelled | interrupted.

    ``capo_lab.lifecycle`` makes every transition, each a compare-and-set on the old status."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


RESUMABLE = (RunStatus.INTERRUPTED, RunStatus.CANCELLED, RunStatus.FAILED)
JobStatus = RunStatus  # the same statuses for every kind of job
ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)  # a job still to finish


class JobKind(StrEnum):
    """The kinds of job the worker runs, each a table with the lifecycle's columns (``status``,
    ``worker``, ``heartbeat_at``, ``cancel_requested``, ``started_at``, ``finished_at``, ``error``,
    ``traceback``); ``storage.models.JOB_MODELS`` maps each to its table."""

    RUN = "run"
    EVALUATION = "evaluation"
    BENCHMARK = "benchmark"


@dataclass(frozen=True)
class JobState:
    """What a running job checks between steps: its status and whether a cancel was asked for."""

    status: str
    cancel_requested: bool


@dataclass(frozen=True)
class RunRecord:
    id: int
    name: str
    config: dict[str, Any]
    status: str
    dataset_id: int | None
    study_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    step: int
    total_steps: int | None
    resumed_from_step: int | None
    error: str | None
    traceback: str | None
    notes: list[Any]
    cancel_requested: bool = False
    worker: str | None = None
    device: str | None = None  # where it actually trained (``cpu``, ``cuda:0``), set when it starts

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        for key in ("created_at", "started_at", "finished_at", "heartbeat_at"):
            row[key] = row[key].isoformat() if row[key] else None
        return row


@dataclass(frozen=True)
class MetricRow:
    step: int
    key: str
    value: float


@dataclass(frozen=True)
class PairScoreRecord:
    """What ``capo-lab pairs`` prints; ``grad_*`` map term name → dL/dlw or dL/dll."""

    run_id: int
    step: int
    split: str
    pair_id: int
    direction: str
    logp_chosen: float
    logp_rejected: float
    n_tokens_chosen: int
    n_tokens_rejected: int
    ref_logp_chosen: float | None
    ref_logp_rejected: float | None
    rrm: float
    loss: float
    reward_margin: float
    grad_chosen: dict[str, float]
    grad_rejected: dict[str, float]
    tie: bool = False
    chosen_token_logps: tuple[float, ...] = ()  # stored at evaluations; empty for older runs
    rejected_token_logps: tuple[float, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GenerationRecord:
    run_id: int
    step: int
    split: str
    pair_id: int
    direction: str
    model: str  # "base" or "adapter"
    text: str
    n_tokens: int
    truncated: bool


@dataclass(frozen=True)
class EvaluationRecord:
    id: int
    run_id: int
    step: str
    split: str
    base: bool
    max_new_tokens: int
    status: str
    done: int
    total: int | None
    evaluated_step: int | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    worker: str | None = None
    cancel_requested: bool = False
    traceback: str | None = None


@dataclass(frozen=True)
class StudyRecord:
    id: int
    name: str
    factors: dict[str, list[Any]]
    created_at: datetime
    run_ids: tuple[int, ...]


@dataclass(frozen=True)
class CheckpointRecord:
    run_id: int
    step: int
    path: str


@dataclass(frozen=True)
class BenchmarkRecord:
    """A benchmark job: what was asked (``limit`` items per language, None: all), the judge's
    estimated requests, and the lifecycle's columns."""

    id: int
    run_id: int
    step: str
    suite: str
    languages: tuple[str, ...]
    limit: int | None
    seed: int
    base: bool
    max_new_tokens: int
    temperature: float
    template: str
    judge_requests: int | None
    note: str | None
    status: str
    done: int
    total: int | None
    evaluated_step: int | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None = None
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    worker: str | None = None
    cancel_requested: bool = False
    traceback: str | None = None


@dataclass(frozen=True)
class BenchmarkGenerationRecord:
    benchmark_id: int
    language: str
    item_id: str
    arm: str  # "adapter" or "base"
    turn: int
    prompt: str
    output: str
    n_tokens: int
    truncated: bool
    max_new_tokens: int
    temperature: float
    seed: int
    template: str


@dataclass(frozen=True)
class BenchmarkScoreRecord:
    benchmark_id: int
    language: str
    item_id: str
    arm: str
    metric: str
    value: float | None
    detail: dict[str, Any]
