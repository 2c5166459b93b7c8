"""``train.report_to`` (issue 23 item 2): a tiny run mirrored to TensorBoard, MLflow, trackio and W&B,
each tracker's files read back through its own reader and compared with the database's rows; a
tracker that fails is a note and the run goes on."""

from __future__ import annotations

import json
import math
import struct
import sys
import threading
from collections import defaultdict
from pathlib import Path

import pytest

from capo import trackers
from capo.trackers import PROJECT, trl_key
from capo_lab import lifecycle
from capo_lab.runs import get_run, run_dir
from storage import queries
from tests.worker.conftest import tiny_config
from worker import training_job
from worker.execute import train_run

Series = dict[str, list[tuple[int, float]]]
ALL = ["tensorboard", "mlflow", "trackio", "wandb"]


@pytest.fixture
def tracker_homes(lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Every tracker's files under ``tmp_path``, and nobody logged in to W&B (so it runs offline)."""
    monkeypatch.setenv("HOME", str(tmp_path / "user"))  # no ~/.netrc: not logged in to W&B
    for name in ("WANDB_API_KEY", "WANDB_MODE", "MLFLOW_TRACKING_URI", "TRACKIO_SPACE_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path / "trackio"))
    import trackio  # noqa: F401  (reads TRACKIO_DIR once, when first imported: set it where it was read)

    for module in [m for name, m in sys.modules.items() if name.startswith("trackio")]:
        if hasattr(module, "TRACKIO_DIR"):
            monkeypatch.setattr(module, "TRACKIO_DIR", tmp_path / "trackio")
    return lab


def train(lab, report_to: list[str], max_steps: int = 3) -> int:
    db, settings = lab
    (run_id,) = lifecycle.submit(db, [tiny_config(max_steps=max_steps, report_to=report_to)], lambda _: None)
    status = training_job.run_job(db, settings, run_id, "w", threading.Event(), execute=train_run)
    assert status == "succeeded", get_run(db, run_id).error
    return run_id


def database_series(db, run_id: int) -> Series:
    """The run's rows as the trackers should show them: TRL's key → [(step, value)] in step order."""
    series: Series = defaultdict(list)
    with db.read() as session:
        for row in queries.metrics(session, run_id):
            series[trl_key(row.key)].append((row.step, row.value))
    return dict(series)


def same(found: Series, expected: Series, float32: bool = False) -> None:
    """Equal key sets, steps and values (NaN equal to NaN; TensorBoard keeps float32)."""
    assert sorted(found) == sorted(expected)
    for key, points in expected.items():
        assert [s for s, _ in found[key]] == [s for s, _ in points], key
        for (_, got), (_, want) in zip(found[key], points, strict=True):
            want = struct.unpack("f", struct.pack("f", want))[0] if float32 else want
            assert got == want or (math.isnan(got) and math.isnan(want)), (key, got, want)


def tensorboard_events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={SCALARS: 0})
    events.Reload()
    return events


def tensorboard_series(folder: Path) -> Series:
    events = tensorboard_events(folder)
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def mlflow_run(home: Path, run_id: int):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(PROJECT)
    assert experiment.artifact_location == (home / "mlflow" / "artifacts").as_uri()
    (run,) = client.search_runs([experiment.experiment_id], f"tags.`capo_lab.run_id` = '{run_id}'")
    history = {key: client.get_metric_history(run.info.run_id, key) for key in run.data.metrics}
    return run, {key: sorted((m.step, m.value) for m in points) for key, points in history.items()}


def trackio_series(title: str) -> tuple[Series, dict]:
    from trackio.sqlite_storage import SQLiteStorage

    series: Series = defaultdict(list)
    for log in SQLiteStorage.get_logs(project=PROJECT, run=title):
        for key, value in log.items():
            if key not in ("step", "timestamp") and not key.startswith("_"):
                series[key].append((log["step"], value))
    return dict(series), SQLiteStorage.get_run_config(project=PROJECT, run=title)


def wandb_records(folder: Path) -> list:
    """The records of the one offline run under ``folder`` (see ``wandb_file_records``)."""
    (path,) = folder.glob("wandb/offline-run-*/run-*.wandb")
    return wandb_file_records(path)


def wandb_file_records(path: Path) -> list:
    """The records of one offline run file, parsed with W&B's own protobuf classes. W&B 0.31 ships no
    reader for its ``.wandb`` files (wandb-core, in Go, reads them); they are LevelDB log files: a
    7-byte header, then 32 KiB blocks of chunks (crc32c, length, type: 1 full, 2 first, 3 middle, 4
    last), a block's last < 7 bytes padding."""
    from wandb.proto.wandb_internal_pb2 import Record

    data, block, position, pending, records = path.read_bytes(), 32 * 1024, 7, b"", []
    assert data[:4] == b":W&B"
    while position + 7 <= len(data):
        if block - position % block < 7:
            position += block - position % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[position : position + 7])
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            record = Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def wandb_series(records: list) -> Series:
    series: Series = defaultdict(list)
    for record in records:
        if record.WhichOneof("record_type") == "history":
            items = {
                item.key or "/".join(item.nested_key): json.loads(item.value_json)
                for item in record.history.item
            }
            for key, value in items.items():
                if not key.startswith("_"):
                    series[key].append((items["_step"], float(value)))
    return dict(series)


