"""``RunConfig``: one typed, frozen description of a training run.

It is made from a YAML preset in ``configs/`` (``load_config``, with ``key.sub=value``
overrides), from the Train form's fields, or from each point of a study's grid (that point's
overrides applied, and the run renamed after the settings that differ: ``capo_lab.studies``).
All go through ``config_from_dict``: unknown keys and bad values are refused with a message
naming the key. The objective classes are derived from ``capo/objective_defs.py``.

Limits: every number is finite (inf and nan refused) and within a range, every whole number far
inside SQLite's 64-bit INTEGER; names and ids are 1 to ``NAME_MAX`` characters (a model path
``PATH_MAX``) without control characters. Each field's ``description`` says what it means and,
for these, its range in words; the Train form shows it under the field, and ``config_from_dict``'s
one-line error ends with it: ``optim.lr: Input should be a finite number (allowed: a finite
number, greater than 0 and at most 1)``. ``config_problems`` keeps pydantic's bare message, since
the form already shows the range beside each field.

``capo_lab.runs.create_run`` stores it as JSON on the run row; the job queue carries only the
run id. The worker validates the stored JSON again (``capo_lab.runs.run_config``; a worker's
``--device`` replaces ``train.device``), then ``capo_lab.lifecycle`` resolves ``train.device``
(``auto`` → ``cpu`` or ``cuda:0``) and records it in the run's ``device`` column, not in the
stored config; the trainer gets that resolved copy.
"""

from __future__ import annotations

import importlib.util
import operator
import unicodedata
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from capo.errors import UserError
from capo.objective_defs import OBJECTIVE_DEFS, ObjectiveDef

# Limits. Every number is finite and within a range stated in words in its field's description
# (which the Train form shows) and in the error that refuses it. The caps keep every whole number
# far inside SQLite's 64-bit INTEGER (run rows, step counters and metrics store them) and catch a
# typo before a run is queued; none is near a setting this lab runs.
NAME_MAX = 200  # the run's name, a dataset's name, a target module, a direction
PATH_MAX = 1_000  # model.name_or_path: a hub id or a local folder
LENGTH_MAX = 131_072  # tokens: data.max_length, train.generate_max_new_tokens
BATCH_MAX = 4_096  # pairs: train.batch_size, eval_batch_size, grad_accum
STEPS_MAX = 10_000_000  # optimizer steps: train.max_steps, eval_every, checkpoint_every
EPOCHS_MAX = 10_000
SEED_MAX = 2**31 - 1  # a signed 32-bit integer, which every seeding API takes
# train.report_to: each tracker's name → the module its extra installs
TRACKER_MODULES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "trackio": "trackio", "wandb": "wandb"}


def _number_text(value: float) -> str:
    """A bound as the range's words give it: ``10,000,000``, ``2,147,483,647``, ``0``, ``0.5``."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def allowed_range(
    *,
    whole: bool,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    optional: bool = False,
) -> str:
    """A number's range in words: "a whole number from 1 to 4,096", "a finite number, greater than 0
    and at most 1", "..., or null" (``optional``: null is allowed too)."""
    if whole and gt is not None:
        ge, gt = int(gt) + 1, None
    kind = "a whole number" if whole else "a finite number"
    if ge is not None and le is not None:
        text = f"{kind} from {_number_text(ge)} to {_number_text(le)}"
    else:
        low = f"at least {_number_text(ge)}" if ge is not None else ""
        low = f"greater than {_number_text(gt)}" if gt is not None else low
        high = f"at most {_number_text(le)}" if le is not None else ""
        high = f"less than {_number_text(lt)}" if lt is not None else high
        bounds = " and ".join(part for part in (low, high) if part)
        text = f"{kind}, {bounds}" if bounds else kind
    return f"{text}, or null" if optional else text


def _whole(default: int | None, meaning: str, *, le: int, ge: int = 1, optional: bool = False) -> Any:
    """A whole-number field from ``ge`` to ``le``; a lower bound of 1 is checked as "greater than 0",
    pydantic's message for the positive ints these fields were before."""
    allowed = allowed_range(whole=True, ge=ge, le=le, optional=optional)
    bounds: dict[str, int] = {"gt": 0} if ge == 1 else {"ge": ge}
    return Field(
        default,
        **bounds,
        le=le,
        description=f"{meaning}. Allowed: {allowed}.",
        json_schema_extra={"allowed": allowed},
    )


