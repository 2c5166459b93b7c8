"""A study's report as one self-contained HTML page that opens offline.

plotly.js is inlined once in the head; each item of ``capo_lab.report_figures`` becomes a section with a
heading, a short paragraph and its figure (``<div id="fig-<key>">``) or a one-line note saying why there
is none; each benchmark suite run on the study's runs gets a section (``<section id="benchmark-<suite>">``)
with its scores, comparisons and the judge's wins, unjudged items and inconsistency. Every
user-supplied text (study, run and arm names, directions, factor values, languages) is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from plotly.offline import get_plotlyjs

from capo.analysis.compare import ALL
from capo_lab.report_figures import ReportItem, report_items
from capo_lab.report_text import judge_verdict, method_lines, score_verdict, verdict
from capo_lab.reports import StudyReport

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; }
table.runs, table.comparisons { border-collapse: collapse; font-size: 0.9rem; }
table.runs th, table.runs td, table.comparisons th, table.comparisons td {
  border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; }
p.note { color: #666; font-style: italic; }
section { margin-top: 2.5rem; }
"""
RUN_COLUMNS = ("id", "run", "arm", "seed", "status", "step", "step chosen on")
COMPARISON_COLUMNS = (
    "arm A", "arm B", "direction", "A − B", "95 % interval", "n pairs", "seeds", "only A / only B",
    "p (raw)", "p (Holm)", "family", "verdict",
)  # fmt: skip


def esc(value: object) -> str:
    return html.escape(str(value))


def _header(report: StudyReport) -> str:
    factors = "; ".join(f"{esc(k)} = {', '.join(esc(v) for v in vs)}" for k, vs in report.factors.items())
    directions = ", ".join(esc(d) for d in report.directions)
    return (
        f"<h1>Study report: {esc(report.study)}</h1>\n"
        f"<p>Study #{report.study_id}, {esc(report.split)} split, step {esc(report.step)} of each run. "
        f"Factors: {factors or 'none'}. Arms: {', '.join(esc(a) for a in report.arms)}. "
        f"Directions: {directions}.</p>"
    )