@pytest.mark.slow  # about 35 s on 2 shared cores, half of it MLflow creating its SQLite store
def test_each_tracker_holds_the_database_series_config_name_and_id(tracker_homes) -> None:
    db, settings = tracker_homes
    run_id = train(tracker_homes, ALL)
    expected, title, folder = database_series(db, run_id), f"#{run_id} t", run_dir(settings, run_id)
    assert {"train/loss", "train/rewards/accuracies", "eval/loss", "eval/rewards/accuracies"} <= set(expected)
    assert [s for s, _ in expected["train/loss"]] == [1, 2, 3] and [s for s, _ in expected["eval/loss"]] == [
        0,
        3,
    ]
    assert [n for n in get_run(db, run_id).notes if n.startswith("report_to")] == []

    same(tensorboard_series(folder / "tensorboard"), expected, float32=True)
    (text,) = tensorboard_events(folder / "tensorboard").Tensors("run/text_summary")
    assert text.tensor_proto.string_val == [title.encode()]

    run, mlflow_series = mlflow_run(settings.home_dir, run_id)
    same(mlflow_series, expected)
    assert (run.info.run_name, run.data.tags["capo_lab.run_id"]) == (title, str(run_id))
    assert (run.data.params["train.max_steps"], run.data.params["model.name_or_path"]) == (
        "3",
        "tiny-random-llama",
    )

    trackio_found, trackio_config = trackio_series(title)
    same(trackio_found, expected)
    assert (trackio_config["train.max_steps"], trackio_config["capo_lab.run_id"]) == (3, run_id)

    records = wandb_records(folder)
    same(wandb_series(records), expected)
    (start,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    config = {item.key: json.loads(item.value_json) for item in start.config.update}
    assert (start.display_name, config["capo_lab.run_id"], config["train.max_steps"]) == (title, run_id, 3)


class FailsAtStep:
    """A tracker whose ``log`` raises from ``step`` on, as a tracker losing its disk mid-run would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def log(self, step: int, values) -> None:
        if step >= self.step:
            raise OSError("No space left on device\nsecond line")

    def close(self) -> None:
        raise AssertionError("a dropped tracker is never closed")


def test_a_tracker_failing_at_start_or_mid_run_is_a_note_and_the_run_goes_on(
    tracker_homes, monkeypatch
) -> None:
    def refuse(run) -> None:
        raise RuntimeError("store unreachable")

    monkeypatch.setitem(trackers.OPENERS, "mlflow", refuse)
    monkeypatch.setitem(trackers.OPENERS, "trackio", lambda run: FailsAtStep(2))
    db, settings = tracker_homes
    run_id = train(tracker_homes, ["mlflow", "trackio", "tensorboard"])
    assert [n for n in get_run(db, run_id).notes if n.startswith("report_to")] == [
        "report_to: mlflow failed to start (RuntimeError: store unreachable); dropped, the run goes on",
        "report_to: trackio failed at step 2 (OSError: No space left on device); dropped, the run goes on",
    ]
    same(
        tensorboard_series(run_dir(settings, run_id) / "tensorboard"),
        database_series(db, run_id),
        float32=True,
    )


@pytest.mark.slow  # two tiny trainings: about 25 s on 2 shared cores
def test_a_resumed_run_goes_on_in_the_same_tracker_runs_without_a_row_twice(tracker_homes) -> None:
    db, settings = tracker_homes
    config = tiny_config(max_steps=4, report_to=["tensorboard", "trackio", "wandb"])
    (run_id,) = lifecycle.submit(db, [config], lambda _: None)
    stopped = threading.Event()
    stopped.set()  # stops after step 1, with its checkpoint
    assert training_job.run_job(db, settings, run_id, "w", stopped, execute=train_run) == "interrupted"

    def train_again(run: int) -> None:
        training_job.run_job(db, settings, run, "w", threading.Event(), execute=train_run)

    assert lifecycle.resume(db, run_id, train_again) == 1
    assert get_run(db, run_id).status == "succeeded"
    expected = database_series(db, run_id)
    assert [s for s, _ in expected["train/loss"]] == [1, 2, 3, 4]
    same(tensorboard_series(run_dir(settings, run_id) / "tensorboard"), expected, float32=True)
    same(trackio_series(f"#{run_id} t")[0], expected)
    # W&B offline: one folder per session of the run, both under the run's one id (wandb sync joins them).
    # The id is read from the file, run-<id>.wandb: two sessions started in the same second get folders
    # offline-run-<time>-<id> and offline-run-<time>-<id>-1 (W&B's suffix), as on a fast CI machine
    paths = sorted(run_dir(settings, run_id).glob("wandb/offline-run-*/run-*.wandb"))
    (wandb_id,) = {p.name.removeprefix("run-").removesuffix(".wandb") for p in paths}
    assert len(paths) == 2 and wandb_id.startswith(f"capo-lab-{run_id}-")
    same(wandb_series([r for p in paths for r in wandb_file_records(p)]), expected)
