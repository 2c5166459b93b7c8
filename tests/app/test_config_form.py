import re
from pathlib import Path

import pytest

from app.config_form import (
    choice_label,
    component,
    form_fields,
    raw_config,
    values_of,
    visible_objective_params,
)
from capo.config import ConfigError, config_from_dict, describe, load_config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("preset", sorted((REPO / "configs").rglob("*.yaml")), ids=lambda p: p.name)
def test_the_form_round_trips_every_preset(preset: Path) -> None:
    cfg = load_config(preset)
    fields = form_fields()
    assert config_from_dict(raw_config(fields, values_of(cfg, fields))) == cfg


def test_switching_objective_keeps_only_its_parameters() -> None:
    fields = form_fields()
    values = values_of(load_config(REPO / "configs" / "smoke.yaml"), fields)
    name_index = next(i for i, f in enumerate(fields) if (f.section, f.name) == ("objective", "name"))
    values[name_index] = "simpo"
    cfg = config_from_dict(raw_config(fields, values))
    assert cfg.objective.name == "simpo" and cfg.objective.beta == 0.1  # beta carried from the form
    assert visible_objective_params("dpo") == [False, True, False, False]  # alpha, beta, gamma, nll_weight


def test_a_bad_form_value_is_refused_naming_the_key() -> None:
    fields = form_fields()
    values = values_of(load_config(REPO / "configs" / "smoke.yaml"), fields)
    values[next(i for i, f in enumerate(fields) if f.name == "batch_size")] = 0
    with pytest.raises(ConfigError, match="train.batch_size"):
        config_from_dict(raw_config(fields, values))


def test_a_tuple_field_round_trips_through_its_textbox() -> None:
    cfg = load_config(REPO / "configs" / "paper-cpu.yaml")
    fields = form_fields()
    values = values_of(cfg, fields)
    labels = [f"{f.section}.{f.name}" for f in fields]
    assert values[labels.index("train.eval_splits")] == "[eval, validation]"
    assert config_from_dict(raw_config(fields, values)) == cfg


def _field(fields, label: str) -> int:
    return next(i for i, f in enumerate(fields) if f.key == label)


def test_bf16_is_a_choice_of_auto_true_false() -> None:
    fields = form_fields()
    bf16 = fields[_field(fields, "train.bf16")]
    assert (bf16.kind, [choice_label(c) for c in bf16.choices]) == ("choice", ["auto", "true", "false"])
    values = values_of(load_config(REPO / "configs" / "paper.yaml"), fields)
    assert values[_field(fields, "train.bf16")] == "true"
    for label, expected in (("false", False), ("auto", "auto")):
        values[_field(fields, "train.bf16")] = label
        assert config_from_dict(raw_config(fields, values)).train.bf16 == expected


def test_number_boxes_keep_floats_and_make_whole_ints() -> None:
    fields = form_fields()
    kinds = {f"{f.section}.{f.name}": f.kind for f in fields}
    assert {kinds[k] for k in ("objective.beta", "objective.nll_weight", "optim.lr", "lora.alpha")} == {
        "float"
    }
    assert {kinds[k] for k in ("train.batch_size", "lora.r", "train.seed")} == {"int"}
    values = values_of(load_config(REPO / "configs" / "smoke.yaml"), fields)
    values[_field(fields, "objective.beta")] = 2.0
    values[_field(fields, "train.batch_size")] = 4.0  # what a number box returns
    raw = raw_config(fields, values)
    assert type(raw["objective"]["beta"]) is float and type(raw["train"]["batch_size"]) is int


def test_each_component_shows_its_fields_meaning_and_range_as_info() -> None:
    """Before, the form showed bare keys (``train.trim_cpu_heap``) with nothing saying what they mean."""
    fields = form_fields()
    assert all(f.info == describe(f.key) and f.info for f in fields)
    values = values_of(load_config(REPO / "configs" / "smoke.yaml"), fields)
    for label in ("train.trim_cpu_heap", "train.batch_size", "objective.alpha", "train.bf16", "name"):
        i = _field(fields, label)
        shown = component(fields[i], values[i])
        assert (shown.label, shown.info) == (label, fields[i].info)
    assert fields[_field(fields, "train.batch_size")].info.endswith("a whole number from 1 to 4,096.")
    assert fields[_field(fields, "objective.alpha")].info.endswith("a finite number from 0 to 100.")
    assert "glibc" in fields[_field(fields, "train.trim_cpu_heap")].info


@pytest.mark.parametrize(
    ("label", "value", "message"),
    [
        ("optim.lr", float("inf"), "optim.lr: Input should be a finite number"),
        ("train.max_steps", 1e23, "train.max_steps: Input should be less than or equal to 10000000"),
        ("objective.alpha", float("nan"), "objective.alpha: Input should be a finite number"),
    ],
)
def test_a_non_finite_or_huge_number_box_is_refused_naming_the_key(
    label: str, value: float, message: str
) -> None:
    fields = form_fields()
    values = values_of(load_config(REPO / "configs" / "smoke.yaml"), fields)
    values[_field(fields, label)] = value  # what a number box returns
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict(raw_config(fields, values))
