"""The model and tokenizer names the web process opens on a user's word, and what it can tell about
them without loading anything.

Allowed: the built-in models (``gemma-3-270m``, ``tiny-random-llama``), a model folder under one of
the configured model folders (``CAPO_LAB_MODEL_DIRS``), and the names the server's owner lists in
``CAPO_LAB_ALLOWED_MODELS`` (hub ids included: the owner's word, not a user's). Anything else is
refused in one line that does not say whether such a path exists, so the UI neither reaches the
network nor reads a file outside those folders on a user's word.
"""

from __future__ import annotations

import json
from pathlib import Path

from capo.config import RunConfig
from capo_lab.errors import LabError
from capo_lab.settings import Settings

BUILT_IN = ("gemma-3-270m", "tiny-random-llama")  # capo.models' own names; kept here without torch
MODEL_FILES = ("tokenizer_config.json", "config.json")  # a folder holding either is a model folder


def model_folders(settings: Settings) -> list[Path]:
    """The owner's model folders, and the lab's own cache of converted models."""
    return [*settings.model_folders, settings.home_dir / "models"]


def model_choices(settings: Settings) -> list[str]:
    """Every name ``allowed_model`` accepts as is: built-ins, allow-listed names, and the model folders
    found one level under each configured folder (as paths)."""
    found = [
        str(child)
        for folder in model_folders(settings)
        if folder.is_dir()
        for child in sorted(folder.iterdir())
        if child.is_dir() and any((child / f).is_file() for f in MODEL_FILES)
    ]
    return list(dict.fromkeys([*BUILT_IN, *settings.allowed_model_names, *found]))


def allowed_model(settings: Settings, name: str | None) -> str:
    """``name`` as the loader should be given it, or ``LabError`` when the lab does not offer it."""
    text = (name or "").strip()
    if text in BUILT_IN or text in settings.allowed_model_names:
        return text
    for folder in model_folders(settings):
        candidate = (folder / text).resolve() if text else folder
        inside = candidate.is_relative_to(folder.resolve()) and candidate != folder.resolve()
        if inside and any((candidate / f).is_file() for f in MODEL_FILES):
            return str(candidate)
    raise LabError(
        f"model {text!r} is not one this lab offers: use {', '.join(BUILT_IN)}, a model folder under "
        "CAPO_LAB_MODEL_DIRS, or a name the server's owner lists in CAPO_LAB_ALLOWED_MODELS"
    )


def declares_chat_template(name: str, settings: Settings | None = None) -> bool | None:
    """Whether a model's tokenizer carries a chat template, read from its folder's files (no
    tokenizer is loaded); None when that cannot be told here (a hub id: the trainer checks on load)."""
    if name in BUILT_IN:
        return False
    folder = Path(name).expanduser()
    if not folder.is_dir():
        return None
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    config = folder / "tokenizer_config.json"
    if not config.is_file():
        return None
    try:
        return bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))
    except (OSError, ValueError, AttributeError):  # unreadable: leave it to the trainer's load
        return None


def check_chat_template(cfg: RunConfig) -> None:
    """Refuse ``data.chat_template: model`` for a model whose files say it has no template of its own,
    before queuing; read from files only (the web process loads no tokenizer). A model this cannot
    tell about (a hub id) is checked by the trainer when it loads it."""
    if cfg.data.chat_template == "model" and declares_chat_template(cfg.model.name_or_path) is False:
        raise LabError(
            f"data.chat_template: model {cfg.model.name_or_path!r} has no chat template of its own; "
            "use data.chat_template=zephyr or none"
        )
