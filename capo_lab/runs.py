"""Run services: create runs, the trainer's inputs and its database sink, read scores, delete runs.

Training itself is started on the worker side (``worker/execute.py``); exports are
``capo_lab.exports``'s."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from capo.checkpoint_files import checkpoint_problem
from capo.config import RunConfig
from capo.schedule import planned_steps
from capo_lab.database import Database
from capo_lab.datasets import get_dataset, train_pair_count
from capo_lab.errors import LabError
from capo_lab.settings import Settings
from storage import deletions, queries, writes
from storage.records import (
    ACTIVE_STATUSES,
    CheckpointRecord,
    PairRecord,
    PairScoreRecord,
    RunRecord,
    RunStatus,
)

if TYPE_CHECKING:  # the trainer imports torch and transformers: only commands that train load it
    from sqlalchemy.orm import Session

    from capo.evaluation import PairScoreRow


def now() -> datetime:
    return datetime.now(UTC)


def base_fingerprint(cfg: RunConfig, dataset_id: int) -> str:
    """What base-model scores depend on: the dataset, model, precision, template, batching and row layout.

    Every run with the same fingerprint reuses the base scores the first one stored (TRL users
    ask for this: huggingface/trl#3985). The eval batch size is part of it because DPO's reference
    is scored batched exactly as the policy is evaluated, so that its first loss is ln 2 exactly."""
    key = {
        "dataset": dataset_id,
        "model": model_key(cfg),
        "bf16": cfg.train.bf16,
        "template": cfg.data.chat_template,
        "separator": cfg.data.response_separator,
        "max_length": cfg.data.max_length,
        "eval_batch_size": cfg.train.eval_batch_size or cfg.train.batch_size,
        "scoring": cfg.train.scoring,  # rows packed differently round differently in float32
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def model_key(cfg: RunConfig) -> dict[str, object]:
    """The model settings base scores depend on; a setting at its default that was added later (the
    attention kernel left to transformers) is left out, so older runs' base scores stay reusable."""
    model = cfg.model.model_dump(mode="json")
    if model.get("attn_implementation") == "auto":
        del model["attn_implementation"]
    return model


class DatabaseSink:
    """``capo.train.MetricSink`` writing to the lab database, one short transaction per call."""

    def __init__(self, db: Database, run_id: int, fingerprint: str = "") -> None:
        self.db, self.run_id, self.fingerprint = db, run_id, fingerprint

    def log_token_pieces(self, pieces: Mapping[int, tuple[list[str], list[str]]]) -> None:
        with self.db.write() as session:
            writes.add_token_pieces(session, self.run_id, dict(pieces))

    def log_base_scores(self, scores: Mapping[int, tuple[float, float]]) -> None:
        if self.fingerprint:
            with self.db.write() as session:
                writes.add_base_scores(session, self.fingerprint, dict(scores))

    def log_metrics(self, step: int, values: Mapping[str, float]) -> None:
        with self.db.write() as session:
            writes.add_metrics(session, self.run_id, [(step, k, v) for k, v in values.items()])

    def log_pair_scores(self, step: int, split: str, rows: Sequence[PairScoreRow]) -> None:
        with self.db.write() as session:
            writes.add_pair_scores(
                session, self.run_id, [{**vars(r), "step": step, "split": split} for r in rows]
            )

    def log_checkpoint(self, step: int, path: Path) -> None:
        with self.db.write() as session:
            writes.add_checkpoint(session, self.run_id, step, str(path))

    def log_progress(self, step: int, total_steps: int) -> None:
        with self.db.write() as session:
            writes.update_run(session, self.run_id, step=step, total_steps=total_steps, heartbeat_at=now())

    def log_note(self, message: str) -> None:
        with self.db.write() as session:
            writes.append_run_note(session, self.run_id, message)


def run_config(run: RunRecord, device: str | None = None) -> RunConfig:
    """The run's stored config; ``device`` (a worker's ``--device``) overrides ``train.device``."""
    cfg = RunConfig.model_validate(run.config)
    if device:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"device": device})})
    return cfg


def run_dir(settings: Settings, run_id: int) -> Path:
    return settings.home_dir / "runs" / str(run_id)


@dataclass(frozen=True)
class NewRun:
    """A run checked and ready to store: its config, its dataset's id and its planned total steps."""

    config: RunConfig
    dataset_id: int
    total_steps: int | None


