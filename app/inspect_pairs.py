"""The Inspect tab's plain-data helpers: the pair table beside a compared run, its filters and the line
that says what is shown, each gradient-regime flag of an opened pair explained with its numbers, and one
pair under every run of a study (its line and its columns of numbers and heat maps)."""

from __future__ import annotations

import html
from typing import Any

from app.charts import HEATMAP_SCALE, token_heatmap_html
from app.common import markdown_text
from app.runs_compare import run_colour
from capo.analysis.regimes import explain
from capo_lab.records import PairScoreRecord

PAIR_COLUMNS = [
    "pair_id",
    "direction",
    "lw",
    "ll",
    "delta",
    "rrm",
    "loss",
    "reward_margin",
    "dl_dlw",
    "ambiguous",
    "flipped",
    "chosen_pushed_down",
]
DISAGREE = "runs_disagree"
FLAGS = [
    ("ambiguous (|Δ| < 1 nat)", "ambiguous"),
    ("flipped (Δ < 0)", "flipped"),
    ("post-edit pushed down", "chosen_pushed_down"),
    ("runs disagree (sign of Δ differs)", DISAGREE),
]
# dL/dlw and dL/dll of the objectives without RRM, with s = σ(z) − 1 < 0 (capo/objectives.py).
GRADIENTS = {
    "dpo": ("s·β", "−s·β"),
    "dpo_nll": ("s·β − w/|y_w|", "−s·β"),
    "simpo": ("s·β/|y_w|", "−s·β/|y_l|"),
}


def compared_column(other_id: int) -> str:
    return f"delta (run #{int(other_id)})"


def pair_columns(other_id: int | None) -> list[str]:
    """The table's columns; with a compared run, its Δ beside this run's and whether they disagree."""
    if other_id is None:
        return PAIR_COLUMNS
    at = PAIR_COLUMNS.index("delta") + 1
    return [*PAIR_COLUMNS[:at], compared_column(other_id), *PAIR_COLUMNS[at:], DISAGREE]


def with_comparison(rows: list[dict], other_rows: list[dict], other_id: int) -> list[dict]:
    """Each row with the compared run's Δ of the same pair (None when it did not score it) and whether
    the two runs rank the pair differently (the sign of Δ differs)."""
    theirs = {r["pair_id"]: r["delta"] for r in other_rows}
    column = compared_column(other_id)
    return [
        {
            **r,
            column: theirs.get(r["pair_id"]),
            DISAGREE: r["pair_id"] in theirs and (r["delta"] > 0) != (theirs[r["pair_id"]] > 0),
        }
        for r in rows
    ]


def filter_rows(rows: list[dict], direction: str, flags: list[str]) -> list[dict]:
    """Keep rows of ``direction`` (all when empty) that have every flag in ``flags``."""
    return [
        r for r in rows if (not direction or r["direction"] == direction) and all(r.get(f) for f in flags)
    ]


def compare_step(at: int, steps: list[int]) -> int | None:
    """The compared run's step to show: ``at`` when it has it, else its nearest (None without scores)."""
    if not steps:
        return None
    return at if at in steps else min(steps, key=lambda s: (abs(s - at), -s))


def step_note(other_id: int, at: int, shown: int | None) -> str:
    """Plain text: which step of the compared run is shown, when it is not ``at``."""
    if shown is None:
        return f"Run #{other_id} has no eval pair scores yet."
    return (
        "" if shown == at else f"Run #{other_id} has no eval scores at step {at}: its step {shown} is shown."
    )


def table_note(shown: int, total: int, direction: str, flags: list[str], compared: bool) -> str:
    """One line of plain text above the table: how many pairs are shown, or why none is."""
    if total == 0:
        return "No eval pair scores at this step."
    if shown:
        return f"{shown} of {total} pairs shown; click a row to open the pair."
    wanted = [f"direction {direction}"] if direction else []
    wanted += [label for label, flag in FLAGS if flag in flags]
    hint = " (choose a run to compare with)" if DISAGREE in flags and not compared else ""
    return f"No pair of the {total} matches: {', '.join(wanted)}{hint}."