def _row(cells: Iterable[object], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{esc(c)}</{tag}>" for c in cells) + "</tr>"


def _runs(report: StudyReport) -> str:
    rows = [_row(RUN_COLUMNS, "th")]
    for r in report.runs:
        step = "—" if r.step is None else r.step
        rows.append(_row((r.run_id, r.name, r.arm, r.seed, r.status, step, r.chosen_on or "—")))
    missing = ", ".join(esc(m) for m in report.missing) or "none: every run has finished"
    return (
        '<section id="runs"><h2>Runs</h2>\n<p>Every run of the study, its status and the step reported.</p>\n'
        f'<table class="runs">{"".join(rows)}</table>\n'
        f'<p id="missing">Not finished (left out of the figures): {missing}</p></section>'
    )


def _method(report: StudyReport) -> str:
    items = "".join(f"<li>{esc(line)}</li>" for line in method_lines(report))
    return f'<section id="method"><h2>Method</h2>\n<ul>{items}</ul></section>'


def _comparisons(report: StudyReport) -> str:
    ordered = sorted(report.comparisons, key=lambda c: c.direction != ALL)  # primary first
    rows = [_row(COMPARISON_COLUMNS, "th")]
    for c in ordered:
        d = c.difference
        rows.append(_row((
            c.arm_a, c.arm_b, c.direction, f"{d.estimate:+.3f}", f"[{d.low:+.3f}, {d.high:+.3f}]", d.n,
            ", ".join(map(str, c.seeds)) or "—", f"{c.only_a} / {c.only_b}", f"{c.p_value:.3g}",
            f"{c.p_holm:.3g}", c.family, verdict(c),
        )))  # fmt: skip
    return (
        '<section id="comparisons"><h2>Comparisons</h2>\n<p>Every pair of arms on the same pairs, the '
        "primary endpoint (all directions) first. Significance is read on the Holm-adjusted p-value; a "
        "non-significant row says the smallest difference the data could have detected (80 % power, "
        f'alpha 0.05).</p>\n<table class="comparisons">{"".join(rows)}</table></section>'
    )


SCORE_COLUMNS = ("arm", "metric", "language", "mean", "95 % interval", "n items", "seeds")
BENCHMARK_COLUMNS = (
    "metric", "arm A", "arm B", "language", "A − B", "95 % interval", "n items", "higher A / B", "p (raw)",
    "p (Holm)", "verdict",
)  # fmt: skip
JUDGE_COLUMNS = (
    "arm vs base", "language", "judged", "unjudged", "won / lost", "tie verdicts", "win rate",
    "wins − losses", "p (Holm)", "inconsistent", "verdict",
)  # fmt: skip


def _span(estimate: float, low: float, high: float, sign: str = "+") -> tuple[str, str]:
    return f"{estimate:{sign}.3f}", f"[{low:{sign}.3f}, {high:{sign}.3f}]"


def _table(rows: list[str], css: str = "comparisons") -> str:
    return f'<table class="{css}">{"".join(rows)}</table>'


def _score_table(section) -> str:
    return _table([_row(SCORE_COLUMNS, "th")] + [
        _row((c.arm, c.metric, c.language, *_span(c.interval.estimate, c.interval.low, c.interval.high, ""),
              c.interval.n, c.interval.seeds))
        for c in section.cells
    ])  # fmt: skip


def _comparison_table(section) -> str:
    return _table([_row(BENCHMARK_COLUMNS, "th")] + [
        _row((c.metric, c.arm_a, c.arm_b, c.language, *_span(c.difference.estimate, c.difference.low,
              c.difference.high), c.difference.n, f"{c.only_a} / {c.only_b}", f"{c.p_value:.3g}",
              f"{c.p_holm:.3g}", score_verdict(c)))
        for c in sorted(section.comparisons, key=lambda c: c.language != ALL)
    ])  # fmt: skip


def _judge_table(section) -> str:
    rows = [_row(JUDGE_COLUMNS, "th")]
    for r in section.judge:
        c, rate = r.comparison, r.inconsistency_rate
        flips = f"{r.inconsistent} of {r.verdicts} ({rate:.0%})" if rate is not None else "—"
        numbers = (
            (r.language, c.judged, r.unjudged, f"{c.wins} / {c.losses}", r.ties,
             " ".join(_span(c.win_rate.estimate, c.win_rate.low, c.win_rate.high, "")),
             " ".join(_span(c.net.estimate, c.net.low, c.net.high)), f"{c.p_holm:.3g}")
            if c else (r.language, 0, r.unjudged, "—", 0, "—", "—", "—")
        )  # fmt: skip
        rows.append(_row((r.arm, *numbers, flips, judge_verdict(r))))
    return _table(rows, "comparisons judge")


def _benchmark_tables(section) -> list[str]:
    return [_score_table(section), _comparison_table(section)] + (
        [_judge_table(section)] if section.judge else []
    )


def _benchmark(section) -> str:
    """One suite: where its numbers come from, the unit, then its tables."""
    listed = "".join(f"<li>{esc(line)}</li>" for line in [*section.jobs, *section.notes])
    about = (
        f"Arms compared on the same items; unit: {esc(section.unit)}. Differences: Tango's interval, exact "
        "sign test, Holm within all languages and within per-language rows. Judged items only: an "
        "unjudged item is counted apart, never as a win or a loss; a verdict that flips with the order of "
        "the answers is a tie and counts as inconsistent."
    )
    return (
        f'<section id="benchmark-{esc(section.suite)}"><h2>Benchmark: {esc(section.suite)}</h2>\n'
        f"<p>{about}</p>\n<ul>{listed}</ul>\n" + "\n".join(_benchmark_tables(section)) + "</section>"
    )


def _section(item: ReportItem) -> str:
    if item.figure is None:
        body = f'<p class="note" id="note-{item.key}">No figure: {esc(item.note)}.</p>'
    else:
        body = item.figure.to_html(
            full_html=False, include_plotlyjs=False, div_id=f"fig-{item.key}", config={"responsive": True}
        )
    heading = f"<h2>{esc(item.heading)}</h2>\n<p>{esc(item.about)}</p>"
    return f'<section id="{item.key}">{heading}\n{body}</section>'


def render(report: StudyReport) -> str:
    """The whole page: head with plotly.js, the study's summary, its runs, then one section per item."""
    sections = "\n".join(
        [*(_section(item) for item in report_items(report)), *(_benchmark(s) for s in report.benchmarks)]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Study report: {esc(report.study)}</title>\n<style>{STYLE}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n</head>\n<body>\n'
        f"{_header(report)}\n{_method(report)}\n{_runs(report)}\n{_comparisons(report)}\n{sections}\n"
        "</body>\n</html>\n"
    )
