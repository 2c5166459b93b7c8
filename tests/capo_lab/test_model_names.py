"""The Data tab's model and tokenizer boxes open only the models the lab offers: no path outside the
model folders (and no word on whether one exists), no hub id a user typed, no network."""

import json
import socket
import time
from pathlib import Path

import pytest

from capo.config import RunConfig
from capo_lab.errors import LabError
from capo_lab.model_names import allowed_model, check_chat_template, declares_chat_template, model_choices
from capo_lab.service import LabService
from capo_lab.settings import Settings


def model_folder(parent: Path, name: str, template: str | None = None) -> Path:
    folder = parent / name
    folder.mkdir(parents=True)
    config = {"tokenizer_class": "PreTrainedTokenizerFast"}
    if template is not None:
        config["chat_template"] = template
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture
def settings(lab_home: Path, tmp_path: Path, monkeypatch) -> Settings:
    models = tmp_path / "models"
    model_folder(models, "my-llama", "{{ messages }}")
    monkeypatch.setenv("CAPO_LAB_MODEL_DIRS", str(models))
    monkeypatch.setenv("CAPO_LAB_ALLOWED_MODELS", "org/allowed-model, other/one")
    return Settings()


def test_built_in_allow_listed_and_folder_models_are_offered(settings: Settings, tmp_path: Path) -> None:
    folder = str((tmp_path / "models" / "my-llama").resolve())
    assert model_choices(settings) == [
        "gemma-3-270m",
        "tiny-random-llama",
        "org/allowed-model",
        "other/one",
        folder,
    ]
    assert allowed_model(settings, " gemma-3-270m ") == "gemma-3-270m"
    assert allowed_model(settings, "org/allowed-model") == "org/allowed-model"
    assert allowed_model(settings, "my-llama") == folder
    assert allowed_model(settings, folder) == folder


@pytest.mark.parametrize(
    "name", ["../../../../etc/passwd", "/etc", "gpt2", "my-llama/../../models", "", "/", "org/allowed-model2"]
)
def test_anything_else_is_refused_in_one_line_that_says_nothing_of_the_file(settings: Settings, name) -> None:
    with pytest.raises(LabError) as caught:
        allowed_model(settings, name)
    message = str(caught.value)
    assert message.startswith(f"model {name.strip()!r} is not one this lab offers") and "\n" not in message
    assert "JSON" not in message and "exist" not in message


def test_the_service_refuses_before_any_tokenizer_or_network(settings: Settings, monkeypatch) -> None:
    """``gpt2`` once blocked the web process 46 s trying the hub; ``../etc/passwd`` said whether it exists."""

    def no_network(*_args, **_kwargs):
        raise AssertionError("the web process reached for the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    service = LabService(settings)
    for name in ("gpt2", "../../../../etc/passwd"):
        started = time.monotonic()
        with pytest.raises(LabError, match="is not one this lab offers"):
            service.stats("any-dataset", None, name)
        with pytest.raises(LabError, match="is not one this lab offers"):
            service.render_pair("any-dataset", 1, name, "none")
        assert time.monotonic() - started < 1.0


def test_a_chat_template_is_read_from_the_folder_without_loading_a_tokenizer(tmp_path: Path) -> None:
    with_template = model_folder(tmp_path, "with", "{{ messages }}")
    without = model_folder(tmp_path, "without")
    assert declares_chat_template(str(with_template)) is True
    assert declares_chat_template(str(without)) is False
    assert declares_chat_template("gemma-3-270m") is False
    assert declares_chat_template("org/hub-model") is None  # the trainer checks it on load
    cfg = RunConfig.model_validate(
        {"model": {"name_or_path": str(without)}, "data": {"chat_template": "model"}}
    )
    with pytest.raises(LabError, match="has no chat template of its own"):
        check_chat_template(cfg)
    check_chat_template(
        cfg.model_copy(update={"model": cfg.model.model_copy(update={"name_or_path": str(with_template)})})
    )


def test_the_cli_service_names_any_model_the_ui_service_only_allowed_ones(
    settings: Settings, monkeypatch
) -> None:
    """The CLI is the owner's shell (``LabService(any_model=True)``); the UI's service refuses."""
    import capo_lab.datasets

    asked: list[str] = []
    monkeypatch.setattr(capo_lab.datasets, "token_counter", lambda name, _cache: asked.append(name) or len)
    monkeypatch.setattr(capo_lab.datasets, "dataset_stats", lambda *_args: [])
    assert LabService(settings, any_model=True).stats("d", None, "gpt2") == [] and asked == ["gpt2"]
    with pytest.raises(LabError, match="is not one this lab offers"):
        LabService(settings).stats("d", None, "gpt2")
