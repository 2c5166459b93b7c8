"""``RunConfig``: one typed, frozen description of a training run.

It travels UI → JSON → queue → trainer unchanged and is stored on the run row.
YAML presets in ``configs/`` load through the same constructor; unknown keys
and bad values are refused with a message naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Frozen):
    name_or_path: str = "gemma-3-270m"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    load_in_4bit: bool = False


class DataConfig(_Frozen):
    dataset: str = "paper8"
    max_length: PositiveInt = 512
    directions: list[str] | None = None
    response_separator: str = " "  # between prompt and response under chat_template none
    chat_template: Literal["none", "model", "zephyr"] = "none"  # capo/templates.py


class CapoObjective(_Frozen):
    """CAPO (paper Eq. 4): -log σ(β(lw − ll) + α·lw/ll)."""

    name: Literal["capo"] = "capo"
    beta: PositiveFloat = 0.1
    alpha: float = 2.0


class DpoObjective(_Frozen):
    name: Literal["dpo"] = "dpo"
    beta: PositiveFloat = 0.1


class SimpoObjective(_Frozen):
    """SimPO: β = 2.0 and γ = 1.0, i.e. γ/β = 0.5, the SimPO authors' Llama-3-8B-Base setting
    (Meng, Xia and Chen 2024; their trainer takes γ/β as ``gamma_beta_ratio``). TRL's
    CPOConfig defaults differ (β = 0.1, simpo_gamma = 0.5)."""

    name: Literal["simpo"] = "simpo"
    beta: PositiveFloat = 2.0
    gamma: float = 1.0


class DpoNllObjective(_Frozen):
    name: Literal["dpo_nll"] = "dpo_nll"
    beta: PositiveFloat = 0.1
    nll_weight: float = 1.0


OBJECTIVE_CONFIGS: dict[str, type[_Frozen]] = {
    c.model_fields["name"].default: c for c in (CapoObjective, DpoObjective, SimpoObjective, DpoNllObjective)
}

ObjectiveConfig = Annotated[
    CapoObjective | DpoObjective | SimpoObjective | DpoNllObjective, Field(discriminator="name")
]


class LoraConfig(_Frozen):
    r: PositiveInt = 16
    alpha: PositiveFloat = 32
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: Literal["all-linear"] | list[str] = "all-linear"


class OptimConfig(_Frozen):
    lr: PositiveFloat = 1.0e-6
    scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(0.1, ge=0.0, le=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    optimizer: Literal["adamw", "paged_adamw"] = "adamw"
    max_grad_norm: PositiveFloat | None = 1.0


class TrainConfig(_Frozen):
    epochs: PositiveInt = 1
    max_steps: PositiveInt | None = None
    batch_size: PositiveInt = 16
    eval_batch_size: PositiveInt | None = None
    grad_accum: PositiveInt = 1
    eval_every: PositiveInt = 10
    evaluate: bool = True  # false skips every evaluation pass (benchmarks)
    eval_splits: tuple[Literal["eval", "validation"], ...] = Field(("eval",), min_length=1)
    checkpoint_every: PositiveInt = 50
    generate_at_end: bool = False  # translate the eval splits, last adapter and base (capo-lab evaluate)
    generate_max_new_tokens: PositiveInt = 160
    seed: int = 0
    bf16: bool = False
    gradient_checkpointing: bool = (
        False  # recompute decoder activations in backward: less memory, ~30% more time
    )
    group_by_length: bool = True  # batches of similar length, shuffled (capo/batching.py)
    trim_cpu_heap: bool = (
        True  # CPU + glibc: return freed activation memory between layers (capo/cpu_memory.py)
    )
    device: str = "auto"
    num_processes: PositiveInt = 1


class RunConfig(_Frozen):
    name: str = "run"
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    objective: ObjectiveConfig = CapoObjective()
    lora: LoraConfig = LoraConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _name_not_blank(self) -> RunConfig:
        if not self.name.strip():
            raise ValueError("name must not be blank")
        return self

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.model_validate_json(text)


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the key."""


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The raw mapping of a YAML config file; ``ConfigError`` when unreadable or not a mapping."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read config ({' '.join(str(err).split())})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values")
    return raw


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Load a YAML preset and apply ``key.sub=value`` overrides (values parsed as YAML)."""
    return config_from_dict(apply_overrides(read_config_file(path), overrides or []))


def config_from_dict(raw: dict[str, Any]) -> RunConfig:
    from pydantic import ValidationError

    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"] if str(p) not in _OBJECTIVE_TAGS)
        raise ConfigError(f"{key or 'config'}: {first['msg']}") from None


_OBJECTIVE_TAGS = {"capo", "dpo", "simpo", "dpo_nll"}


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``a.b.c=value`` set (value parsed as YAML).

    Switching ``objective.name`` starts that section afresh (the new objective's
    defaults plus any ``objective.*`` overrides), since each objective has its own keys.
    """
    result: dict[str, Any] = _deep_copy(raw)
    if any(item.partition("=")[0].strip() == "objective.name" for item in overrides):
        result["objective"] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{key}: {part!r} is not a section")
            node = child
        node[parts[-1]] = yaml.safe_load(value) if value.strip() else value
    return result


def _deep_copy(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in raw.items()}
