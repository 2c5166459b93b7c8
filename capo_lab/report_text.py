"""A study report's conclusions in words: one line per comparison, the method, the tables as text.

The same sentences serve the HTML report, the Studies tab and ``capo-lab report --format text``.
A difference is called significant only on its Holm-adjusted p-value; a non-significant one
says the smallest difference the data could have detected. Benchmark suites get the same sentences
with the item as the unit, and the judge's unjudged items and inconsistency rate said in words.
"""

from __future__ import annotations

from dataclasses import asdict

from capo.analysis.compare import ALL, Comparison
from capo.benchmarks.paired import ArmComparison
from capo.benchmarks.study import JudgeRow, SuiteSection
from capo_lab.reports import StudyReport

ALPHA = 0.05


def _signed(x: float) -> str:
    return f"{x:+.3f}"


def verdict(c: Comparison) -> str:
    if c.p_holm < ALPHA:
        better = c.arm_a if c.difference.estimate > 0 else c.arm_b
        return f"significant after Holm: {better} is more accurate"
    return f"not significant: could not detect differences smaller than {c.mde:.3f}"


def comparison_line(c: Comparison) -> str:
    """``capo − dpo, all: +0.031 [−0.020, +0.080]; 12 / 8 pairs; p 0.50, Holm 0.50 (primary); …``."""
    d = c.difference
    where = "all directions" if c.direction == ALL else c.direction
    seeds = f"seeds {', '.join(map(str, c.seeds))}" if c.seeds else "one base model"
    unmatched = f"; left out: {', '.join(c.unmatched)}" if c.unmatched else ""
    return (
        f"{c.arm_a} − {c.arm_b}, {where}: {_signed(d.estimate)} [{_signed(d.low)}, {_signed(d.high)}], "
        f"n = {d.n} pairs ({seeds}); only {c.arm_a} {c.only_a} / only {c.arm_b} {c.only_b}; "
        f"p = {c.p_value:.3g}, Holm {c.p_holm:.3g} ({c.family}); {verdict(c)}{unmatched}"
    )


def method_lines(report: StudyReport) -> list[str]:
    return [f"{key}: {value}" for key, value in asdict(report.method).items()]


def _estimate(i, unit: str) -> str:
    """An interval as the report prints it: ``0.625 [0.410, 0.800]  n = 16 pairs × 2 seed(s)``."""
    return f"{i.estimate:.3f} [{i.low:.3f}, {i.high:.3f}]  n = {i.n} {unit} × {i.seeds} seed(s)"


def accuracy_lines(report: StudyReport) -> list[str]:
    return [f"{c.arm:>12}  {c.direction:>6}  {_estimate(c.interval, 'pairs')}" for c in report.accuracy]


def run_lines(report: StudyReport) -> list[str]:
    return [
        f"#{r.run_id} {r.name}: {r.status}, step {'—' if r.step is None else r.step}"
        + (f" (chosen on {r.chosen_on})" if r.chosen_on else "")
        for r in report.runs
    ]


def _where(language: str) -> str:
    return "all languages" if language == ALL else language


def _interval(estimate: float, low: float, high: float) -> str:
    return f"{_signed(estimate)} [{_signed(low)}, {_signed(high)}]"


def score_verdict(c: ArmComparison) -> str:
    if c.p_holm < ALPHA:
        return f"significant after Holm: {c.arm_a if c.difference.estimate > 0 else c.arm_b} scores higher"
    return f"not significant: could not detect differences smaller than {c.mde:.3f}"


def score_comparison_line(c: ArmComparison) -> str:
    """``prompt_strict, capo − base, all languages: +0.100 [−0.05, +0.25], n = 20 items; …``."""
    d = c.difference
    missing = f"; {c.missing} item(s) scored under one arm only, left out" if c.missing else ""
    return (
        f"{c.metric}, {c.arm_a} − {c.arm_b}, {_where(c.language)}: {_interval(d.estimate, d.low, d.high)}, "
        f"n = {d.n} items ({d.seeds} matched seed(s)); higher under {c.arm_a} {c.only_a} / {c.arm_b} "
        f"{c.only_b}; p = {c.p_value:.3g}, Holm {c.p_holm:.3g}; {score_verdict(c)}{missing}"
    )


def judge_verdict(row: JudgeRow) -> str:
    c = row.comparison
    if c is None:
        return "no item judged"
    if c.p_holm < ALPHA:
        return f"significant after Holm: {row.arm if c.net.estimate > 0 else 'base'} wins more often"
    return f"not significant: could not detect a net win rate smaller than {c.mde:.3f}"


def judge_line(row: JudgeRow) -> str:
    """An arm against the base by the judge: wins, ties, losses, unjudged apart, inconsistency."""
    head = f"judge, {row.arm} vs base, {_where(row.language)}"
    unjudged = f"{row.unjudged} unjudged (counted as neither wins nor losses)"
    rate = row.inconsistency_rate
    flips = (
        f"inconsistent {row.inconsistent} of {row.verdicts} verdicts ({rate:.0%})" if rate is not None else ""
    )
    c = row.comparison
    if c is None:
        return f"{head}: {unjudged}; no item judged"
    w, n = c.win_rate, c.net
    return (
        f"{head}: {c.judged} items judged, {unjudged}; won {c.wins} / tie verdicts {row.ties} / lost "
        f"{c.losses}; win rate {w.estimate:.3f} [{w.low:.3f}, {w.high:.3f}]; wins − losses "
        f"{_interval(n.estimate, n.low, n.high)}; p = {c.p_value:.3g}, Holm {c.p_holm:.3g}; "
        f"{judge_verdict(row)}; {flips}"
    )


def cell_lines(section: SuiteSection) -> list[str]:
    return [
        f"{c.arm:>12}  {c.metric:<14} {c.language:>4}  {_estimate(c.interval, 'items')}"
        for c in section.cells
    ]


def benchmark_lines(section: SuiteSection) -> list[str]:
    """One suite's section: unit, jobs, each arm's scores, the comparisons (all languages first), judge."""
    ordered = sorted(section.comparisons, key=lambda c: c.language != ALL)
    return [
        f"Benchmark {section.suite}", f"unit: {section.unit}", *section.jobs, *section.notes,
        *cell_lines(section), *map(score_comparison_line, ordered), *map(judge_line, section.judge),
    ]  # fmt: skip


def render_text(report: StudyReport) -> str:
    """The whole report's conclusions as plain text (primary comparisons first)."""
    primary = [c for c in report.comparisons if c.direction == ALL]
    secondary = [c for c in report.comparisons if c.direction != ALL]
    parts = [
        f"Study {report.study} (#{report.study_id}), {report.split} split, step {report.step}",
        "", "Method", *method_lines(report),
        "", "Runs", *run_lines(report),
        "", f"Accuracy (rewards/{report.endpoint})", *accuracy_lines(report),
        "", "Primary comparisons (all directions)", *map(comparison_line, primary),
        "", "Per-direction comparisons", *map(comparison_line, secondary),
    ]  # fmt: skip
    for section in report.benchmarks:
        parts += ["", *benchmark_lines(section)]
    return "\n".join(parts) + "\n"
