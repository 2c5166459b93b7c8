import json
import subprocess
import sys
from pathlib import Path

import pytest

from capo import objective_defs
from capo.config import (
    OBJECTIVE_CONFIGS,
    CapoObjective,
    ConfigError,
    DpoNllObjective,
    RunConfig,
    SimpoObjective,
    apply_overrides,
    config_from_dict,
    load_config,
)
from capo.objective_defs import OBJECTIVE_DEFS, Param

REPO = Path(__file__).resolve().parents[2]
PRESETS = sorted((REPO / "configs").rglob("*.yaml"))


def test_there_are_presets() -> None:
    assert {p.name for p in PRESETS} >= {"paper.yaml", "paper-cpu.yaml", "demo-cpu.yaml", "smoke.yaml"}


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_every_preset_loads_and_round_trips_through_json(preset: Path) -> None:
    cfg = load_config(preset)
    assert RunConfig.from_json(cfg.to_json()) == cfg


def test_paper_preset_has_the_papers_settings() -> None:
    cfg = load_config(REPO / "configs" / "paper.yaml")
    assert cfg.objective == CapoObjective(beta=0.1, alpha=2.0)
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout) == (16, 32, 0.05)
    assert (cfg.optim.lr, cfg.train.batch_size, cfg.train.epochs) == (1e-6, 16, 1)
    assert (cfg.model.name_or_path, cfg.model.load_in_4bit, cfg.train.bf16) == (
        "meta-llama/Llama-3.1-8B-Instruct", True, True,
    )  # fmt: skip
    assert (cfg.optim.optimizer, cfg.data.chat_template, cfg.train.group_by_length) == (
        "paged_adamw", "zephyr", False,
    )  # fmt: skip
    assert cfg.train.eval_splits == ("eval", "validation")


def test_paper_cpu_preset_keeps_the_recipe_on_the_embedded_model() -> None:
    paper, cpu = (load_config(REPO / "configs" / name) for name in ("paper.yaml", "paper-cpu.yaml"))
    assert cpu.model.name_or_path == "gemma-3-270m"
    assert (cpu.objective, cpu.lora, cpu.data.chat_template) == (paper.objective, paper.lora, "zephyr")
    assert (cpu.train.group_by_length, cpu.train.eval_splits) == (False, paper.train.eval_splits)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"objective": {"name": "dpo", "alpha": 1}}, "objective.alpha: Extra inputs"),
        ({"train": {"batch_size": 0}}, "train.batch_size: Input should be greater than 0"),
        ({"lora": {"rank": 8}}, "lora.rank: Extra inputs"),
        ({"optim": {"lr": "fast"}}, "optim.lr: Input should be a valid number"),
        ({"objective": {"name": "ipo"}}, "objective"),
    ],
)
def test_bad_keys_and_values_name_the_key(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict(raw)


def test_overrides_parse_values_and_switching_objective_resets_its_section() -> None:
    raw = {"objective": {"name": "capo", "alpha": 2.0}, "train": {"epochs": 1}}
    assert apply_overrides(raw, ["train.epochs=3"])["train"]["epochs"] == 3
    switched = config_from_dict(apply_overrides(raw, ["objective.name=simpo", "objective.gamma=0.3"]))
    assert (switched.objective.name, switched.objective.gamma) == ("simpo", 0.3)
    assert raw["train"]["epochs"] == 1  # the input is not modified
    with pytest.raises(ConfigError, match="key.sub=value"):
        apply_overrides(raw, ["epochs"])


def test_unreadable_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(path)


def test_each_objective_config_is_derived_from_its_definition() -> None:
    assert list(OBJECTIVE_CONFIGS) == list(OBJECTIVE_DEFS) == ["capo", "dpo", "simpo", "dpo_nll"]
    for name, definition in OBJECTIVE_DEFS.items():
        fields = OBJECTIVE_CONFIGS[name].model_fields
        assert list(fields) == ["name", *definition.param_names]
        assert OBJECTIVE_CONFIGS[name].__name__ == definition.class_name
    assert (SimpoObjective().beta, SimpoObjective().gamma) == (2.0, 1.0)
    with pytest.raises(ConfigError, match="objective.beta: Input should be greater than 0"):
        config_from_dict({"objective": {"name": "simpo", "beta": 0}})


def test_a_stored_run_config_still_loads() -> None:
    stored = (
        '{"name": "old", "objective": {"name": "dpo_nll", "beta": 0.2, "nll_weight": 0.5},'
        ' "train": {"bf16": true, "eval_splits": ["eval", "validation"]}}'
    )
    cfg = RunConfig.from_json(stored)
    assert cfg.objective == DpoNllObjective(beta=0.2, nll_weight=0.5)
    assert (cfg.train.bf16, cfg.train.eval_splits) == (True, ("eval", "validation"))
    assert RunConfig.from_json(cfg.to_json()) == cfg


def test_a_parameter_two_objectives_define_differently_is_refused() -> None:
    capo = OBJECTIVE_DEFS["capo"]
    other = objective_defs.ObjectiveDef(
        **{**vars(capo), "name": "other", "params": (Param(name="alpha", default=1.0, symbol="a"),)}
    )
    with pytest.raises(ValueError, match="parameter 'alpha' differs"):
        objective_defs._by_name((capo, other))


def test_the_config_imports_without_torch() -> None:
    code = "import sys, capo.config; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_an_exported_run_config_loads_as_the_run_it_came_from(tmp_path: Path) -> None:
    """``capo-lab export`` writes {"config": …, "dataset": …}: training from it reproduces its config."""
    cfg = config_from_dict({"name": "exported", "objective": {"name": "simpo", "gamma": 0.7}})
    exported = tmp_path / "run_config.json"
    exported.write_text(json.dumps({"config": cfg.model_dump(mode="json"), "dataset": {"name": "paper8"}}))
    assert load_config(exported) == cfg
    assert load_config(exported, ["train.seed=3"]).train.seed == 3
