"""Run services: create runs, the trainer's inputs and its database sink, read scores, export adapters.

Training itself is started on the worker side (``worker/execute.py``)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from capo.checkpoint_files import checkpoint_problem
from capo.config import RunConfig
from capo.schedule import planned_steps
from capo_lab.database import Database
from capo_lab.datasets import dataset_fingerprint, get_dataset, train_pair_count
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


ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
EXPORTS_KEPT = timedelta(days=1)


@dataclass(frozen=True)
class ExportedRun:
    """Where an export went, and what it holds: the run's status then and its adapter's step."""

    path: Path
    run_id: int
    status: str
    step: int


def export_checkpoint(db: Database, run: RunRecord, step: int | None) -> CheckpointRecord:
    """The checkpoint an export takes: a finished run's last one, or the one at ``step``.

    A run that has not finished (queued, running, interrupted, cancelled, failed) is refused
    without a step: its newest checkpoint may be older than its newest metrics, and a running run
    saves newer ones while it is copied. A checkpoint that does not load whole is refused too."""
    with db.read() as session:
        steps = sorted(set(queries.checkpoint_steps(session, run.id)))
    have = f"its checkpoint steps: {', '.join(map(str, steps))}" if steps else "it has no checkpoint yet"
    if step is None and run.status != RunStatus.SUCCEEDED:
        raise LabError(
            f"run {run.id} is {run.status}, not finished; export one of its checkpoints by step ({have})"
        )
    if step is not None and step not in steps:
        raise LabError(f"run {run.id} has no checkpoint at step {step} ({have})")
    with db.read() as session:
        checkpoint = queries.checkpoint_at_or_before(session, run.id, step)
    if checkpoint is None:
        raise LabError(f"run {run.id} has no checkpoint to export (status {run.status})")
    problem = checkpoint_problem(Path(checkpoint.path))
    if problem is not None:
        raise LabError(
            f"run {run.id}'s checkpoint at step {checkpoint.step} does not load ({problem}); {have}"
        )
    return checkpoint


def export_run(
    db: Database, run_id: int | str, out: Path, step: int | None = None, settings: Settings | None = None
) -> ExportedRun:
    """A folder that ``PeftModel.from_pretrained(base, out)`` loads, plus README.md (the model card,
    ``capo_lab.model_card``), run_config.json and metrics.csv.

    A finished run exports its last checkpoint; any run exports the checkpoint at ``step``, and its
    metrics.csv then stops at that step (``export_checkpoint`` says what is refused). The adapter's
    ``base_model_name_or_path`` is the run's ``model.name_or_path`` (a hub id or the embedded model's
    name), not the local cache folder the trainer loaded it from; run_config.json holds the run's
    config, its dataset (name, sources, import options and fingerprint) and ``run``: its id, name,
    status and step when exported, and ``adapter_step``, the step the adapter was saved at. Nothing
    is left in ``out`` when the export fails. ``settings`` (default: the environment's) says where the
    lab keeps the embedded base model, which the card names."""
    run = get_run(db, run_id)
    checkpoint = export_checkpoint(db, run, step)
    with db.read() as session:
        metric_rows = queries.metrics(session, run.id)
    if step is not None:
        metric_rows = [m for m in metric_rows if m.step <= step]
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise LabError(f"{out} exists and is not empty; choose another folder")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        _write_export(db, run, checkpoint, metric_rows, out)
        from capo_lab.model_card import card_facts, model_card  # scipy, huggingface_hub: only here

        models = (settings or Settings()).home_dir / "models"
        facts = card_facts(db, run, checkpoint.step, metric_rows, dataset_provenance(db, run), models)
        model_card(facts).save(out / "README.md")
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for child in out.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
    return ExportedRun(out, run.id, str(run.status), checkpoint.step)


def _write_export(db: Database, run: RunRecord, checkpoint: CheckpointRecord, metric_rows, out: Path) -> None:
    cfg = RunConfig.model_validate(run.config)
    try:
        for name in ADAPTER_FILES:
            shutil.copy2(Path(checkpoint.path) / name, out / name)
    except OSError as err:  # replaced or removed while it was copied (a resumed run saving that step again)
        raise LabError(
            f"run {run.id}'s checkpoint at step {checkpoint.step} changed while it was copied "
            f"({err.strerror or err}); try again"
        ) from None
    adapter = json.loads((out / "adapter_config.json").read_text())
    adapter["base_model_name_or_path"] = cfg.model.name_or_path
    (out / "adapter_config.json").write_text(json.dumps(adapter, indent=2))
    exported = {
        "config": cfg.model_dump(mode="json"),
        "dataset": dataset_provenance(db, run),
        "run": {
            "id": run.id,
            "name": run.name,
            "status": str(run.status),
            "step": run.step,
            "adapter_step": checkpoint.step,
        },
    }
    (out / "run_config.json").write_text(json.dumps(exported, indent=2, ensure_ascii=False))
    with (out / "metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "key", "value"])
        writer.writerows((m.step, m.key, m.value) for m in metric_rows)


def exports_dir(settings: Settings) -> Path:
    """Where the UI's zips go: ``$CAPO_LAB_HOME/exports`` (served from there, never copied to /tmp)."""
    return settings.home_dir / "exports"


def export_zip(db: Database, settings: Settings, run_id: int | str, step: int | None = None) -> ExportedRun:
    """``export_run`` as a zip holding one folder, ``capo-lab-run-<id>/``, written to its own folder
    under ``exports_dir`` (``…/<time>-<random>/capo-lab-run-<id>-step-<N>.zip``). Exports older than
    a day are removed first; the unzipped copy is built in a temporary folder beside it that is
    always removed, and a refused export leaves nothing."""
    run = get_run(db, run_id)
    root = exports_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    remove_old_exports(root)
    folder = Path(tempfile.mkdtemp(prefix=now().strftime("%Y%m%d-%H%M%S-"), dir=root))
    inner = f"capo-lab-run-{run.id}"
    try:
        with tempfile.TemporaryDirectory(prefix=".building-", dir=folder) as work:
            done = export_run(db, run.id, Path(work) / inner, step, settings)
            archive = shutil.make_archive(str(Path(work) / inner), "zip", root_dir=work, base_dir=inner)
            target = folder / f"{inner}-step-{done.step}.zip"
            os.replace(archive, target)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return ExportedRun(target, done.run_id, done.status, done.step)


def remove_old_exports(root: Path, older_than: timedelta = EXPORTS_KEPT) -> list[Path]:
    """Remove what ``export_zip`` left in ``root`` more than ``older_than`` ago; returns what went.
    An entry another process removes meanwhile is skipped."""
    threshold = (now() - older_than).timestamp()
    removed = []
    for entry in root.iterdir():
        try:
            if entry.lstat().st_mtime >= threshold:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:  # removed by another export meanwhile, or not ours to remove: kept
            continue
        removed.append(entry)
    return removed


def dataset_provenance(db: Database, run: RunRecord) -> dict[str, object] | None:
    """What rebuilds the run's dataset elsewhere: its sources and import options, and the fingerprint
    of its pairs to check the rebuild against; None when the dataset is gone."""
    with db.read() as session:
        info = queries.find_dataset(session, run.dataset_id) if run.dataset_id is not None else None
    if info is None:
        return None
    return {
        "name": info.name,
        "sources": info.sources,
        "import_options": info.build_options,
        "pairs": info.pair_count,
        "counts": info.counts,
        "fingerprint": {"sha256": dataset_fingerprint(db, info.id)},
    }


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
