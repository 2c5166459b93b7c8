"""``train.report_to``: every metric row a run writes, mirrored to the researcher's own trackers.

``TrackerSink`` is a ``capo.train.MetricSink`` that sends metric rows, under TRL's key names
(``trl_key``), to each chosen tracker; everything else a sink receives stays with the lab. Each
tracker run carries the lab's run config flattened to parameters (``flat_params``), the run's name
and id. Files stay local unless the user says otherwise:

- tensorboard: event files in ``<run folder>/tensorboard``;
- mlflow: ``MLFLOW_TRACKING_URI`` when set, else an SQLite store at ``<lab home>/mlflow/mlflow.db``
  (MLflow 3 refuses its old ``./mlruns`` file store), experiment ``capo-lab``;
- trackio: its local project ``capo-lab`` (trackio's own folder: ``TRACKIO_DIR``, else
  ``~/.cache/huggingface/trackio``);
- wandb: ``<run folder>/wandb``, offline unless the user has logged in (``WANDB_API_KEY`` or a
  netrc entry for api.wandb.ai) or set ``WANDB_MODE``; a resumed run goes on in its W&B run
  (``wandb_run_id``).

A tracker that fails, when it opens or later, is reported once through ``note`` and dropped; the run
goes on. Each tracker's library is imported only when it is chosen.
"""

from __future__ import annotations

import json
import netrc
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

PROJECT = "capo-lab"  # the MLflow experiment, trackio project and W&B project runs are filed under
# Held-out splits the trainer evaluates besides ``eval`` (capo.train's ``evaluate``): TRL names a
# dict of eval datasets ``eval_<name>_<metric>``, which transformers' ``rewrite_logs`` makes ``eval/…``.
OTHER_EVAL_SPLITS = ("validation_", "train_")
MLFLOW_BATCH = 100  # MLflow takes at most 100 params (and 1,000 metrics) in one log_batch call


def trl_key(key: str) -> str:
    """The lab's metric key as TRL's trainers log it to trackers (transformers' ``rewrite_logs``): the
    eval split's ``eval_loss`` → ``eval/loss``; another split's ``validation_loss`` →
    ``eval/validation_loss``; a training step's ``rewards/accuracies`` → ``train/rewards/accuracies``."""
    if key.startswith("eval_"):
        return "eval/" + key.removeprefix("eval_")
    if key.startswith(OTHER_EVAL_SPLITS):
        return "eval/" + key
    return "train/" + key