def regime_lines(objective: dict[str, Any], score: PairScoreRecord) -> list[str]:
    """One line per gradient-regime flag: CAPO's with the pair's numbers and thresholds (``explain``);
    for the other objectives why neither flag can occur, from the gradients' signs, with the pair's."""
    name = objective.get("name", "?")
    lw, ll = score.logp_chosen, score.logp_rejected
    if name == "capo":
        return explain(lw, ll, float(objective["alpha"]), float(objective["beta"]))
    on_w, on_l = GRADIENTS.get(name, ("dL/dlw", "dL/dll"))
    dlw, dll = sum(score.grad_chosen.values()), sum(score.grad_rejected.values())
    return [
        f"post-edit pushed down: cannot occur under {name}: dL/dlw = {on_w} < 0 since s = σ(z) − 1 < 0, "
        f"so a step always raises lw (this pair: dL/dlw = {dlw:+.5f})",
        f"MT pushed up: cannot occur under {name}: dL/dll = {on_l} > 0, so a step always lowers ll "
        f"(this pair: dL/dll = {dll:+.5f})",
    ]


def regimes_markdown(objective: dict[str, Any], score: PairScoreRecord) -> str:
    """The regime lines as a Markdown list, every line escaped to show literally."""
    lines = [f"- {markdown_text(line)}" for line in regime_lines(objective, score)]
    return "\n".join(["**Gradient regimes of this pair**", "", *lines])


NO_TOKENS = "<p><em>no per-token log-probs stored at this step</em></p>"


def study_pair_note(found, step: str) -> str:
    """One Markdown line: the pair, the study and how many of its runs scored it; the others with why."""
    where = f"study #{int(found.study_id)} {found.study}, {found.split} split, step {step}"
    missing = "; ".join(f"#{m.run_id} {m.name}: {m.reason}" for m in found.missing)
    if not found.runs:
        return markdown_text(f"No run of {where} has scores for pair {found.pair_id}: {missing}.")
    total = len(found.runs) + len(found.missing)
    line = f"Pair {found.pair_id} · {found.direction} · {where}: {len(found.runs)} of {total} runs"
    return markdown_text(f"{line}; without it: {missing}." if missing else f"{line}.")


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _heatmap(label: str, tokens, logps, text: str | None) -> str:
    """A response's heat map; ``text``, the response, gives the characters its byte tokens split."""
    shown = token_heatmap_html(tokens, logps, text) if tokens and len(tokens) == len(logps) else NO_TOKENS
    return f"<h5>{label}</h5>{shown}"


def study_column_html(r, post_edit: str | None = None, mt: str | None = None) -> str:
    """One run's column (a ``studies.StudyPairRun``): its name, Δ beside the base model's, lw, ll, loss
    and both heat maps (``post_edit`` and ``mt``: the responses' texts), topped in the run's colour; every
    text HTML-escaped."""
    head = f"#{int(r.run_id)} {html.escape(r.name)}"
    numbers = (
        f"<p><b>Δ = {r.delta:.3f}</b> (base Δ {_fmt(r.base_delta)})<br>"
        f"lw = {r.lw:.3f} · ll = {r.ll:.3f} · loss = {r.loss:.4f}</p>"
    )
    about = f"<p>{html.escape(r.objective)} · seed {int(r.seed)} · step {int(r.step)}</p>"
    chosen = _heatmap("Chosen (post-edit)", r.chosen_tokens, r.chosen_logps, post_edit)
    rejected = _heatmap("Rejected (MT)", r.rejected_tokens, r.rejected_logps, mt)
    style = f"flex:1 0 240px;min-width:240px;border-top:4px solid {run_colour(r.run_id)};padding-top:4px"
    return f'<div class="study-run" style="{style}"><h4>{head}</h4>{about}{numbers}{chosen}{rejected}</div>'


def study_pair_html(found) -> str:
    """The pair's texts, then one column per run that scored it side by side; nothing when none did."""
    if not found.runs:
        return ""
    texts = "".join(
        f"<p><b>{label}:</b> {html.escape(text)}</p>"
        for label, text in (("Source", found.source), ("Post-edit", found.post_edit), ("MT", found.mt))
    )
    columns = "".join(study_column_html(r, found.post_edit, found.mt) for r in found.runs)
    row = '<div class="study-pair" style="display:flex;gap:12px;overflow-x:auto">'
    return f"{texts}{HEATMAP_SCALE}{row}{columns}</div>"