def _real(
    default: float | None,
    meaning: str,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    optional: bool = False,
) -> Any:
    """A finite real-number field (inf and nan refused) within the given bounds."""
    allowed = allowed_range(whole=False, gt=gt, ge=ge, lt=lt, le=le, optional=optional)
    return Field(
        default,
        gt=gt,
        ge=ge,
        lt=lt,
        le=le,
        allow_inf_nan=False,
        description=f"{meaning}. Allowed: {allowed}.",
        json_schema_extra={"allowed": allowed},
    )


def _no_control_characters(text: str) -> str:
    found = next((c for c in text if unicodedata.category(c) == "Cc"), None)
    if found is not None:
        raise ValueError(f"must not contain control characters (found {found!r})")
    return text


# A name, id or path: one line of printable text (no newline, tab, NUL or other control character).
Text = Annotated[str, AfterValidator(_no_control_characters)]
# A ``Text`` item of a list (a direction, a module name): 1 to ``NAME_MAX`` characters.
ItemText = Annotated[str, Field(min_length=1, max_length=NAME_MAX), AfterValidator(_no_control_characters)]


def _text(default: str, meaning: str, *, max_length: int = NAME_MAX) -> Any:
    """A ``Text`` field of 1 to ``max_length`` characters."""
    allowed = f"1 to {max_length:,} characters, no control characters"
    return Field(
        default,
        min_length=1,
        max_length=max_length,
        description=f"{meaning}. Allowed: {allowed}.",
        json_schema_extra={"allowed": allowed},
    )


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Frozen):
    name_or_path: Text = _text(
        "gemma-3-270m",
        "The base model: gemma-3-270m (embedded), tiny-random-llama (tests), a local folder or a hub id",
        max_length=PATH_MAX,
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="The base model's weights (and 4-bit compute) dtype; auto: bfloat16 on a CUDA GPU that "
        "computes it, float32 elsewhere.",
    )
    load_in_4bit: bool = Field(False, description="Load the base model in 4-bit NF4 (QLoRA; bitsandbytes).")
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2", "flex_attention"] = Field(
        "auto",
        description="The attention kernel passed to transformers; auto: transformers' choice (sdpa where "
        "torch has it). Packed scoring needs sdpa, eager or flex_attention (CUDA only for training: on "
        "CPU flex has no backward and the run trains with sdpa) and falls back to padded rows, with a "
        "note, under the others.",
    )


class DataConfig(_Frozen):
    dataset: Text = _text(
        "paper8", "The imported dataset to train on, by name or number (capo-lab data list)"
    )
    max_length: int = _whole(
        512, "Tokens of prompt + response kept per pair; longer pairs are cut", le=LENGTH_MAX
    )
    directions: list[ItemText] | None = Field(
        None,
        description="Language directions to train on (en-de, ...); null: every direction of the dataset.",
    )
    response_separator: str = Field(
        " ",
        max_length=NAME_MAX,
        description="Text between prompt and response when chat_template is none. "
        f"Allowed: up to {NAME_MAX} characters.",
    )
    chat_template: Literal["none", "model", "zephyr"] = Field(
        "none",
        description="How a prompt is wrapped: none (plain text), the model's own template, or zephyr "
        "(capo/templates.py).",
    )


def _objective_config(d: ObjectiveDef) -> type[_Frozen]:
    """The config class of one objective: ``name`` (the union's tag) and its parameters."""
    fields: dict[str, Any] = {
        p.name: (float, _real(p.default, p.meaning or p.name, gt=p.gt, ge=p.ge, le=p.le)) for p in d.params
    }
    return create_model(
        d.class_name,
        __base__=_Frozen,
        __module__=__name__,
        __doc__=f"{d.formula} ({d.citation}).",
        name=(Literal[d.name], Field(d.name, description=OBJECTIVE_NAME_DESCRIPTION)),
        **fields,
    )