def new_run(db: Database, cfg: RunConfig) -> NewRun:
    """Check that the run's dataset exists (``LabError`` naming it) and plan its total steps (the
    trainer's rule on the dataset's train pairs), so progress and an ETA show from the start."""
    dataset = get_dataset(db, cfg.data.dataset)
    return NewRun(cfg, dataset.id, planned_steps(cfg, train_pair_count(dataset, cfg.data.directions)) or None)


def add_run(session: Session, run: NewRun, study_id: int | None = None) -> int:
    """Store a checked run as ``queued`` inside the caller's transaction; returns its id."""
    config = run.config.model_dump(mode="json")
    run_id = writes.add_run(session, run.config.name, config, run.dataset_id, RunStatus.QUEUED, study_id)
    writes.update_run(session, run_id, total_steps=run.total_steps)
    return run_id


def create_run(db: Database, cfg: RunConfig, study_id: int | None = None) -> int:
    """A new ``queued`` run (``new_run`` then ``add_run``); ``capo_lab.lifecycle.submit`` creates runs."""
    checked = new_run(db, cfg)
    with db.write() as session:
        return add_run(session, checked, study_id)


def get_run(db: Database, run_id: int | str) -> RunRecord:
    if not str(run_id).isdigit():
        raise LabError(f"run ids are numbers, got {run_id!r}")
    with db.read() as session:
        run = queries.get_run(session, int(run_id))
    if run is None:
        raise LabError(f"no run {run_id}; see `capo-lab runs list`")
    return run


def list_runs(db: Database) -> list[RunRecord]:
    with db.read() as session:
        return queries.list_runs(session)


def loadable_checkpoint(
    db: Database, run_id: int, at_or_before: int | None = None
) -> tuple[CheckpointRecord | None, list[str]]:
    """The run's newest checkpoint (at or before ``at_or_before``) whose folder is there and whose
    files read whole (``capo.checkpoint_files.checkpoint_problem``), and one line per newer one passed
    over saying its step and why; (None, lines) when none loads."""
    skipped: list[str] = []
    bound = at_or_before
    while True:
        with db.read() as session:
            found = queries.checkpoint_at_or_before(session, run_id, bound)
        if found is None:
            return None, skipped
        problem = checkpoint_problem(Path(found.path))
        if problem is None:
            return found, skipped
        skipped.append(f"skipped the checkpoint at step {found.step}: {problem}")
        bound = found.step - 1


def resume_checkpoint(db: Database, run_id: int) -> Path | None:
    """The checkpoint a resumed run loads: its checkpoint at ``resumed_from_step`` (None: from the
    start). ``LabError`` when that one no longer loads (it changed after ``runs resume`` chose it):
    the run then fails with that line, and resuming it again skips it."""
    step = get_run(db, run_id).resumed_from_step
    if step is None:
        return None
    with db.read() as session:
        found = queries.checkpoint_at_or_before(session, run_id, step)
    if found is None or found.step != step:
        raise LabError(f"run {run_id} has no checkpoint at step {step} any more; resume it again")
    problem = checkpoint_problem(Path(found.path))
    if problem is not None:
        raise LabError(
            f"the checkpoint at step {step} no longer loads ({problem}); resume run {run_id} again to skip it"
        )
    return Path(found.path)


def split_pairs(db: Database, cfg: RunConfig, split: str) -> list[PairRecord]:
    dataset = get_dataset(db, cfg.data.dataset)
    with db.read() as session:
        pairs = queries.list_pairs(session, dataset.id, split=split)
    if cfg.data.directions:
        pairs = [p for p in pairs if p.direction in set(cfg.data.directions)]
    return pairs


OOM_HINT = (
    "out of memory: try a smaller train.batch_size, model.load_in_4bit=true or a shorter data.max_length"
)


def failure_message(err: BaseException) -> str:
    """The error in one line (its type and message, whitespace collapsed), with a hint for out of memory."""
    message = " ".join(f"{type(err).__name__}: {err}".split())
    return f"{message} ({OOM_HINT})" if "out of memory" in str(err).lower() else message


def final_metric(db: Database, run_id: int, key: str) -> float | None:
    """``key``'s value at the last step that logged it; None when never logged."""
    with db.read() as session:
        values = [m for m in queries.metrics(session, run_id) if m.key == key]
    return max(values, key=lambda m: m.step).value if values else None


