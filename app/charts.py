"""Plotly figures from plain data: pure functions, no I/O, unit-tested."""

from __future__ import annotations

import difflib
import html
import math
import re
import textwrap
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import plotly.graph_objects as go

from capo.analysis.sweep import SweepPoint
from capo.objective_defs import PARAM_SYMBOLS

if TYPE_CHECKING:
    from capo_lab.translations import DirectionChrf

MAX_POINTS = 2000
# A chart with more points than this is drawn with WebGL (go.Scattergl), fewer as SVG (go.Scatter). Each
# WebGL chart holds a browser WebGL context (Chromium allows 16 a page, and draws them in software
# without a GPU), so the few points of most charts stay SVG.
WEBGL_POINTS = 20_000


class Point(NamedTuple):
    """One logged value of one run. A named tuple, not a dataclass: the live charts make one per metric
    row read, and a tuple is made in half the time."""

    run: str
    step: int
    key: str
    value: float


def downsample(points: Sequence[tuple[int, float]], max_points: int = MAX_POINTS) -> list[tuple[int, float]]:
    """Keep at most ``max_points`` by taking every k-th point; the first and last always stay."""
    if len(points) <= max_points:
        return list(points)
    stride = math.ceil(len(points) / (max_points - 1))
    kept = list(points[::stride])
    if kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept


def _series(points: Iterable[Point], keys: Sequence[str]) -> dict[tuple[str, str], list[tuple[int, float]]]:
    series: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    wanted = set(keys)
    for p in points:
        if p.key in wanted and math.isfinite(p.value):
            series[(p.run, p.key)].append((p.step, p.value))
    return {k: sorted(v) for k, v in series.items()}


@dataclass(frozen=True)
class RunLook:
    """How one run appears in every chart: its legend name and its colour."""

    name: str
    colour: str


DASHES = ("solid", "dash", "dot", "dashdot")
FEW_STEPS = 10  # up to this step, a step axis ticks every step
NOTHING_YET = "nothing logged yet"


def esc(value: object) -> str:
    """Text for a plotly label: plotly reads a few HTML tags, so run names and directions are escaped."""
    return html.escape(str(value), quote=False)


def empty_figure(title: str, height: int = 340) -> go.Figure:
    """A figure with no axes whose title, wrapped to fit beside another chart, says why nothing is drawn."""
    fig = go.Figure()
    fig.update_layout(
        title="<br>".join(textwrap.wrap(title, 70)),
        height=height,
        xaxis_visible=False,
        yaxis_visible=False,
        plot_bgcolor="rgba(0,0,0,0)",
    )
    return fig


def step_axis(steps: Iterable[int]) -> dict:
    """An x axis of training steps: whole numbers only. Up to ``FEW_STEPS`` steps every step is a tick;
    beyond, plotly's own spacing (1, 2, 5 × 10ⁿ: whole numbers there) printed without decimals."""
    last = max(steps, default=0)
    return {"title": "step", "tickformat": "d", **({"dtick": 1, "tick0": 0} if last <= FEW_STEPS else {})}


