"""``RunConfig``: one typed, frozen description of a training run.

It is made from a YAML preset in ``configs/`` (``load_config``, with ``key.sub=value``
overrides), from the Train form's fields, or from each point of a study's grid (that point's
overrides applied, and the run renamed after the settings that differ: ``capo_lab.studies``).
All go through ``config_from_dict``: unknown keys and bad values are refused with a message
naming the key. The objective classes are derived from ``capo/objective_defs.py``.

``capo_lab.runs.create_run`` stores it as JSON on the run row; the job queue carries only the
run id. The worker validates the stored JSON again (``capo_lab.runs.run_config``; a worker's
``--device`` replaces ``train.device``), then ``capo_lab.lifecycle`` resolves ``train.device``
(``auto`` → ``cpu`` or ``cuda:0``) and records it in the run's ``device`` column, not in the
stored config; the trainer gets that resolved copy.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import ErrorDetails

from capo.objective_defs import OBJECTIVE_DEFS, ObjectiveDef


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


def _objective_config(d: ObjectiveDef) -> type[_Frozen]:
    """The config class of one objective: ``name`` (the union's tag) and its parameters."""
    fields: dict[str, Any] = {p.name: (float, Field(p.default, gt=p.gt)) for p in d.params}
    return create_model(
        d.class_name,
        __base__=_Frozen,
        __module__=__name__,
        __doc__=f"{d.formula} ({d.citation}).",
        name=(Literal[d.name], d.name),
        **fields,
    )


# One config class per definition in capo/objective_defs.py, by objective name.
OBJECTIVE_CONFIGS: dict[str, type[_Frozen]] = {
    name: _objective_config(d) for name, d in OBJECTIVE_DEFS.items()
}
CapoObjective = OBJECTIVE_CONFIGS["capo"]  # named for the default below and for callers
DpoObjective = OBJECTIVE_CONFIGS["dpo"]
SimpoObjective = OBJECTIVE_CONFIGS["simpo"]
DpoNllObjective = OBJECTIVE_CONFIGS["dpo_nll"]

# ``objective`` validates as the class its ``name`` selects.
ObjectiveConfig = Annotated[reduce(operator.or_, OBJECTIVE_CONFIGS.values()), Field(discriminator="name")]


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
    # score the whole train split at step 0 (from the base cache) and at the last step (train_* metrics);
    # false saves a forward pass over it at the end (a study reported on held-out splits)
    score_train_split: bool = True
    checkpoint_every: PositiveInt = 50
    generate_at_end: bool = False  # translate the eval splits, last adapter and base (capo-lab evaluate)
    generate_max_new_tokens: PositiveInt = 160
    seed: int = 0
    bf16: bool | Literal["auto"] = "auto"  # auto: on where the device computes bf16 natively
    gradient_checkpointing: bool = (
        False  # recompute decoder activations in backward: less memory, ~30% more time
    )
    group_by_length: bool = True  # batches of similar length, shuffled (capo/batching.py)
    # packed: [prompt | chosen | rejected] blocks packed into rows (capo/packing.py); prompt_shared: one
    # block a row; padded: chosen and rejected as separate padded rows. Packed and prompt_shared fall
    # back to padded, with a note, where the model's attention cannot take the block mask.
    scoring: Literal["packed", "prompt_shared", "padded"] = "packed"
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
    """Load a YAML preset (or an exported run's ``run_config.json``, whose ``config`` sits beside its
    ``dataset``) and apply ``key.sub=value`` overrides (values parsed as YAML)."""
    raw = read_config_file(path)
    if set(raw) == {"config", "dataset"} and isinstance(raw["config"], dict):
        raw = raw["config"]
    return config_from_dict(apply_overrides(raw, overrides or []))


def config_from_dict(raw: dict[str, Any]) -> RunConfig:
    """``RunConfig`` from plain data; ``ConfigError`` naming the first bad key as ``config_problems``
    names keys (union tags dropped: ``objective.alpha``, not ``objective.capo.alpha``)."""
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        raise ConfigError(f"{_config_key(first) or 'config'}: {first['msg']}") from None


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


CONFIG_SECTIONS = {k for k, v in RunConfig() if isinstance(v, BaseModel)}  # model, data, objective, …


@dataclass(frozen=True)
class ConfigProblem:
    """One invalid key of a run config: ``key`` as the config spells it (``train.batch_size``,
    ``objective.alpha``, ``name``; empty for a rule over the whole config) and pydantic's message."""

    key: str
    message: str


def config_problems(raw: dict[str, Any]) -> list[ConfigProblem]:
    """Every problem ``RunConfig`` finds in ``raw``, one per key (a union's alternatives joined by
    "or"). Whole-config rules (a blank name) run only once every field is valid, so the sections
    with errors are validated again as their defaults to find those too."""
    try:
        RunConfig.model_validate(raw)
        return []
    except ValidationError as err:
        found = _problems(err)
    failed = {p.key.split(".")[0] for p in found}
    rest = {k: v for k, v in raw.items() if k not in failed}
    if len(rest) < len(raw):
        found += [p for p in config_problems(rest) if p not in found]
    return found


def _problems(err: ValidationError) -> list[ConfigProblem]:
    messages: dict[str, list[str]] = {}
    for error in err.errors():
        message = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
        messages.setdefault(_config_key(error), []).append(message)
    return [ConfigProblem(key, _either(found)) for key, found in messages.items()]


SHOULD = "Input should be "


def _either(messages: list[str]) -> str:
    """One message from a union's alternatives: "Input should be 'auto' or a valid boolean"."""
    first, *others = dict.fromkeys(messages)
    return " or ".join([first, *(m.removeprefix(SHOULD) if first.startswith(SHOULD) else m for m in others)])


def _config_key(error: ErrorDetails) -> str:
    """The config key of an error: a union's tags (``objective.capo.alpha``'s ``capo``,
    ``train.bf16``'s ``bool``) and positions inside a list are dropped; an objective tag that is
    missing or unknown is the objective's ``name``."""
    parts = [str(p) for p in error["loc"] if str(p) not in OBJECTIVE_CONFIGS]
    depth = 2 if parts and parts[0] in CONFIG_SECTIONS else 1
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        parts = [*parts[:1], error["ctx"]["discriminator"].strip("'")]
    return ".".join(parts[:depth])