def resolve_step(db: Database, run_id: int, split: str, step: str) -> int:
    """``first``, ``last`` or a number → a step at which ``split`` scores exist."""
    with db.read() as session:
        steps = queries.score_steps(session, run_id, split)
    if not steps:
        raise LabError(f"run {run_id} has no {split} pair scores yet")
    if step in ("first", "last"):
        return steps[0] if step == "first" else steps[-1]
    if not step.isdigit() or int(step) not in steps:
        raise LabError(f"no {split} scores at step {step!r}; stored steps: {', '.join(map(str, steps))}")
    return int(step)


def pair_scores(
    db: Database, run_id: int | str, split: str = "train", step: str = "last"
) -> list[PairScoreRecord]:
    run = get_run(db, run_id)
    at = resolve_step(db, run.id, split, step)
    with db.read() as session:
        return queries.pair_scores(session, run.id, split, at)


# ---- deletes: a run goes with every row of its own and its folder (checkpoints) ---------------------
ACTIVE = ACTIVE_STATUSES
EVALUATION_ACTIVE = ACTIVE_STATUSES  # an evaluation follows the same lifecycle


@dataclass(frozen=True)
class Deletion:
    """What a delete removed: the runs (and the study, for a study), the folders removed from disk, and
    the folders that could not be removed, each with the reason."""

    run_ids: tuple[int, ...]
    removed: tuple[str, ...]
    left: tuple[str, ...] = ()
    study: str | None = None


def deletion_refusal(session: Session, run_ids: Collection[int]) -> str | None:
    """Why these runs cannot be deleted now (one line), or None: a run missing, queued or running,
    or with a translation evaluation still queued or running."""
    statuses = queries.run_statuses(session, run_ids)
    for run_id in run_ids:
        if run_id not in statuses:
            return f"no run {run_id}; see `capo-lab runs list`"
        if statuses[run_id] in ACTIVE:
            return f"run {run_id} is {statuses[run_id]}; cancel it first, then delete it once it has stopped"
    for run_id in run_ids:
        busy = [e for e in queries.evaluations(session, run_id) if e.status in EVALUATION_ACTIVE]
        if busy:
            job = busy[-1]
            return f"run {run_id} has a translation evaluation {job.status} (job {job.id}); wait for it"
    return None


def check_deletable(db: Database, run_ids: Iterable[int | str], prefix: str = "") -> list[RunRecord]:
    """The runs, or ``LabError`` (``prefix`` + one line) if one cannot be deleted now."""
    found = [get_run(db, r) for r in run_ids]
    with db.read() as session:
        refusal = deletion_refusal(session, [r.id for r in found])
    if refusal:
        raise LabError(prefix + refusal)
    return found


def lock_for_deletion(session: Session, run_ids: Collection[int], prefix: str = "") -> None:
    """Lock the runs in the caller's write transaction, so that no worker claims one before it is
    deleted; ``LabError`` (the transaction then rolls back) if one cannot be deleted any more."""
    locked = deletions.lock_runs(session, run_ids, unless=ACTIVE)
    refusal = deletion_refusal(session, run_ids)
    if not locked or refusal:
        raise LabError(prefix + (refusal or "the runs changed meanwhile; try again"))


def delete_runs(db: Database, settings: Settings, run_ids: Iterable[int | str]) -> Deletion:
    """Delete finished runs with their metrics, pair scores, generations, evaluations, token pieces and
    checkpoints, then their folders; refused, with nothing deleted, while one is queued or running."""
    ids = [r.id for r in check_deletable(db, run_ids)]
    with db.write() as session:
        lock_for_deletion(session, ids)
        paths = deletions.delete_runs(session, ids)
    return Deletion(tuple(ids), *remove_folders(settings, ids, paths))


def remove_folders(
    settings: Settings, run_ids: Iterable[int], checkpoints: Iterable[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Remove the runs' folders, and any checkpoint folder (``checkpoints/step-…``) stored outside
    them; returns (removed, not removable with the reason)."""
    folders = [run_dir(settings, r) for r in run_ids]
    for path in map(Path, checkpoints):
        named = path.parent.name == "checkpoints" and path.name.startswith("step-")
        if named and not any(path.is_relative_to(f) for f in folders):
            folders.append(path)
    removed, left = [], []
    for folder in (f for f in folders if f.exists()):
        try:
            shutil.rmtree(folder)
            removed.append(str(folder))
        except OSError as err:
            left.append(f"{folder}: {err.strerror or err}")
    return tuple(removed), tuple(left)
