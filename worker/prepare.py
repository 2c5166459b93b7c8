"""One ``prepare_run`` for every way a run trains: in the worker's own process (``worker.execute``)
and in each rank of a data-parallel run (``worker.distributed_run``)."""

from __future__ import annotations

from dataclasses import dataclass

from capo.config import RunConfig
from capo.precision import resolve_bf16
from capo.train import TrainInputs
from capo_lab.database import Database
from capo_lab.datasets import get_dataset
from capo_lab.runs import DatabaseSink, base_fingerprint, resume_checkpoint, run_dir, split_pairs
from capo_lab.settings import Settings
from storage import queries


@dataclass(frozen=True)
class PreparedRun:
    """What ``capo.train.train`` takes: the config as trained, its inputs and the database sink."""

    config: RunConfig  # train.device and train.bf16 decided
    inputs: TrainInputs
    sink: DatabaseSink


def training_config(cfg: RunConfig, device: str | None = None) -> RunConfig:
    """``cfg`` on ``device`` when given (a rank's own GPU), with ``train.bf16: auto`` decided for its
    device, so that the base-score fingerprint says which precision the base was scored in."""
    if device:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"device": device})})
    return resolve_bf16(cfg)


def prepare_run(
    db: Database, settings: Settings, run_id: int, cfg: RunConfig, device: str | None = None
) -> PreparedRun:
    """The config as trained (``training_config``), the inputs (the resumed run's checkpoint,
    checked, and the base scores already stored under its fingerprint) and the sink that stores new
    base scores under that fingerprint."""
    cfg = training_config(cfg, device)
    inputs = run_inputs(db, settings, cfg, run_id)
    fingerprint = base_fingerprint(cfg, get_dataset(db, cfg.data.dataset).id)
    return PreparedRun(cfg, inputs, DatabaseSink(db, run_id, fingerprint))


def run_inputs(db: Database, settings: Settings, cfg: RunConfig, run_id: int) -> TrainInputs:
    """What ``capo.train`` needs for the run. A resumed run loads the checkpoint ``runs resume``
    chose, at the run's ``resumed_from_step``, checked again here (``resume_checkpoint``)."""
    resume_from = resume_checkpoint(db, run_id)
    with db.read() as session:
        fingerprint = base_fingerprint(cfg, get_dataset(db, cfg.data.dataset).id)
        base_scores = queries.base_scores(session, fingerprint)
    return TrainInputs(
        base_scores=base_scores,
        train_pairs=split_pairs(db, cfg, "train"),
        eval_pairs=split_pairs(db, cfg, "eval"),
        validation_pairs=split_pairs(db, cfg, "validation") if "validation" in cfg.train.eval_splits else [],
        run_dir=run_dir(settings, run_id),
        model_cache_dir=settings.home_dir / "models",
        resume_from=resume_from,
    )
