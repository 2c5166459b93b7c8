"""A form generated from ``RunConfig``: one component per field, objective fields by objective."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

import gradio as gr
import yaml

from capo.config import (
    CapoObjective,
    DataConfig,
    DpoNllObjective,
    DpoObjective,
    LoraConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    SimpoObjective,
    TrainConfig,
)

SECTIONS = {
    "model": ModelConfig,
    "data": DataConfig,
    "lora": LoraConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
}
OBJECTIVES = {
    c.model_fields["name"].default: c for c in (CapoObjective, DpoObjective, SimpoObjective, DpoNllObjective)
}
OBJECTIVE_PARAMS = sorted({f for c in OBJECTIVES.values() for f in c.model_fields if f != "name"})


@dataclass(frozen=True)
class FormField:
    section: str
    name: str
    kind: str  # bool | choice | number | text | yaml
    choices: tuple[Any, ...] = ()


def field_kind(annotation: Any) -> tuple[str, tuple[Any, ...]]:
    """How to edit a field of this type: a checkbox, a dropdown, a number, text, or YAML text."""
    if annotation is bool:
        return "bool", ()
    if typing.get_origin(annotation) is Literal:
        return "choice", typing.get_args(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if annotation in (int, float) or (
        isinstance(annotation, types.UnionType) and args and all(a in (int, float) for a in args)
    ):
        return "number", ()
    if annotation is str:
        return "text", ()
    return "yaml", ()


def form_fields() -> list[FormField]:
    fields = [FormField("", "name", "text")]
    for section, model in SECTIONS.items():
        for name, info in model.model_fields.items():
            kind, choices = field_kind(info.annotation)
            fields.append(FormField(section, name, kind, choices))
    fields.append(FormField("objective", "name", "choice", tuple(OBJECTIVES)))
    fields.extend(FormField("objective", p, "number") for p in OBJECTIVE_PARAMS)
    return fields


def values_of(cfg: RunConfig, fields: list[FormField]) -> list[Any]:
    data = cfg.model_dump()
    out = []
    for f in fields:
        value = data[f.name] if not f.section else data[f.section].get(f.name)
        if value is None and f.section == "objective":
            value = OBJECTIVES[cfg.objective.name].model_fields.get(f.name)
            value = value.default if value is not None else None
        out.append(yaml_text(value) if f.kind == "yaml" else value)
    return out


def yaml_text(value: Any) -> str:
    """How a YAML-typed field shows in its textbox: empty for None, flow style for lists."""
    if value is None:
        return ""
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list | dict):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return str(value)


def raw_config(fields: list[FormField], values: list[Any]) -> dict[str, Any]:
    """Form values → the nested dict ``RunConfig`` validates (only the chosen objective's keys)."""
    raw: dict[str, Any] = {}
    for f, value in zip(fields, values, strict=True):
        if f.kind == "yaml":
            value = yaml.safe_load(value) if isinstance(value, str) and value.strip() else None
        if (
            f.kind == "number"
            and isinstance(value, float)
            and value.is_integer()
            and f.name
            not in ("lr", "beta", "alpha", "gamma", "nll_weight", "dropout", "warmup_ratio", "weight_decay")
        ):
            value = int(value)
        if not f.section:
            raw[f.name] = value
        else:
            raw.setdefault(f.section, {})[f.name] = value
    objective = raw["objective"]
    allowed = OBJECTIVES[objective["name"]].model_fields
    raw["objective"] = {k: v for k, v in objective.items() if k in allowed and v is not None}
    return raw


def component(f: FormField, value: Any, visible: bool = True) -> gr.components.Component:
    label = f"{f.section}.{f.name}" if f.section else f.name
    if f.kind == "bool":
        return gr.Checkbox(value, label=label, visible=visible)
    if f.kind == "choice":
        return gr.Dropdown(list(f.choices), value=value, label=label, visible=visible)
    if f.kind == "number":
        return gr.Number(value, label=label, visible=visible)
    return gr.Textbox(value, label=label, visible=visible)


def visible_objective_params(name: str) -> list[bool]:
    return [p in OBJECTIVES[name].model_fields for p in OBJECTIVE_PARAMS]
