from pathlib import Path

import pytest

from app.config_form import choice_label, form_fields, raw_config, values_of, visible_objective_params
from capo.config import ConfigError, config_from_dict, load_config

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
    return next(i for i, f in enumerate(fields) if f"{f.section}.{f.name}" == label)


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