OBJECTIVE_NAME_DESCRIPTION = (
    f"The preference objective: {', '.join(OBJECTIVE_DEFS)} (capo/objective_defs.py); "
    "each has its own parameters."
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
    r: int = _whole(16, "LoRA rank of each adapted layer", le=1_024)
    alpha: float = _real(32, "LoRA scaling numerator (updates are scaled by alpha / r)", gt=0.0, le=10_000.0)
    dropout: float = _real(0.05, "Dropout on the LoRA branch", ge=0.0, lt=1.0)
    target_modules: Literal["all-linear"] | list[ItemText] = Field(
        "all-linear", description="Layers that get adapters: all-linear, or a list of module names."
    )


class OptimConfig(_Frozen):
    lr: float = _real(1.0e-6, "Peak learning rate", gt=0.0, le=1.0)
    scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = Field(
        "cosine", description="How the learning rate moves after warm-up."
    )
    warmup_ratio: float = _real(0.1, "Share of the steps spent warming the learning rate up", ge=0.0, le=1.0)
    weight_decay: float = _real(0.0, "AdamW's decoupled weight decay", ge=0.0, le=10.0)
    optimizer: Literal["auto", "adamw", "adamw_fused", "paged_adamw"] = Field(
        "auto",
        description="auto: adamw_fused on a CUDA GPU, adamw elsewhere; adamw (torch, foreach), adamw_fused "
        "(torch, one fused kernel per step) or paged_adamw (bitsandbytes; synchronizes the GPU once per "
        "parameter).",
    )
    max_grad_norm: float | None = _real(
        1.0, "Gradients are clipped to this norm; null: no clipping", gt=0.0, le=1_000_000.0, optional=True
    )


class TrainConfig(_Frozen):
    epochs: int = _whole(1, "Passes over the train split (unless max_steps stops sooner)", le=EPOCHS_MAX)
    max_steps: int | None = _whole(
        None, "Optimizer steps to stop after; null: as many as the epochs take", le=STEPS_MAX, optional=True
    )
    batch_size: int = _whole(16, "Pairs per forward pass in training", le=BATCH_MAX)
    eval_batch_size: int | None = _whole(
        None, "Pairs per forward pass in evaluation; null: batch_size", le=BATCH_MAX, optional=True
    )
    grad_accum: int = _whole(1, "Forward passes per optimizer step (gradient accumulation)", le=BATCH_MAX)
    micro_batch_tokens: int | None = _whole(
        None,
        "Most tokens per training forward pass (a pair's prompt + chosen + rejected): each step's "
        "batch_size × grad_accum pairs are cut, in order, into passes of at most this many tokens (a "
        "longer pair goes alone); the loss and gradients are unchanged, only peak memory. null: "
        "batch_size pairs a pass",
        le=LENGTH_MAX * BATCH_MAX,
        optional=True,
    )
    eval_every: int = _whole(
        10, "Evaluate every this many optimizer steps (and at step 0 and the last step)", le=STEPS_MAX
    )
    evaluate: bool = Field(True, description="false skips every evaluation pass (benchmarks).")
    eval_splits: tuple[Literal["eval", "validation"], ...] = Field(
        ("eval",),
        min_length=1,
        description="Held-out splits scored at each evaluation: eval, validation or both.",
    )
    score_train_split: bool = Field(
        True,
        description="Score the whole train split at step 0 (from the base cache) and at the last step "
        "(train_* metrics); false saves a forward pass over it at the end (a study reported on "
        "held-out splits).",
    )
    checkpoint_every: int = _whole(
        50,
        "Save the adapter every this many optimizer steps (and at the last step and on a stop)",
        le=STEPS_MAX,
    )
    generate_at_end: bool = Field(
        False, description="Translate the eval splits with the last adapter and the base (capo-lab evaluate)."
    )
    generate_max_new_tokens: int = _whole(160, "Most tokens generated per translation", le=LENGTH_MAX)
    generate_at_end_pairs: int | None = _whole(
        None,
        "Pairs of each split translated at the end (generate_at_end): the same subset every run, taken "
        "in turn from each direction in pair order; null: the whole split",
        le=STEPS_MAX,
        optional=True,
    )
    seed: int = _whole(
        0, "Seeds each epoch's pair order, the adapter's initialisation and dropout", ge=0, le=SEED_MAX
    )
    bf16: bool | Literal["auto"] = Field(
        "auto", description="bf16 autocast; auto: on where the device computes bf16 natively."
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute decoder activations in backward: less memory, about 30% more time."
    )
    group_by_length: bool = Field(True, description="Batches of similar length, shuffled (capo/batching.py).")
    scoring: Literal["packed", "prompt_shared", "padded"] = Field(
        "packed",
        description="packed: [prompt | chosen | rejected] blocks packed into rows (capo/packing.py); "
        "prompt_shared: one block a row; padded: chosen and rejected as separate padded rows. Packed and "
        "prompt_shared fall back to padded, with a note, where the model's attention cannot take the "
        "block mask.",
    )
    trim_cpu_heap: bool = Field(
        True,
        description="CPU + glibc: return freed activation memory to the system between layers "
        "(capo/cpu_memory.py).",
    )
    device: Text = _text(
        "auto", "Where to train: auto (cuda:0 when there is a GPU, else cpu), cpu, cuda:N", max_length=64
    )
    num_processes: int = _whole(1, "Data-parallel processes on this machine (accelerate launch)", le=256)
    report_to: tuple[Literal["tensorboard", "mlflow", "trackio", "wandb"], ...] = Field(
        (),
        description="Trackers that mirror every metric row (capo/trackers.py), files local by default: "
        "tensorboard, mlflow, trackio, wandb (offline unless logged in). A failing mirror is a note.",
    )

    @field_validator("report_to")
    @classmethod
    def _trackers_installed(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        missing = [
            name for name in dict.fromkeys(value) if importlib.util.find_spec(TRACKER_MODULES[name]) is None
        ]
        if missing:
            raise ValueError(f"{', '.join(missing)} not installed: pip install 'capo-lab[trackers]'")
        return tuple(dict.fromkeys(value))


class RunConfig(_Frozen):
    name: Text = _text("run", "The run's name, shown in lists and charts")
    model: ModelConfig = Field(ModelConfig(), description="The base model.")
    data: DataConfig = Field(DataConfig(), description="The dataset and how pairs become tokens.")
    objective: ObjectiveConfig = Field(CapoObjective(), description=OBJECTIVE_NAME_DESCRIPTION)
    lora: LoraConfig = Field(LoraConfig(), description="The LoRA adapter.")
    optim: OptimConfig = Field(OptimConfig(), description="The optimizer and its schedule.")
    train: TrainConfig = Field(TrainConfig(), description="Steps, batches, evaluation and checkpoints.")

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


class ConfigError(UserError):
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
    if {"config", "dataset"} <= set(raw) <= {"config", "dataset", "run"} and isinstance(raw["config"], dict):
        raw = raw["config"]
    return config_from_dict(apply_overrides(raw, overrides or []))


def config_from_dict(raw: dict[str, Any]) -> RunConfig:
    """``RunConfig`` from plain data; ``ConfigError`` naming the first bad key as ``config_problems``
    names keys (union tags dropped: ``objective.alpha``, not ``objective.capo.alpha``), in one line
    that ends with the key's allowed values where it has a range: ``train.max_steps: Input should be
    less than or equal to 10000000 (allowed: a whole number from 1 to 10,000,000, or null)``."""
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        problem = _problems(err)[0]  # the first key's errors, a union's alternatives joined by "or"
        allowed = allowed_values(problem.key) if first["type"] != "extra_forbidden" else None
        text = f"{problem.key or 'config'}: {problem.message}" + (f" (allowed: {allowed})" if allowed else "")
        raise ConfigError(" ".join(text.split())) from None


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
        node[parts[-1]] = _yaml_value(key.strip(), value)
    return result


def _yaml_value(key: str, text: str) -> Any:
    """An override's value parsed as YAML (text that is only blanks stays as it is); ``ConfigError``
    naming the key, in one line, for text that is not YAML."""
    if not text.strip():
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        raise ConfigError(f"{key}: not a valid YAML value ({problem}): {text!r}") from None


def _deep_copy(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in raw.items()}


CONFIG_SECTIONS = {k for k, v in RunConfig() if isinstance(v, BaseModel)}  # model, data, objective, …


def _config_fields() -> dict[str, FieldInfo]:
    """Every key of a run config (``name``, ``train.batch_size``, ``objective.alpha``) → its field; an
    objective parameter's is the first objective's that has it (they are defined alike)."""
    fields: dict[str, FieldInfo] = {}
    for key, info in RunConfig.model_fields.items():
        if key not in CONFIG_SECTIONS:
            fields[key] = info
            continue
        models = OBJECTIVE_CONFIGS.values() if key == "objective" else [type(getattr(RunConfig(), key))]
        for model in models:
            for name, sub in model.model_fields.items():
                fields.setdefault(f"{key}.{name}", sub)
    return fields


CONFIG_FIELDS: dict[str, FieldInfo] = _config_fields()


def describe(key: str) -> str:
    """What a config key means and, for a number or a name, its range in words ("" for no such key)."""
    info = CONFIG_FIELDS.get(key)
    return (info.description or "") if info else ""


def allowed_values(key: str) -> str | None:
    """The range of a number or name key in words ("a whole number from 1 to 4,096"); None for others."""
    info = CONFIG_FIELDS.get(key)
    extra = info.json_schema_extra if info is not None else None
    return str(extra["allowed"]) if isinstance(extra, dict) and "allowed" in extra else None


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
        messages.setdefault(_config_key(error), []).append(_message(error))
    return [ConfigProblem(key, _either(found)) for key, found in messages.items()]


def _message(error: ErrorDetails) -> str:
    """Pydantic's message, a rule's own words for a ``ValueError`` ("name must not be blank")."""
    return str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]


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
