"""A form generated from ``RunConfig``: one component per field, objective fields by objective.

Each component's info text is its field's ``description`` in ``capo.config`` (the objective
parameters' from ``capo/objective_defs.py``): what the key means and, for a number or a name, the
range the config accepts, so the form states the same limits that refuse a value."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

import gradio as gr
import yaml

from capo.config import (
    OBJECTIVE_CONFIGS,
    DataConfig,
    LoraConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
    describe,
)

SECTIONS = {
    "model": ModelConfig,
    "data": DataConfig,
    "lora": LoraConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
}
OBJECTIVES = OBJECTIVE_CONFIGS  # name → config class, from capo/objective_defs.py
# Every objective's parameters, each once (one box per name; the chosen objective's are shown).
OBJECTIVE_PARAMS = sorted({f for c in OBJECTIVES.values() for f in c.model_fields if f != "name"})


@dataclass(frozen=True)
class FormField:
    section: str
    name: str
    kind: str  # bool | choice | int | float | text | yaml
    choices: tuple[Any, ...] = ()  # the values of a choice; ``choice_label`` is how each shows
    info: str = ""  # what the key means and its range: the config field's description

    @property
    def key(self) -> str:
        """The config key this field sets: ``train.batch_size``, ``name``."""
        return f"{self.section}.{self.name}" if self.section else self.name


def field_kind(annotation: Any) -> tuple[str, tuple[Any, ...]]:
    """How to edit a field of this type: a checkbox, a dropdown, a whole or real number, text, or YAML
    text. ``bool | Literal["auto"]`` is a dropdown of ("auto", True, False)."""
    if annotation is bool:
        return "bool", ()
    if typing.get_origin(annotation) is Literal:
        return "choice", typing.get_args(annotation)
    is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    args = typing.get_args(annotation) if is_union else (annotation,)
    if args and all(a is bool or typing.get_origin(a) is Literal for a in args):
        literals = [v for a in args if a is not bool for v in typing.get_args(a)]
        return "choice", (*literals, True, False)
    numbers = {a for a in args if a is not type(None)}
    if numbers == {int}:
        return "int", ()
    if numbers and numbers <= {int, float}:
        return "float", ()
    if annotation is str:
        return "text", ()
    return "yaml", ()


def choice_label(value: Any) -> Any:
    """How a choice shows in its dropdown: ``true`` / ``false`` for booleans, others as they are."""
    return str(value).lower() if isinstance(value, bool) else value


def form_fields() -> list[FormField]:
    fields = [FormField("", "name", "text", info=describe("name"))]
    for section, model in SECTIONS.items():
        for name, info in model.model_fields.items():
            kind, choices = field_kind(info.annotation)
            fields.append(FormField(section, name, kind, choices, describe(f"{section}.{name}")))
    fields.append(FormField("objective", "name", "choice", tuple(OBJECTIVES), describe("objective.name")))
    for p in OBJECTIVE_PARAMS:
        kind, choices = field_kind(_objective_annotation(p))
        fields.append(FormField("objective", p, kind, choices, describe(f"objective.{p}")))
    return fields


def _objective_annotation(param: str) -> Any:
    """The type of objective parameter ``param`` (objectives that share a parameter share its type)."""
    return next(c.model_fields[param].annotation for c in OBJECTIVES.values() if param in c.model_fields)


def values_of(cfg: RunConfig, fields: list[FormField]) -> list[Any]:
    """The form's values for ``cfg``; parameters of other objectives than the chosen one are None."""
    data = cfg.model_dump()
    out = []
    for f in fields:
        value = data[f.name] if not f.section else data[f.section].get(f.name)
        if f.kind == "yaml":
            value = yaml_text(value)
        elif f.kind == "choice":
            value = choice_label(value)
        out.append(value)
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
        value = form_value(f, value)
        if not f.section:
            raw[f.name] = value
        else:
            raw.setdefault(f.section, {})[f.name] = value
    objective = raw["objective"]
    allowed = OBJECTIVES[objective["name"]].model_fields
    raw["objective"] = {k: v for k, v in objective.items() if k in allowed and v is not None}
    return raw


def form_value(f: FormField, value: Any) -> Any:
    """One component's value as the config takes it: YAML text parsed, a choice's label mapped back
    to its value, and a whole number that a number box returns as a float (16.0) made an int."""
    if f.kind == "yaml":
        return yaml.safe_load(value) if isinstance(value, str) and value.strip() else None
    if f.kind == "choice":
        return {choice_label(c): c for c in f.choices}.get(value, value)
    if f.kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def component(f: FormField, value: Any, visible: bool = True) -> gr.components.Component:
    """The field's component, labelled with its key, its description shown as info under the label."""
    shown = {"label": f.key, "info": f.info or None, "visible": visible}
    if f.kind == "bool":
        return gr.Checkbox(value, **shown)
    if f.kind == "choice":
        return gr.Dropdown([choice_label(c) for c in f.choices], value=value, **shown)
    if f.kind in ("int", "float"):
        return gr.Number(value, precision=0 if f.kind == "int" else None, **shown)
    return gr.Textbox(value, **shown)


def visible_objective_params(name: str) -> list[bool]:
    return [p in OBJECTIVES[name].model_fields for p in OBJECTIVE_PARAMS]
