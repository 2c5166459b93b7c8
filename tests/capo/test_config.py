import json
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from capo import objective_defs
from capo.config import (
    CONFIG_FIELDS,
    OBJECTIVE_CONFIGS,
    CapoObjective,
    ConfigError,
    DpoNllObjective,
    RunConfig,
    SimpoObjective,
    allowed_range,
    allowed_values,
    apply_overrides,
    config_from_dict,
    describe,
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
    exported.write_text(
        json.dumps({"config": cfg.model_dump(mode="json"), "dataset": {"name": "paper8-cpu"}})
    )
    assert load_config(exported) == cfg
    assert load_config(exported, ["train.seed=3"]).train.seed == 3


# ---- limits (issue 20): every number finite and in range, names one line of bounded text ------------

INF, NAN = float("inf"), float("nan")

REFUSED = [
    (
        "optim.lr",
        INF,
        "Input should be a finite number (allowed: a finite number, greater than 0 and at most 1)",
    ),
    ("optim.lr", NAN, "Input should be a finite number"),
    ("optim.lr", 1e300, "Input should be less than or equal to 1 (allowed: a finite number, greater than 0"),
    ("optim.warmup_ratio", NAN, "Input should be a finite number (allowed: a finite number from 0 to 1)"),
    ("optim.weight_decay", 1e9, "Input should be less than or equal to 10"),
    (
        "optim.max_grad_norm",
        INF,
        "Input should be a finite number (allowed: a finite number, greater than 0 and "
        "at most 1,000,000, or null)",
    ),  # fmt: skip
    ("objective.alpha", -INF, "Input should be a finite number (allowed: a finite number from 0 to 100)"),
    ("objective.alpha", -1, "Input should be greater than or equal to 0"),
    ("objective.beta", 1e12, "Input should be less than or equal to 100"),
    ("lora.alpha", 10**400, "Input should be a valid number (allowed: a finite number, greater than 0"),
    (
        "lora.dropout",
        NAN,
        "Input should be a finite number (allowed: a finite number, at least 0 and less than 1)",
    ),
    ("lora.r", 10**6, "Input should be less than or equal to 1024 (allowed: a whole number from 1 to 1,024)"),
    (
        "train.epochs",
        10**29,
        "Input should be less than or equal to 10000 (allowed: a whole number from 1 to 10,000)",
    ),
    (
        "train.max_steps",
        10**23,
        "Input should be less than or equal to 10000000 (allowed: a whole number from 1 "
        "to 10,000,000, or null)",
    ),  # fmt: skip
    ("train.max_steps", 1e300, "(allowed: a whole number from 1 to 10,000,000, or null)"),
    ("train.max_steps", NAN, "Input should be a finite number"),
    ("train.batch_size", 2**63, "Input should be less than or equal to 4096"),
    ("train.eval_every", 2**63 - 1, "Input should be less than or equal to 10000000"),
    ("train.checkpoint_every", 10**8, "Input should be less than or equal to 10000000"),
    ("train.seed", -1, "Input should be greater than or equal to 0"),
    ("train.seed", 2**31, "Input should be less than or equal to 2147483647"),
    (
        "data.max_length",
        10**12,
        "Input should be less than or equal to 131072 (allowed: a whole number from 1 to 131,072)",
    ),  # fmt: skip
    (
        "name",
        "x" * 201,
        "String should have at most 200 characters (allowed: 1 to 200 characters, no control characters)",
    ),  # fmt: skip
    ("name", "two\nlines", r"must not contain control characters \(found '\\n'\)"),
    ("data.dataset", "paper8\x00", r"must not contain control characters \(found '\\x00'\)"),
    ("model.name_or_path", "m" * 1001, "String should have at most 1000 characters"),
    ("data.directions", ["en-de\t"], "must not contain control characters"),
]


def _raw(key: str, value: object) -> dict:
    """A raw config setting ``key`` (an objective parameter under the first objective that has it)."""
    section, _, name = key.rpartition(".")
    if section == "objective":
        return {
            section: {
                "name": next(n for n, c in OBJECTIVE_CONFIGS.items() if name in c.model_fields),
                name: value,
            }
        }
    return {section: {name: value}} if section else {name: value}


@pytest.mark.parametrize(("key", "value", "message"), REFUSED, ids=lambda v: str(v)[:40])
def test_a_value_out_of_range_is_refused_in_one_line_naming_the_key(
    key: str, value: object, message: str
) -> None:
    """Before, inf and nan passed, and a whole number past 2**63 reached SQLite as an OverflowError."""
    with pytest.raises(ConfigError) as caught:
        config_from_dict(_raw(key, value))
    assert str(caught.value).startswith(f"{key}: ") and "\n" not in str(caught.value)
    assert re.search(message if "\\" in message else re.escape(message), str(caught.value))


NUMBER_KEYS = [
    k for k, f in CONFIG_FIELDS.items() if {int, float} & set(typing.get_args(f.annotation) or [f.annotation])
]


def test_the_number_keys_are_all_found() -> None:
    assert len(NUMBER_KEYS) == 24 and {
        "train.seed",
        "train.micro_batch_tokens",
        "optim.max_grad_norm",
        "objective.nll_weight",
    } <= set(NUMBER_KEYS)


@pytest.mark.parametrize("key", NUMBER_KEYS)
@pytest.mark.parametrize("value", [INF, -INF, NAN, 10**30, -(10**30), 2**63], ids=str)
def test_every_number_key_refuses_non_finite_and_huge_values(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: .* \(allowed: .*\)$"):
        config_from_dict(_raw(key, value))


def test_every_key_has_a_description_and_every_limited_key_states_its_range() -> None:
    assert {k for k, f in CONFIG_FIELDS.items() if not f.description} == set()
    for key in [*NUMBER_KEYS, "name", "data.dataset", "model.name_or_path", "train.device"]:
        allowed = allowed_values(key)
        assert allowed and describe(key).endswith(f"Allowed: {allowed}."), key
    assert (
        describe("train.batch_size")
        == "Pairs per forward pass in training. Allowed: a whole number from 1 to 4,096."
    )


def test_every_objective_parameter_has_a_meaning_and_both_bounds() -> None:
    for d in OBJECTIVE_DEFS.values():
        for p in d.params:
            assert p.meaning and p.le is not None and (p.gt is not None or p.ge is not None), p


def test_the_edges_of_each_range_are_accepted() -> None:
    cfg = config_from_dict(
        {
            "name": "n" * 200,
            "objective": {"name": "capo", "alpha": 0, "beta": 100},
            "optim": {"lr": 1, "warmup_ratio": 1, "weight_decay": 10, "max_grad_norm": None},
            "lora": {"r": 1024, "dropout": 0.0},
            "data": {"max_length": 131_072, "response_separator": "\n"},  # a separator may be a newline
            "train": {"epochs": 10_000, "max_steps": 10_000_000, "batch_size": 4096, "seed": 2**31 - 1},
        }
    )
    assert (cfg.train.seed, cfg.optim.lr, cfg.objective.alpha) == (2**31 - 1, 1.0, 0.0)


def test_ranges_in_words() -> None:
    assert allowed_range(whole=True, gt=0, le=4096) == "a whole number from 1 to 4,096"
    assert allowed_range(whole=False, ge=0, lt=1) == "a finite number, at least 0 and less than 1"
    assert allowed_range(whole=False, gt=0, optional=True) == "a finite number, greater than 0, or null"
    assert allowed_range(whole=False) == "a finite number"


def test_an_override_that_is_not_yaml_is_refused_naming_the_key() -> None:
    """Before, PyYAML's scanner error escaped as a multi-line traceback."""
    with pytest.raises(ConfigError, match=r"^name: not a valid YAML value \(found character '\\t'"):
        apply_overrides({}, ["name=a\tb"])


def test_the_first_keys_union_alternatives_are_joined_in_the_one_line() -> None:
    with pytest.raises(
        ConfigError, match="^lora.target_modules: Input should be 'all-linear' or must not contain"
    ):
        config_from_dict({"lora": {"target_modules": ["q_proj\r"]}})


def test_an_exported_run_config_with_its_run_entry_loads_again(tmp_path) -> None:
    import json

    from capo.config import load_config

    raw = {"model": {"name_or_path": "tiny-random-llama"}, "data": {"dataset": "paper8-cpu"}}
    exported = {"config": raw, "dataset": {"pairs": 18}, "run": {"id": 1, "status": "succeeded", "step": 4}}
    path = tmp_path / "run_config.json"
    path.write_text(json.dumps(exported))
    assert load_config(path).data.dataset == "paper8-cpu"


def test_a_tracker_that_is_not_installed_is_one_line_naming_the_extra(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    with pytest.raises(ConfigError) as refused:
        config_from_dict({"train": {"report_to": ["tensorboard", "mlflow"]}})
    assert str(refused.value) == "train.report_to: mlflow not installed: pip install 'capo-lab[trackers]'"
    assert config_from_dict({"train": {"report_to": ["tensorboard", "tensorboard"]}}).train.report_to == (
        "tensorboard",
    )  # named twice, mirrored once
