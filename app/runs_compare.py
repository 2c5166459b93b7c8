"""Comparing runs in plain data: legend names that say what differs between the selected runs, one
stable colour per run id, and the per-direction reward-accuracy table (base → last evaluation)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.charts import RunLook
from capo.objective_defs import PARAM_SYMBOLS
from capo_lab.records import DirectionAccuracy

# D3's ten categorical colours; run #1 gets the first, and a run keeps its colour in every chart.
PALETTE = (
    "#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD",
    "#8C564B", "#E377C2", "#7F7F7F", "#BCBD22", "#17BECF",
)  # fmt: skip
SYMBOLS = {
    **{f"objective.{name}": symbol for name, symbol in PARAM_SYMBOLS.items()},
    "optim.lr": "lr",
    "data.dataset": "data",
    "model.name_or_path": "model",
}
IGNORED = {"name", "objective.name"}
MAX_SETTINGS = 3
MAX_VALUE = 24  # characters of one setting's value in a legend name
MAX_NAME = 60  # characters of a legend name
DISAGREE = "pairs decided differently"


def run_colour(run_id: int) -> str:
    return PALETTE[(int(run_id) - 1) % len(PALETTE)]


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"objective": {"alpha": 2}}`` → ``{"objective.alpha": 2}``."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = value
    return flat


def differing_settings(configs: dict[int, dict[str, Any]]) -> list[str]:
    """Dotted config keys whose value differs between the runs (absent counts as a value), the
    objective's parameters first; the run name and the objective's name are left out."""
    flat = [flatten(c) for c in configs.values()]
    keys = sorted({k for f in flat for k in f} - IGNORED, key=lambda k: (not k.startswith("objective."), k))
    return [k for k in keys if len({repr(f.get(k, "<absent>")) for f in flat}) > 1]


def _shown(value: Any) -> str:
    """A setting's value, at most ``MAX_VALUE`` characters: a long one (a model's path) keeps its end."""
    if isinstance(value, float):
        text = f"{value:g}"
    else:
        text = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return text if len(text) <= MAX_VALUE else "…" + text[-(MAX_VALUE - 1) :]


def _cut(words: list[str], more: bool) -> str:
    """``words`` joined, the settings cut off after ``MAX_NAME`` characters (the id and objective stay),
    ending in `` …`` when any was left out."""
    kept = words[:2]
    for word in words[2:]:
        if len(" ".join([*kept, word, "…"])) > MAX_NAME:
            more = True
            break
        kept.append(word)
    return " ".join(kept) + (" …" if more else "")


def run_names(configs: dict[int, dict[str, Any]]) -> dict[int, str]:
    """``#3 capo α=2`` beside ``#4 dpo``: the id, the objective and up to three settings that differ,
    at most ``MAX_NAME`` characters; never the run's own name (every smoke run is called ``smoke``)."""
    keys = differing_settings(configs)
    names = {}
    for run_id, config in configs.items():
        flat = flatten(config)
        settings = [f"{SYMBOLS.get(k, k.rsplit('.', 1)[-1])}={_shown(flat[k])}" for k in keys if k in flat]
        objective = flat.get("objective.name", "?")
        words = [f"#{run_id}", str(objective), *settings[:MAX_SETTINGS]]
        names[run_id] = _cut(words, len(settings) > MAX_SETTINGS)
    return names


def run_looks(configs: dict[int, dict[str, Any]]) -> dict[str, RunLook]:
    """Each run's name and colour, keyed as the live charts key a run's points (``#3``)."""
    return {f"#{rid}": RunLook(name, run_colour(rid)) for rid, name in run_names(configs).items()}


def shared_base(rows: Sequence[DirectionAccuracy]) -> bool:
    """Every run has the same base accuracy in every direction (the same base model on the same pairs)."""
    return all(len({(r.base_step, r.base) for r in row.runs.values()}) <= 1 for row in rows)


def accuracy_columns(rows: Sequence[DirectionAccuracy], names: dict[int, str]) -> list[str]:
    runs = rows[0].runs if rows else {}
    base = ["base (step 0)"] if shared_base(rows) else [f"{names[i]} base" for i in runs]
    last = [f"{names[i]} (step {r.last_step})" for i, r in runs.items()]
    disagree = [DISAGREE] if rows and rows[0].disagree is not None else []
    return ["direction", "n pairs", *base, *last, *disagree]


def _n(row: DirectionAccuracy) -> str:
    return " / ".join(dict.fromkeys(str(r.n) for r in row.runs.values()))


def accuracy_table_rows(rows: Sequence[DirectionAccuracy], names: dict[int, str]) -> list[dict[str, Any]]:
    """The service's ``direction_accuracy`` rows as table rows: accuracy at the base, then each run's
    last accuracy with its change from its base, and, for two runs, the pairs they decide differently."""
    columns, shared = accuracy_columns(rows, names), shared_base(rows)
    table = []
    for row in rows:
        runs = list(row.runs.values())
        base = [f"{runs[0].base:.2f}"] if shared else [f"{r.base:.2f}" for r in runs]
        last = [f"{r.last:.2f} ({r.last - r.base:+.2f})" for r in runs]
        disagree = [f"{row.disagree} of {row.shared}"] if row.disagree is not None else []
        table.append(dict(zip(columns, [row.direction, _n(row), *base, *last, *disagree], strict=True)))
    return table


def accuracy_summary(
    rows: Sequence[DirectionAccuracy], names: dict[int, str], accuracy: str = "lw > ll"
) -> str:
    """One line of plain text above the table (the caller escapes it for Markdown); ``accuracy`` names the
    accuracy shown."""
    if not rows:
        return "No eval pair scores yet for the selected runs: the first evaluation scores the base model."
    line = (
        f"Eval reward accuracy per direction, {accuracy}: the base model (step 0) → each run's last "
        "evaluation."
    )
    total = next((r for r in rows if r.direction == "all"), rows[-1])
    if total.disagree is not None:
        a, b = (names[i] for i in list(total.runs)[:2])
        line += f" {a} and {b} decide {total.disagree} of {total.shared} shared pairs differently."
    return line
