"""The Benchmarks tab's item inspector: one item of a job (``capo_lab.benchmarks.ItemView``) as HTML,
its prompt and every arm's answer turn by turn, its scores, which IFEval checks passed (strict and
loose), the judge's verdicts in both orders and MT-Bench's ratings per turn. Every text that comes from
a dataset, a model or the judge is HTML-escaped."""

from __future__ import annotations

import html
from collections.abc import Iterable

PRE = '<pre style="white-space: pre-wrap; margin: 0">{}</pre>'
# What each of the judge's verdicts picks, in each order (capo_lab.judge.combine).
FIRST_PICKS = {"A": "adapter", "B": "base", "TIE": "tie"}  # the adapter shown as Answer (A)
SECOND_PICKS = {"A": "base", "B": "adapter", "TIE": "tie"}  # the base shown as Answer (A)
OUTCOMES = {"a": "the adapter wins", "b": "the base wins", "tie": "a tie", "unjudged": "unjudged"}
NO_ITEM = "<p>Choose an item to see its prompt, the answers, the checks and the judge's verdicts.</p>"


def item_key(item) -> str:
    return f"{item.language}/{item.item_id}"


def _headline(item) -> str:
    """The adapter's main score of an item, for its label."""
    for metric, shown in (("prompt_strict", "strict"), ("judge_vs_base", "vs base"), ("rating", "rating")):
        found = item.scores.get(f"adapter/{metric}")
        if found is not None:
            value = found["value"]
            return f" · {shown} {'—' if value is None else f'{value:g}'}"
    return ""


def item_choices(items: Iterable) -> list[tuple[str, str]]:
    return [(f"{i.language} · {i.item_id}{_headline(i)}", item_key(i)) for i in items]


def find_item(items: Iterable, key: str | None):
    return next((i for i in items if item_key(i) == key), None)


def _text(value: object) -> str:
    return html.escape(str(value))


def _cell(texts: tuple[str, ...], turn: int) -> str:
    return f"<td>{PRE.format(_text(texts[turn]))}</td>" if turn < len(texts) else "<td>—</td>"


def turns_html(item) -> str:
    """A column per arm; per turn a row with the exact prompt each arm was given and one with its answer."""
    arms = sorted(set(item.prompts) | set(item.answers))
    turns = max((len(t) for t in [*item.prompts.values(), *item.answers.values()]), default=0)
    head = "".join(f"<th>{_text(arm)}</th>" for arm in arms)
    rows = [
        f"<tr><th>Turn {n + 1} {what}</th>{''.join(_cell(found.get(arm, ()), n) for arm in arms)}</tr>"
        for n in range(turns)
        for what, found in (("prompt", item.prompts), ("answer", item.answers))
    ]
    return f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table>"


def scores_html(item) -> str:
    if not item.scores:
        return "<p>Not scored (yet).</p>"
    rows = [
        f"<tr><td>{_text(name)}</td><td>{'unscored' if s['value'] is None else _text(s['value'])}</td></tr>"
        for name, s in sorted(item.scores.items())
    ]
    return f"<table><tr><th>arm/metric</th><th>value</th></tr>{''.join(rows)}</table>"


def _passed(value: bool | None) -> str:
    return "—" if value is None else ("✓ passed" if value else "✗ failed")


def checks_html(item) -> str:
    """M-IFEval: each instruction's strict and loose verdicts, per arm."""
    parts = []
    for arm in ("adapter", "base"):
        found = item.scores.get(f"{arm}/prompt_strict")
        if found is None:
            continue
        rows = [
            f"<tr><td>{_text(c.get('instruction_id'))}</td><td>{_text(c.get('status'))}</td>"
            f"<td>{_passed(c.get('strict'))}</td><td>{_passed(c.get('loose'))}</td>"
            f"<td>{_text(c.get('note') or '')}</td></tr>"
            for c in found["detail"].get("instructions", [])
        ]
        head = "<tr><th>instruction</th><th>status</th><th>strict</th><th>loose</th><th>note</th></tr>"
        parts.append(f"<h5>IFEval checks, {_text(arm)}</h5><table>{head}{''.join(rows)}</table>")
    return "".join(parts)


def _pick(verdict: str | None, picks: dict[str, str]) -> str:
    if verdict is None:
        return "malformed (no verdict read)"
    return f"{_text(verdict)} → {_text(picks.get(verdict, '?'))}"


def verdicts_html(item) -> str:
    """XLSum: the judge's verdict with the adapter shown first, then with the base shown first."""
    found = item.scores.get("adapter/judge_vs_base")
    if found is None:
        return ""
    d = found["detail"]
    lines = [
        f"adapter shown as Answer (A): {_pick(d.get('first'), FIRST_PICKS)}",
        f"base shown as Answer (A): {_pick(d.get('second'), SECOND_PICKS)}",
        f"outcome: {_text(OUTCOMES.get(d.get('outcome'), d.get('outcome')))}"
        + (" (the two orders disagree: counted as a tie, inconsistent)" if d.get("inconsistent") else ""),
    ]
    lines += [f"note: {_text(d['note'])}"] if d.get("note") else []
    return (
        "<h5>The judge's verdicts, both orders</h5><ul>" + "".join(f"<li>{x}</li>" for x in lines) + "</ul>"
    )


def ratings_html(item) -> str:
    """MT-Bench: the judge's 1–10 rating of each turn, per arm."""
    lines = []
    for arm in ("adapter", "base"):
        found = item.scores.get(f"{arm}/rating")
        if found is None:
            continue
        ratings = ", ".join(
            f"turn {n}: {'—' if r is None else _text(r)}"
            for n, r in enumerate(found["detail"].get("ratings", []), 1)
        )
        note = found["detail"].get("note")
        lines.append(f"{_text(arm)}: {ratings}" + (f" ({_text(note)})" if note else ""))
    if not lines:
        return ""
    return "<h5>The judge's ratings (1–10)</h5><ul>" + "".join(f"<li>{x}</li>" for x in lines) + "</ul>"


def item_html(item) -> str:
    """Everything about one item; ``NO_ITEM`` when there is none."""
    if item is None:
        return NO_ITEM
    head = f"<h4>{_text(item.language)} · item {_text(item.item_id)}</h4>"
    details = checks_html(item) + verdicts_html(item) + ratings_html(item)
    return head + turns_html(item) + "<h5>Scores</h5>" + scores_html(item) + details
