"""``capo.trackers``' pure parts: TRL's key names, flattened parameters, when W&B goes online, and a
failing tracker dropped after one note while the others go on."""

from pathlib import Path

import pytest

from capo.trackers import TrackerSink, flat_params, trl_key, wandb_mode


def test_keys_are_named_as_trl_logs_them() -> None:
    assert trl_key("loss") == "train/loss"
    assert trl_key("rewards/accuracies/en-de") == "train/rewards/accuracies/en-de"
    assert trl_key("eval_rewards/accuracies") == "eval/rewards/accuracies"
    assert trl_key("validation_loss") == "eval/validation_loss"  # TRL's eval_dataset={"validation": …}
    assert trl_key("train_loss") == "eval/train_loss"  # the train split evaluated at step 0 and the end
    assert trl_key("seconds/total") == "train/seconds/total"


def test_a_nested_config_becomes_dotted_parameters() -> None:
    config = {
        "name": "r",
        "train": {"max_steps": 3, "report_to": ["wandb"], "device": None},
        "lora": {"r": 8},
    }
    assert flat_params(config) == {
        "name": "r",
        "train.max_steps": 3,
        "train.report_to": '["wandb"]',
        "train.device": "None",
        "lora.r": 8,
    }


@pytest.fixture
def no_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_wandb_is_offline_unless_the_user_logged_in_or_chose(no_login: Path, monkeypatch) -> None:
    assert wandb_mode() == "offline"
    (no_login / ".netrc").write_text("machine example.org login u password p\n")
    assert wandb_mode() == "offline"
    (no_login / ".netrc").write_text("machine api.wandb.ai login user password k\n")
    no_login.joinpath(".netrc").chmod(0o600)
    assert wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"
    monkeypatch.delenv("WANDB_MODE")
    (no_login / ".netrc").unlink()
    monkeypatch.setenv("WANDB_API_KEY", "k")
    assert wandb_mode() == "online"


class Recorder:
    def __init__(self, fail_at: int | None = None) -> None:
        self.rows, self.fail_at, self.closed = [], fail_at, False

    def log(self, step, values) -> None:
        if step == self.fail_at:
            raise ValueError("disk full")
        self.rows.append((step, dict(values)))

    def close(self) -> None:
        self.closed = True


def test_a_tracker_that_raises_is_noted_once_and_dropped_while_the_others_get_every_row() -> None:
    notes: list[str] = []
    steady, failing = Recorder(), Recorder(fail_at=2)
    sink = TrackerSink({"tensorboard": steady, "wandb": failing}, notes.append)
    for step in (1, 2, 3):
        sink.log_metrics(step, {"loss": step / 10, "eval_loss": step / 5})
    sink.close()
    assert steady.rows == [(s, {"train/loss": s / 10, "eval/loss": s / 5}) for s in (1, 2, 3)]
    assert failing.rows == [(1, {"train/loss": 0.1, "eval/loss": 0.2})]
    assert notes == ["report_to: wandb failed at step 2 (ValueError: disk full); dropped, the run goes on"]
    assert steady.closed and not failing.closed
