"""The Train form shows ``train.report_to`` (generated from ``RunConfig``, as every field): a YAML list
box labelled with the key, the trackers it takes named under it, any subset reaching the config and a
name it does not know refused under that key."""

from pathlib import Path

import gradio as gr
import pytest

from app.config_form import component, form_fields, raw_config, values_of
from capo.config import ConfigError, config_from_dict, load_config

REPO = Path(__file__).resolve().parents[2]


def report_to_index(fields) -> int:
    return next(i for i, f in enumerate(fields) if f.key == "train.report_to")


def test_report_to_shows_under_its_key_with_the_trackers_it_takes() -> None:
    fields = form_fields()
    index = report_to_index(fields)
    box = component(fields[index], values_of(load_config(REPO / "configs" / "smoke.yaml"), fields)[index])
    assert isinstance(box, gr.Textbox) and (box.label, box.value) == ("train.report_to", "[]")
    assert all(name in box.info for name in ("tensorboard", "mlflow", "trackio", "wandb (offline unless"))


def test_a_chosen_subset_reaches_the_config_and_an_unknown_tracker_is_refused_by_key() -> None:
    fields = form_fields()
    values = values_of(load_config(REPO / "configs" / "smoke.yaml"), fields)
    index = report_to_index(fields)
    values[index] = "[wandb, tensorboard]"
    assert config_from_dict(raw_config(fields, values)).train.report_to == ("wandb", "tensorboard")
    values[index] = "[]"
    assert config_from_dict(raw_config(fields, values)).train.report_to == ()
    values[index] = "[comet]"
    with pytest.raises(ConfigError, match="train.report_to"):
        config_from_dict(raw_config(fields, values))