def flat_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str | int | float | bool]:
    """A nested config as ``section.key`` parameters; a list is its JSON text, None is ``"None"``."""
    flat: dict[str, str | int | float | bool] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flat_params(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = json.dumps(list(value))
        else:
            flat[name] = "None" if value is None else value
    return flat


@dataclass(frozen=True)
class TrackedRun:
    """What a tracker run is named after and where its local files go."""

    run_id: int
    name: str
    config: Mapping[str, Any]  # the run's config as JSON (RunConfig.model_dump(mode="json"))
    run_dir: Path  # the lab's run folder: TensorBoard's and W&B's files go under it
    home: Path  # the lab home: the MLflow store goes under it

    @property
    def title(self) -> str:
        """How every tracker names the run: the lab's ``#id name``."""
        return f"#{self.run_id} {self.name}"

    def params(self) -> dict[str, str | int | float | bool]:
        return {**flat_params(self.config), "capo_lab.run_id": self.run_id, "capo_lab.run_name": self.name}


class Tracker(Protocol):
    def log(self, step: int, values: Mapping[str, float]) -> None: ...
    def close(self) -> None: ...


class TensorBoardTracker:
    def __init__(self, run: TrackedRun) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        self.writer = SummaryWriter(log_dir=str(run.run_dir / "tensorboard"))
        self.writer.add_text("run", run.title)
        self.writer.add_text("config", f"```\n{json.dumps(run.config, indent=2)}\n```")
        for summary in hparams(run.params(), {}):  # the HParams tab's record, in this run's folder
            self.writer.file_writer.add_summary(summary)
        self.writer.flush()

    def log(self, step: int, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class MlflowTracker:
    def __init__(self, run: TrackedRun) -> None:
        from mlflow import MlflowClient

        uri, artifacts = mlflow_store(run.home)
        self.client = MlflowClient(tracking_uri=uri)
        experiment = self.client.get_experiment_by_name(PROJECT)
        experiment_id = (
            experiment.experiment_id if experiment else self.client.create_experiment(PROJECT, artifacts)
        )
        tags = {"capo_lab.run_id": str(run.run_id), "capo_lab.home": str(run.home)}
        same_run = " and ".join(f"tags.`{key}` = '{value}'" for key, value in tags.items())
        found = self.client.search_runs([experiment_id], filter_string=same_run, max_results=1)
        if found:  # a resumed run goes on in the MLflow run it started
            self.run_id = found[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            return
        tags["capo_lab.run_name"] = run.name
        self.run_id = self.client.create_run(experiment_id, run_name=run.title, tags=tags).info.run_id
        self._log_params(run.params())

    def _log_params(self, params: Mapping[str, str | int | float | bool]) -> None:
        from mlflow.entities import Param

        items = [Param(key, str(value)) for key, value in params.items()]
        for start in range(0, len(items), MLFLOW_BATCH):
            self.client.log_batch(self.run_id, params=items[start : start + MLFLOW_BATCH])

    def log(self, step: int, values: Mapping[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(key, float(value), now, step) for key, value in values.items()]
        for start in range(0, len(items), 10 * MLFLOW_BATCH):
            self.client.log_batch(self.run_id, metrics=items[start : start + 10 * MLFLOW_BATCH])

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def mlflow_store(home: Path) -> tuple[str, str | None]:
    """The tracking URI and a new experiment's artifact folder: ``MLFLOW_TRACKING_URI`` and MLflow's
    own default when the user set one, else the lab home's SQLite store and ``mlflow/artifacts`` beside
    it (MLflow's default would be ``./mlruns`` in whatever folder the worker started in)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"], None
    folder = home / "mlflow"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()


class TrackioTracker:
    def __init__(self, run: TrackedRun) -> None:
        import trackio

        self.run = trackio.init(
            project=PROJECT, name=run.title, config=run.params(), resume="allow",
            auto_log_gpu=False, auto_log_cpu=False,
        )  # fmt: skip

    def log(self, step: int, values: Mapping[str, float]) -> None:
        self.run.log(dict(values), step=step)

    def close(self) -> None:
        self.run.finish()


class WandbTracker:
    def __init__(self, run: TrackedRun) -> None:
        import wandb

        quiet = wandb.Settings(console="off", quiet=True, silent=True, disable_git=True, x_disable_stats=True)
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", PROJECT), name=run.title, config=run.params(),
            dir=str(run.run_dir), mode=wandb_mode(), settings=quiet, reinit="create_new",
            id=wandb_run_id(run), resume="allow",
        )  # fmt: skip

    def log(self, step: int, values: Mapping[str, float]) -> None:
        self.run.log(dict(values), step=step)

    def close(self) -> None:
        self.run.finish()


def wandb_run_id(run: TrackedRun) -> str:
    """The W&B run id of the lab's run, ``capo-lab-<id>-<random>``, kept in ``<run folder>/wandb``: a
    resumed run goes on in the W&B run it started (offline, its folders share the id and ``wandb sync``
    joins them), and run #3 of another lab home never lands in this one's."""
    folder = run.run_dir / "wandb"  # where W&B writes its files too
    folder.mkdir(parents=True, exist_ok=True)
    kept = folder / "capo-lab-run-id"
    if kept.exists():
        return kept.read_text(encoding="utf-8").strip()
    found = f"capo-lab-{run.run_id}-{secrets.token_hex(4)}"
    kept.write_text(found, encoding="utf-8")
    return found


def wandb_mode() -> str:
    """``WANDB_MODE`` when set; else online only for a user who has logged in (an API key in the
    environment or a netrc entry for the W&B host), offline for everyone else."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
    try:
        logged_in = netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):  # no ~/.netrc (the usual case), or one W&B cannot use
        logged_in = False
    return "online" if logged_in else "offline"


OPENERS: dict[str, Callable[[TrackedRun], Tracker]] = {
    "tensorboard": TensorBoardTracker,
    "mlflow": MlflowTracker,
    "trackio": TrackioTracker,
    "wandb": WandbTracker,
}


def failure_line(name: str, when: str, err: BaseException) -> str:
    """The run's note for a tracker that failed: which, when, the error's first line, what happens."""
    first = (str(err).strip().splitlines() or [""])[0][:300]
    return f"report_to: {name} failed {when} ({type(err).__name__}: {first}); dropped, the run goes on"


class TrackerSink:
    """A ``capo.train.MetricSink`` mirroring metric rows to trackers; ``note`` gets one line for each
    tracker that fails (which is then dropped). Scores, checkpoints and notes stay with the lab."""

    def __init__(self, trackers: Mapping[str, Tracker], note: Callable[[str], None]) -> None:
        self.trackers, self.note = dict(trackers), note

    @classmethod
    def open(cls, names: Sequence[str], run: TrackedRun, note: Callable[[str], None]) -> TrackerSink:
        """Open each tracker named in ``names`` (``train.report_to``) for ``run``."""
        trackers: dict[str, Tracker] = {}
        for name in names:
            try:
                trackers[name] = OPENERS[name](run)
            except Exception as err:  # any library's error: the run goes on without this tracker
                note(failure_line(name, "to start", err))
        return cls(trackers, note)

    def log_metrics(self, step: int, values: Mapping[str, float]) -> None:
        renamed = {trl_key(key): float(value) for key, value in values.items()}
        for name, tracker in list(self.trackers.items()):
            try:
                tracker.log(step, renamed)
            except Exception as err:  # any library's error: the run goes on without this tracker
                del self.trackers[name]
                self.note(failure_line(name, f"at step {step}", err))

    def close(self) -> None:
        for name, tracker in list(self.trackers.items()):
            try:
                tracker.close()
            except Exception as err:  # the rows are logged; a tracker that fails to close says so
                self.note(failure_line(name, "to close", err))
        self.trackers.clear()

    def log_pair_scores(self, step, split, rows) -> None: ...
    def log_checkpoint(self, step, path) -> None: ...
    def log_progress(self, step, total_steps) -> None: ...
    def log_note(self, message) -> None: ...
    def log_base_scores(self, scores) -> None: ...
    def log_token_pieces(self, pieces) -> None: ...