BOTTOM_LEGEND = {"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0, "font": {"size": 10}}


def _line(run: str, key: str, kept: list, keys: Sequence[str], looks: dict[str, RunLook] | None, webgl: bool):
    """One run's line of ``key`` from its ``kept`` (step, value) points; WebGL if ``webgl``."""
    look = (looks or {}).get(run)
    colour = {"color": look.colour} if look else {}
    name = esc(look.name) if look else run
    trace = go.Scattergl if webgl else go.Scatter
    return trace(
        x=[s for s, _ in kept],
        y=[v for _, v in kept],
        mode="lines+markers",
        name=f"{name} · {key}" if len(keys) > 1 else name,
        marker={"size": 4, **colour},
        line={"dash": DASHES[list(keys).index(key) % len(DASHES)], **colour},
        legendgroup=run,
    )


def line_chart(
    points: Iterable[Point],
    keys: Sequence[str],
    title: str,
    y_title: str = "",
    looks: dict[str, RunLook] | None = None,
    y_range: tuple[float, float] | None = None,
) -> go.Figure:
    """One line per (run, key), steps on x, downsampled to ``MAX_POINTS`` per line; with ``looks``, the
    run's name and colour, one dash per key; WebGL only past ``WEBGL_POINTS`` points in all. Without
    data, a title that says nothing is logged yet."""
    series = {line: downsample(values) for line, values in sorted(_series(points, keys).items())}
    if not series:
        return empty_figure(f"{title}: {NOTHING_YET}")
    webgl = sum(map(len, series.values())) > WEBGL_POINTS
    fig = go.Figure([_line(run, key, kept, keys, looks, webgl) for (run, key), kept in series.items()])
    steps = [s for kept in series.values() for s, _ in kept]
    fig.update_layout(
        title=title,
        xaxis=step_axis(steps),
        yaxis_title=y_title,
        height=380,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        legend=BOTTOM_LEGEND,
    )
    if y_range:
        fig.update_yaxes(range=list(y_range))
    return fig


def direction_keys(points: Iterable[Point], prefix: str) -> list[str]:
    """Metric keys ``prefix/<direction>`` present in ``points``, sorted."""
    return sorted({p.key for p in points if p.key.startswith(prefix + "/")})


def delta_distribution(
    deltas: dict[str, list[tuple[str, float]]], title: str, colours: dict[str, str] | None = None
) -> go.Figure:
    """Δr = lw − ll per direction as box plots, one colour per run (paper Fig. 6)."""
    if not deltas:
        return empty_figure(f"{title}: no eval pair scores yet", 360)
    fig = go.Figure()
    for run, rows in deltas.items():
        colour = (colours or {}).get(run)
        fig.add_trace(
            go.Box(
                x=[esc(d) for d, _ in rows],
                y=[v for _, v in rows],
                name=esc(run),
                boxpoints="all",
                jitter=0.3,
                pointpos=0,
                **({"marker_color": colour} if colour else {}),
            )
        )
    fig.add_hline(y=0, line_dash="dot", line_color="grey")
    fig.update_layout(
        title=title,
        boxmode="group",
        xaxis=every_category(sorted({esc(d) for rows in deltas.values() for d, _ in rows})),
        yaxis_title="Δr = lw − ll (nats)",
        height=380,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        legend=BOTTOM_LEGEND,
    )
    return fig


def every_category(categories: Sequence[str]) -> dict:
    """A categorical x axis that labels every category, in this order: plotly's automatic ticks leave some
    out once the labels are crowded (the Δr boxes showed 7 of 8 directions)."""
    return {
        "type": "category",
        "categoryorder": "array",
        "categoryarray": list(categories),
        "tickmode": "array",
        "tickvals": list(categories),
        "ticktext": list(categories),
        "automargin": True,
    }


SYMBOLS = PARAM_SYMBOLS  # objective parameter → its symbol (capo/objective_defs.py)


def sweep_or_why(points: Sequence[SweepPoint], parameter: str, selected: int) -> go.Figure:
    """The sweep chart when the selected runs have two or more values of ``parameter``; else a title that
    says why it is not drawn (``selected``: how many runs are selected)."""
    values = sorted({p.value for p in points})
    if len(values) >= 2:
        return sweep_chart(points, parameter)
    name = SYMBOLS.get(parameter, parameter)
    having = f"{len(points)} with {name}" + (f" = {values[0]:g}" if values else "")
    return empty_figure(
        f"Sweep over {name}: not drawn; it needs selected runs with two or more {name} values "
        f"({selected} selected, {having})"
    )


def sweep_chart(points: Sequence[SweepPoint], parameter: str) -> go.Figure:
    """Reward accuracy at its best during training and at the end, and the final train loss, against a
    swept value (paper Fig. 9; the paper picks α by the best evaluation accuracy)."""
    points = sorted(points, key=lambda p: p.value)
    split = points[0].split if points else "eval"
    x = [p.value for p in points]
    series = [
        (f"{split} accuracy, best", [p.best_accuracy for p in points], "y"),
        (f"{split} accuracy, final", [p.final_accuracy for p in points], "y"),
        ("train loss, final", [p.final_train_loss for p in points], "y2"),
    ]
    fig = go.Figure(
        [go.Scatter(x=x, y=y, name=name, mode="lines+markers", yaxis=axis) for name, y, axis in series]
    )
    fig.update_layout(
        title=f"Sweep over {parameter}",
        xaxis_title=parameter,
        height=340,
        yaxis={"title": f"{split} reward accuracy", "range": [0, 1]},
        yaxis2={"title": "train loss", "overlaying": "y", "side": "right"},
        legend=BOTTOM_LEGEND,  # on the right it covered the loss axis's labels
    )
    return fig


def bar_chart(categories: Sequence[str], series: dict[str, Sequence[float | None]], title: str) -> go.Figure:
    fig = go.Figure(
        [
            go.Bar(x=[esc(c) for c in categories], y=list(values), name=esc(name))
            for name, values in series.items()
        ]
    )
    fig.update_layout(
        title=esc(title), barmode="group", height=320, margin={"l": 50, "r": 10, "t": 40, "b": 40}
    )
    return fig


NO_TRANSLATIONS = "no translations evaluated yet: use Evaluate translations"
SIGNIFICANCE_NOTE = (
    "Δ trained − base; * p < 0.05, ** p < 0.01: two-sided paired approximate randomization test"
    " (no stars when Δ is 0)"
)


def significance_mark(p_value: float | None, difference: float | None = None) -> str:
    """``**`` for p < 0.01, ``*`` for p < 0.05; nothing otherwise, without a test or when nothing moved."""
    if p_value is None or not math.isfinite(p_value) or difference == 0:
        return ""
    return "**" if p_value < 0.01 else "*" if p_value < 0.05 else ""


def difference_text(difference: float) -> str:
    """``Δ +4.53``; below two decimals one significant digit (``Δ +0.002``), never ``+0.00``; else ``Δ 0``."""
    if difference == 0:
        return "Δ 0"
    return f"Δ {difference:+.2f}" if abs(difference) >= 0.005 else f"Δ {difference:+.1g}"


def significance_label(bar: DirectionChrf) -> str:
    """Above a trained bar: the difference from the base and its stars (``Δ +0.003 **``); the stars alone
    cannot say whether anything moved (issue 19: ``**`` was drawn over two bars at chrF 0.00)."""
    if bar.difference is None:
        return ""
    mark = significance_mark(bar.p_value, bar.difference)
    return f"{difference_text(bar.difference)} {mark}".rstrip()


def chrf_chart(bars: Sequence[DirectionChrf], title: str = "chrF per direction") -> go.Figure:
    """chrF per direction (then "all"), base beside trained; above the trained bar, the difference from
    the base and the paired test's significance. Without bars, an empty figure saying how to get some."""
    fig = go.Figure()
    if not bars:
        fig.update_layout(title=NO_TRANSLATIONS, height=340, xaxis_visible=False, yaxis_visible=False)
        return fig
    if any(b.base is not None for b in bars):
        fig.add_trace(go.Bar(x=[b.direction for b in bars], y=[b.base for b in bars], name="base"))
    fig.add_trace(_trained_bar(bars))
    note = {"text": SIGNIFICANCE_NOTE, "xref": "paper", "yref": "paper", "x": 0, "y": -0.22}
    fig.update_layout(
        title=title,
        barmode="group",
        yaxis_title="chrF",
        height=360,
        margin={"l": 50, "r": 10, "t": 40, "b": 70},
        annotations=[{**note, "showarrow": False, "xanchor": "left", "font": {"size": 11}}],
    )
    return fig


def _hover(bar: DirectionChrf) -> str:
    p = "p = " + (f"{bar.p_value:.4f}" if bar.p_value is not None else "n/a")
    return p if bar.difference is None else f"Δ = {bar.difference:+.4g}, {p}"


def _trained_bar(bars: Sequence[DirectionChrf]) -> go.Bar:
    return go.Bar(
        x=[b.direction for b in bars],
        y=[b.trained for b in bars],
        name="trained",
        text=[significance_label(b) for b in bars],
        textposition="outside",
        cliponaxis=False,
        hovertext=[_hover(b) for b in bars],
    )


HEAT = "220, 38, 38"
HEATMAP_SCALE = (
    '<div class="heatmap-scale" style="font-size:0.85em;margin:4px 0">per-token log-prob: 0 nats '
    '<span style="display:inline-block;width:160px;height:10px;vertical-align:middle;'
    f'border:1px solid #ccc;background:linear-gradient(to right, rgba({HEAT}, 0), rgba({HEAT}, 1))"></span>'
    " ≤ −10 nats (hover a token for its value)</div>"
)


Piece = tuple[str, list[float]]  # a span's text and the log-probs of the tokens it joins
BROKEN = "\ufffd"  # what a tokenizer's decode gives for bytes that are not whole UTF-8 characters


def join_partial_utf8(tokens: Sequence[str], logps: Sequence[float], text: str | None = None) -> list[Piece]:
    """Tokens as (text, log-probs) pieces, where the tokens holding parts of one UTF-8 character (a
    byte-level tokenizer splits "ğ" into two byte tokens, each decoded alone as U+FFFD) are one piece,
    each of its tokens' log-probs kept. Decoded alone the bytes are lost, so the piece's text is read
    from ``text`` (the response the tokens encode) where the tokens around it line up with it; else the
    piece keeps its U+FFFD."""
    pieces: list[Piece] = []
    for token, logp in zip(tokens, logps, strict=True):
        if pieces and pieces[-1][0].endswith(BROKEN) and token.startswith(BROKEN):
            pieces[-1] = (pieces[-1][0] + token, [*pieces[-1][1], logp])
        else:
            pieces.append((token, [logp]))
    return _read_broken(pieces, text) if text and any(BROKEN in t for t, _ in pieces) else pieces


def _read_broken(pieces: list[Piece], text: str) -> list[Piece]:
    """``pieces`` with each U+FFFD run replaced by the characters at its place in ``text``, when the
    pieces line up with ``text`` (whitespace between them aside) up to a piece after the last such run
    or the text's end (a special token such as ``</s>`` is not in the text); else ``pieces`` as they are."""
    read, at = [], 0
    for i, (piece, values) in enumerate(pieces):
        ahead = pieces[i + 1][0].split(BROKEN)[0].strip() if i + 1 < len(pieces) else ""
        parts = [re.escape(part) for part in re.split(f"{BROKEN}+", piece.strip())]
        until = rf"(?=\s*(?:{re.escape(ahead)}|\Z))" if ahead else ""  # a special token is not in the text
        until = until if i + 1 < len(pieces) else r"(?=\s*\Z)"  # the last piece: the rest of the text
        found = re.compile(r"\s*(" + "(?:.+?)".join(parts) + ")" + until, re.DOTALL).match(text, at)
        if found is None:
            break
        read.append((piece.replace(piece.strip(), found.group(1), 1) if piece.strip() else piece, values))
        at = found.end()
    last = max(i for i, (piece, _) in enumerate(pieces) if BROKEN in piece)
    confirmed = len(read) > last + 1 or (len(read) == last + 1 and not text[at:].strip())
    return read + pieces[len(read) :] if confirmed else pieces


def attach_combining_marks(tokens: Sequence[str], logps: Sequence[float]) -> list[Piece]:
    """Tokens as (text, log-probs) pieces where no piece starts with a combining mark (``attach_marks``)."""
    return attach_marks([(token, [logp]) for token, logp in zip(tokens, logps, strict=True)])


def attach_marks(found: Sequence[Piece]) -> list[Piece]:
    """Pieces where none starts with a combining mark: a piece's leading marks (a Vietnamese tone mark
    split off by the tokenizer) move onto the previous piece, so the browser draws them on their letter;
    a piece that was only marks adds its log-probs to that piece. NFC-composed."""
    pieces: list[Piece] = []
    for token, values in found:
        lead = next((i for i, c in enumerate(token) if not unicodedata.combining(c)), len(token))
        if lead and pieces:
            pieces[-1] = (pieces[-1][0] + token[:lead], pieces[-1][1])
            token = token[lead:]
            if not token:
                pieces[-1][1].extend(values)
                continue
        pieces.append((token, list(values)))
    return [(unicodedata.normalize("NFC", text), values) for text, values in pieces]


def token_heatmap_html(tokens: Sequence[str], logps: Sequence[float], text: str | None = None) -> str:
    """Tokens as spans shaded by log-prob: white at 0 nats, full red at ≤ −10; each token's value on
    hover. The byte tokens of one character are one span (``join_partial_utf8``, its text read from
    ``text``, the response), and marks that combine with the previous token's letter join its span
    (``attach_marks``): a joined span is shaded by the sum of its tokens' log-probs, its own log-prob."""
    spans = []
    for shown, values in attach_marks(join_partial_utf8(tokens, logps, text)):
        logp = sum(values)
        colour = f"rgba({HEAT}, {min(1.0, max(0.0, -logp / 10.0)):.2f})"
        title = " + ".join(f"{v:.3f}" for v in values)
        spans.append(
            f'<span class="tok" title="{title}" style="background:{colour}">{html.escape(shown)}</span>'
        )
    return '<div class="heatmap">' + "".join(spans) + "</div>"


def word_diff_html(rejected: str, chosen: str) -> str:
    """Word-level diff from MT (rejected) to post-edit (chosen): deletions struck, insertions marked."""
    old, new = rejected.split(), chosen.split()
    out = []
    for op, a1, a2, b1, b2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if op in ("delete", "replace"):
            out.append(f"<del>{html.escape(' '.join(old[a1:a2]))}</del>")
        if op in ("insert", "replace"):
            out.append(f"<ins>{html.escape(' '.join(new[b1:b2]))}</ins>")
        if op == "equal":
            out.append(html.escape(" ".join(old[a1:a2])))
    return '<div class="diff">' + " ".join(out) + "</div>"
