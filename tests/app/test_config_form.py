from pathlib import Path

import pytest

from app.config_form import form_fields, raw_config, values_of, visible_objective_params
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
