"""A study report's conclusions in words: one line per comparison, the method, the tables as text.

The same sentences serve the HTML report, the Studies tab and ``capo-lab report --format text``.
A difference is called significant only on its Holm-adjusted p-value; a non-significant one
says the smallest difference the data could have detected.
"""

from __future__ import annotations

from dataclasses import asdict

from capo.analysis.compare import ALL, Comparison
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


def accuracy_lines(report: StudyReport) -> list[str]:
    lines = []
    for cell in report.accuracy:
        i = cell.interval
        lines.append(
            f"{cell.arm:>12}  {cell.direction:>6}  {i.estimate:.3f} [{i.low:.3f}, {i.high:.3f}]  "
            f"n = {i.n} pairs × {i.seeds} seed(s)"
        )
    return lines


def run_lines(report: StudyReport) -> list[str]:
    return [
        f"#{r.run_id} {r.name}: {r.status}, step {'—' if r.step is None else r.step}"
        + (f" (chosen on {r.chosen_on})" if r.chosen_on else "")
        for r in report.runs
    ]


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
    return "\n".join(parts) + "\n"
