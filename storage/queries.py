"""Every select the lab runs. Each takes a Session and returns plain records."""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlalchemy.orm import Session

from storage.models import (
    JOB_MODELS,
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
)
from storage.records import (
    BenchmarkGenerationRecord,
    BenchmarkRecord,
    BenchmarkScoreRecord,
    CheckpointRecord,
    DatasetInfo,
    EvaluationRecord,
    GenerationRecord,
    JobKind,
    JobState,
    MetricRow,
    PairRecord,
    PairScoreRecord,
    RunRecord,
    StudyRecord,
)


def _split_counts(session: Session, dataset_ids: list[int]) -> dict[int, dict[str, dict[str, int]]]:
    rows = session.execute(
        select(Pair.dataset_id, Pair.direction, Pair.split, func.count())
        .where(Pair.dataset_id.in_(dataset_ids))
        .group_by(Pair.dataset_id, Pair.direction, Pair.split)
    )
    counts: dict[int, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for dataset_id, direction, split, n in rows:
        counts[dataset_id][direction][split] = n
    return counts


def _info(dataset: Dataset, counts: dict[str, dict[str, int]]) -> DatasetInfo:
    return DatasetInfo(
        id=dataset.id,
        name=dataset.name,
        created_at=dataset.created_at,
        pair_count=sum(n for per_split in counts.values() for n in per_split.values()),
        counts={d: dict(s) for d, s in counts.items()},
        sources=list(dataset.sources),
        build_options=dict(dataset.build_options),
        report=dict(dataset.report),
    )


def list_datasets(session: Session) -> list[DatasetInfo]:
    datasets = session.scalars(select(Dataset).order_by(Dataset.id)).all()
    counts = _split_counts(session, [d.id for d in datasets])
    return [_info(d, counts.get(d.id, {})) for d in datasets]


def find_dataset(session: Session, name_or_id: str | int) -> DatasetInfo | None:
    """A dataset by id when given an int; by exact name, else by id, when given a string."""
    if isinstance(name_or_id, int):
        dataset = session.get(Dataset, name_or_id)
    else:
        dataset = session.scalar(select(Dataset).where(Dataset.name == name_or_id))
    if dataset is None and isinstance(name_or_id, str) and name_or_id.isdigit():
        dataset = session.get(Dataset, int(name_or_id))
    if dataset is None:
        return None
    return _info(dataset, _split_counts(session, [dataset.id]).get(dataset.id, {}))


def dataset_name_taken(session: Session, name: str) -> bool:
    return session.scalar(select(func.count()).where(Dataset.name == name)) > 0


def list_pairs(
    session: Session, dataset_id: int, split: str | None = None, direction: str | None = None
) -> list[PairRecord]:
    query = select(Pair).where(Pair.dataset_id == dataset_id)
    if split:
        query = query.where(Pair.split == split)
    if direction:
        query = query.where(Pair.direction == direction)
    pairs = session.scalars(query.order_by(Pair.direction, Pair.split, Pair.position))
    return [_pair_record(p) for p in pairs]


def get_pairs(session: Session, pair_ids: list[int]) -> list[PairRecord]:
    pairs = session.scalars(select(Pair).where(Pair.id.in_(pair_ids)).order_by(Pair.id))
    return [_pair_record(p) for p in pairs]


def _pair_record(p: Pair) -> PairRecord:
    return PairRecord(
        pair_id=p.id,
        dataset_id=p.dataset_id,
        split=p.split,
        direction=p.direction,
        position=p.position,
        prompt=p.prompt,
        chosen=p.chosen,
        rejected=p.rejected,
        source_text=p.source_text,
        hter=p.hter,
        origin=p.origin,
        tie=bool(p.tie),
    )


def get_run(session: Session, run_id: int) -> RunRecord | None:
    run = session.get(Run, run_id)
    return _run_record(run) if run is not None else None


def list_runs(session: Session) -> list[RunRecord]:
    return [_run_record(r) for r in session.scalars(select(Run).order_by(Run.id))]


def run_statuses(session: Session, run_ids: Collection[int]) -> dict[int, str]:
    """Each of these runs' status (runs that do not exist are left out)."""
    rows = session.execute(select(Run.id, Run.status).where(Run.id.in_(list(run_ids))))
    return {run_id: status for run_id, status in rows}


def _run_record(run: Run) -> RunRecord:
    return RunRecord(
        id=run.id,
        name=run.name,
        config=dict(run.config),
        status=run.status,
        dataset_id=run.dataset_id,
        study_id=run.study_id,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        heartbeat_at=run.heartbeat_at,
        step=run.step,
        total_steps=run.total_steps,
        resumed_from_step=run.resumed_from_step,
        error=run.error,
        traceback=run.traceback,
        notes=list(run.notes or []),
        cancel_requested=bool(run.cancel_requested),
        worker=run.worker,
        device=run.device,
    )


def metrics(session: Session, run_id: int, after_step: int = -1) -> list[MetricRow]:
    """Metric rows of a run with step > ``after_step``, in step order."""
    query = select(Metric.step, Metric.key, Metric.value).where(
        Metric.run_id == run_id, Metric.step > after_step
    )
    return [MetricRow(*row) for row in session.execute(query.order_by(Metric.step, Metric.id))]


@dataclass(frozen=True)
class MetricsAfter:
    """One run's metric rows after a cursor, in step order, and the (step, row id) of the last one."""

    rows: tuple[MetricRow, ...]
    last: tuple[int, int]


def _key_filter(keys: Collection[str]) -> ColumnElement[bool]:
    """``key`` is one of ``keys``; a key ending in ``/*`` stands for every key under it."""
    exact = [k for k in keys if not k.endswith("/*")]
    under = [Metric.key.startswith(k[:-1], autoescape=True) for k in keys if k.endswith("/*")]
    return or_(Metric.key.in_(exact), *under) if exact or under else false()


def _after(seen: Mapping[int, tuple[int, int]]) -> ColumnElement[bool]:
    """Rows of each run in ``seen`` at or after its step with a larger id than its row id: one range of
    ``ix_metrics_run_step`` per run. A run logs one write at a time, so its later rows have larger ids."""
    return or_(
        *(
            and_(Metric.run_id == run_id, Metric.step >= step, Metric.id > row_id)
            for run_id, (step, row_id) in seen.items()
        )
    )


def metrics_after(
    session: Session, seen: Mapping[int, tuple[int, int]], keys: Collection[str]
) -> dict[int, MetricsAfter]:
    """In one statement, the rows of ``keys`` that each run in ``seen`` logged after the (step, row id)
    of the last row already read (runs with none are left out). A step logged in two writes (its
    training batch, then its evaluation) is read whole: rows logged later at the last step read come too."""
    if not seen:
        return {}
    query = select(Metric.run_id, Metric.id, Metric.step, Metric.key, Metric.value)
    query = query.where(_after(seen), _key_filter(keys)).order_by(Metric.run_id, Metric.step, Metric.id)
    found: dict[int, list[MetricRow]] = defaultdict(list)
    last: dict[int, tuple[int, int]] = {}
    for run_id, row_id, step, key, value in session.execute(query):
        found[run_id].append(MetricRow(step, key, value))
        last[run_id] = (step, row_id)
    return {run_id: MetricsAfter(tuple(rows), last[run_id]) for run_id, rows in found.items()}


def score_steps(session: Session, run_id: int, split: str) -> list[int]:
    """Steps at which pair scores of ``split`` were stored, ascending."""
    query = select(PairScore.step).where(PairScore.run_id == run_id, PairScore.split == split).distinct()
    return sorted(session.scalars(query))


def pair_scores(session: Session, run_id: int, split: str, step: int) -> list[PairScoreRecord]:
    query = (
        select(PairScore)
        .where(PairScore.run_id == run_id, PairScore.split == split, PairScore.step == step)
        .order_by(PairScore.pair_id)
    )
    return [_score_record(s) for s in session.scalars(query)]


def pair_history(session: Session, run_id: int, pair_id: int) -> list[PairScoreRecord]:
    query = select(PairScore).where(PairScore.run_id == run_id, PairScore.pair_id == pair_id)
    return [_score_record(s) for s in session.scalars(query.order_by(PairScore.step))]


def _score_record(s: PairScore) -> PairScoreRecord:
    return PairScoreRecord(
        run_id=s.run_id,
        step=s.step,
        split=s.split,
        pair_id=s.pair_id,
        direction=s.direction,
        logp_chosen=s.logp_chosen,
        logp_rejected=s.logp_rejected,
        n_tokens_chosen=s.n_tokens_chosen,
        n_tokens_rejected=s.n_tokens_rejected,
        ref_logp_chosen=s.ref_logp_chosen,
        ref_logp_rejected=s.ref_logp_rejected,
        rrm=s.rrm,
        loss=s.loss,
        reward_margin=s.reward_margin,
        grad_chosen=dict(s.grad_chosen),
        grad_rejected=dict(s.grad_rejected),
        tie=bool(s.tie),
        chosen_token_logps=unpack_floats(s.chosen_token_logps),
        rejected_token_logps=unpack_floats(s.rejected_token_logps),
    )


def generations(session: Session, run_id: int, split: str, step: int) -> list[GenerationRecord]:
    rows = session.scalars(
        select(Generation)
        .where(Generation.run_id == run_id, Generation.split == split, Generation.step == step)
        .order_by(Generation.pair_id, Generation.model)
    )
    return [
        GenerationRecord(
            g.run_id, g.step, g.split, g.pair_id, g.direction, g.model, g.text, g.n_tokens, g.truncated
        )
        for g in rows
    ]


def evaluations(session: Session, run_id: int) -> list[EvaluationRecord]:
    """A run's evaluation jobs, newest first."""
    query = select(Evaluation).where(Evaluation.run_id == run_id).order_by(Evaluation.id.desc())
    return [_evaluation_record(e) for e in session.scalars(query)]


def get_evaluation(session: Session, evaluation_id: int) -> EvaluationRecord | None:
    found = session.get(Evaluation, evaluation_id)
    return _evaluation_record(found) if found is not None else None


def _evaluation_record(e: Evaluation) -> EvaluationRecord:
    return EvaluationRecord(
        e.id, e.run_id, e.step, e.split, e.base, e.max_new_tokens, e.status, e.done, e.total,
        e.evaluated_step, e.error, e.created_at, e.finished_at, e.started_at, e.heartbeat_at,
        e.worker, bool(e.cancel_requested), e.traceback,
    )  # fmt: skip


def benchmarks(session: Session, run_id: int) -> list[BenchmarkRecord]:
    """A run's benchmark jobs, newest first."""
    query = select(Benchmark).where(Benchmark.run_id == run_id).order_by(Benchmark.id.desc())
    return [_benchmark_record(b) for b in session.scalars(query)]


def get_benchmark(session: Session, benchmark_id: int) -> BenchmarkRecord | None:
    found = session.get(Benchmark, benchmark_id)
    return _benchmark_record(found) if found is not None else None


def _benchmark_record(b: Benchmark) -> BenchmarkRecord:
    return BenchmarkRecord(
        b.id, b.run_id, b.step, b.suite, tuple(b.languages), b.limit, b.seed, b.base, b.max_new_tokens,
        b.temperature, b.template, b.judge_requests, b.note, b.status, b.done, b.total, b.evaluated_step,
        b.error, b.created_at, b.finished_at, b.started_at, b.heartbeat_at, b.worker,
        bool(b.cancel_requested), b.traceback,
    )  # fmt: skip


def benchmark_generations(session: Session, benchmark_id: int) -> list[BenchmarkGenerationRecord]:
    """A benchmark job's answers, by language, item, arm and turn."""
    g = BenchmarkGeneration
    query = select(g).where(g.benchmark_id == benchmark_id).order_by(g.language, g.item_id, g.arm, g.turn)
    return [
        BenchmarkGenerationRecord(
            r.benchmark_id,
            r.language,
            r.item_id,
            r.arm,
            r.turn,
            r.prompt,
            r.output,
            r.n_tokens,
            bool(r.truncated),
            r.max_new_tokens,
            r.temperature,
            r.seed,
            r.template,
        )  # fmt: skip
        for r in session.scalars(query)
    ]


def benchmark_scores(session: Session, benchmark_id: int) -> list[BenchmarkScoreRecord]:
    s = BenchmarkScore
    query = select(s).where(s.benchmark_id == benchmark_id).order_by(s.language, s.item_id, s.arm, s.metric)
    return [
        BenchmarkScoreRecord(r.benchmark_id, r.language, r.item_id, r.arm, r.metric, r.value, dict(r.detail))
        for r in session.scalars(query)
    ]


def judge_reply(session: Session, key: str) -> str | None:
    return session.scalar(select(JudgeReply.reply).where(JudgeReply.key == key))


def job_state(session: Session, kind: JobKind, job_id: int) -> JobState | None:
    """A job's status and whether it was asked to stop; None when there is no such job."""
    model = JOB_MODELS[kind]
    row = session.execute(select(model.status, model.cancel_requested).where(model.id == job_id)).first()
    return None if row is None else JobState(row.status, bool(row.cancel_requested))


def studies(session: Session) -> list[StudyRecord]:
    return [_study_record(session, s) for s in session.scalars(select(Study).order_by(Study.id))]


def find_study(session: Session, name_or_id: str | int) -> StudyRecord | None:
    key = str(name_or_id)
    query = (
        select(Study).where(Study.id == int(key)) if key.isdigit() else select(Study).where(Study.name == key)
    )
    found = session.scalar(query)
    return _study_record(session, found) if found is not None else None


def _study_record(session: Session, s: Study) -> StudyRecord:
    run_ids = tuple(session.scalars(select(Run.id).where(Run.study_id == s.id).order_by(Run.id)))
    return StudyRecord(s.id, s.name, dict(s.factors), s.created_at, run_ids)


def generation_steps(session: Session, run_id: int, split: str) -> list[int]:
    query = select(Generation.step).where(Generation.run_id == run_id, Generation.split == split).distinct()
    return sorted(session.scalars(query))


def unpack_floats(blob: bytes | None) -> tuple[float, ...]:
    """A float32 array stored by ``writes.pack_floats``; empty for none."""
    return tuple(array("f", blob)) if blob else ()


def token_pieces(session: Session, run_id: int, pair_id: int) -> tuple[list[str], list[str]] | None:
    row = session.scalar(
        select(TokenPieces).where(TokenPieces.run_id == run_id, TokenPieces.pair_id == pair_id)
    )
    return (list(row.chosen), list(row.rejected)) if row is not None else None


def latest_checkpoint(session: Session, run_id: int) -> CheckpointRecord | None:
    return checkpoint_at_or_before(session, run_id, step=None)


def base_scores(session: Session, fingerprint: str) -> dict[int, tuple[float, float]]:
    rows = session.execute(
        select(BaseScore.pair_id, BaseScore.logp_chosen, BaseScore.logp_rejected).where(
            BaseScore.fingerprint == fingerprint
        )
    )
    return {pid: (chosen, rejected) for pid, chosen, rejected in rows}


def checkpoint_steps(session: Session, run_id: int) -> list[int]:
    return sorted(session.scalars(select(Checkpoint.step).where(Checkpoint.run_id == run_id)))


def checkpoint_at_or_before(session: Session, run_id: int, step: int | None) -> CheckpointRecord | None:
    """The run's latest checkpoint taken at or before ``step`` (any step when None)."""
    query = select(Checkpoint).where(Checkpoint.run_id == run_id)
    if step is not None:
        query = query.where(Checkpoint.step <= step)
    query = query.order_by(Checkpoint.step.desc()).limit(1)
    found = session.scalar(query)
    return CheckpointRecord(found.run_id, found.step, found.path) if found is not None else None
