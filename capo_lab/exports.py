"""Exports: a run's adapter at one step as a folder ``PeftModel.from_pretrained`` loads, with its model
card, config, dataset provenance and metrics, or as a zip under ``$CAPO_LAB_HOME/exports``."""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from capo.checkpoint_files import checkpoint_problem
from capo.config import RunConfig
from capo_lab.database import Database
from capo_lab.datasets import dataset_fingerprint
from capo_lab.errors import LabError
from capo_lab.runs import get_run, now
from capo_lab.settings import Settings
from storage import queries
from storage.records import CheckpointRecord, RunRecord, RunStatus

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
