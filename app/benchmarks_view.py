"""The Benchmarks tab's tables and lines, from the service's plain records: the plan before queueing,
the jobs with their progress, the scores per language (the base's under the adapter's), and the paired
comparisons with their 95 % intervals (``LabService.compare_benchmark``). Tables hold plain text (a
Dataframe shows its cells as text); the Markdown lines escape whatever a user or a dataset wrote."""

from __future__ import annotations

from app.common import markdown_text, table

JOB_COLUMNS = [
    "job", "suite", "languages", "items", "base", "step", "decoding", "status", "progress", "judge", "note",
]  # fmt: skip
JOB_ACTIVE = ("queued", "running")
COMPARISON_COLUMNS = [
    "metric", "language", "A", "B", "mean A", "mean B", "A − B", "95 % interval", "A higher", "B higher",
    "p (Holm)", "items", "only one arm",
]  # fmt: skip
VERDICT_COLUMNS = [
    "language", "judged", "adapter wins", "base wins", "ties", "win rate", "95 % interval",
    "(wins − losses)/judged", "95 % interval ", "p (Holm)",
]  # fmt: skip
BASE = "base"  # the comparison choice: the job's own base model
NOTHING_YET = "Choose a run with an adapter, a suite and its languages, then queue a benchmark."


def plan_markdown(plan) -> str:
    """One line: the items and arms a job would have, then what the judge would be asked (or not)."""
    arms = markdown_text(" and ".join(plan.arms))
    head = f"**{plan.items} items** \\({markdown_text(', '.join(plan.languages))}\\), answered by the {arms}"
    decoding = markdown_text(f"{_temperature(plan.temperature)} (the paper's setting)")
    return f"{head}, {decoding}; {markdown_text(plan.note)}."


def _temperature(temperature: float) -> str:
    return "greedy" if temperature == 0 else f"sampled at temperature {temperature:g}"


def _decoding(job) -> str:
    return f"{_temperature(job.temperature)}, ≤ {job.max_new_tokens} tokens, seed {job.seed}"


def _limit(job) -> str:
    return "all" if job.limit is None else f"{job.limit} per language"


def _judge(job) -> str:
    return f"≤ {job.judge_requests} requests" if job.judge_requests else "none"


def job_rows(jobs: list) -> list[dict]:
    """Benchmark jobs as table rows: progress in items (total unknown until queued), the judge's
    requests at most, and the error of a failed job or the note of a finished one."""
    return [
        {
            "job": j.id,
            "suite": j.suite,
            "languages": ", ".join(j.languages),
            "items": _limit(j),
            "base": "yes" if j.base else "no",
            "step": j.step if j.evaluated_step is None else f"{j.step} → {j.evaluated_step}",
            "decoding": _decoding(j),
            "status": j.status,
            "progress": f"{j.done}/{'?' if j.total is None else j.total} items",
            "judge": _judge(j),
            "note": j.error or j.note or "",
        }
        for j in jobs
    ]


def jobs_table(jobs: list):
    return table(job_rows(jobs), JOB_COLUMNS)


def any_active(jobs: list) -> bool:
    return any(j.status in JOB_ACTIVE for j in jobs)


def job_choices(jobs: list) -> list[tuple[str, int]]:
    return [(f"#{j.id} {j.suite} · {', '.join(j.languages)} · {j.status}", j.id) for j in jobs]


def other_choices(job, others: list, names: dict[int, str]) -> list[tuple[str, str]]:
    """What the job's adapter can be compared with: its own base (when it answered with it), then
    other finished jobs of the same suite, each named by its run."""
    own = [("this job's base model", BASE)] if job.base else []
    return own + [
        (f"#{o.id} · run #{o.run_id} {names.get(o.run_id, '')} · step {o.evaluated_step}", str(o.id))
        for o in others
    ]


def split_metric(suite: str, key: str) -> tuple[str, str]:
    """``benchmark/{suite}/{name}[/{language}]`` → (name, language or "all")."""
    name, _, language = key.removeprefix(f"benchmark/{suite}/").partition("/")
    return name, language or "all"


def metric_rows(suite: str, metrics: dict[str, float]):
    """A row per metric (the base's, ``base_…``, right under the adapter's), a column per language
    then ``all``; three decimals."""
    cells: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        name, language = split_metric(suite, key)
        cells.setdefault(name, {})[language] = value
    languages = sorted({lang for row in cells.values() for lang in row} - {"all"})
    languages += ["all"] if any("all" in row for row in cells.values()) else []
    names = sorted(cells, key=lambda n: (n.removeprefix("base_"), n.startswith("base_")))
    rows = [{"metric": n, **{lang: _number(cells[n].get(lang)) for lang in languages}} for n in names]
    return table(rows, ["metric", *languages])


def _number(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _interval(interval) -> str:
    return f"[{interval.low:+.3f}, {interval.high:+.3f}]"


def comparison_rows(comparison) -> list[dict]:
    """Each metric per language then over all: both arms' means, A − B with its 95 % interval, how
    many items each arm scored higher on, and the sign test's Holm-adjusted p."""
    return [
        {
            "metric": c.metric,
            "language": c.language,
            "A": c.arm_a,
            "B": c.arm_b,
            "mean A": _number(c.mean_a),
            "mean B": _number(c.mean_b),
            "A − B": f"{c.difference.estimate:+.3f}",
            "95 % interval": _interval(c.difference),
            "A higher": c.only_a,
            "B higher": c.only_b,
            "p (Holm)": _number(c.p_holm, 4),
            "items": c.difference.n,
            "only one arm": c.missing,
        }  # fmt: skip
        for c in comparison.scores
    ]


def verdict_rows(comparison) -> list[dict]:
    """The judge's verdicts of the adapter against its base: judged items (unjudged ones are left
    out), wins, losses and ties, the win rate and the net wins with their 95 % intervals."""
    return [
        {
            "language": w.language,
            "judged": w.judged,
            "adapter wins": w.wins,
            "base wins": w.losses,
            "ties": w.judged - w.wins - w.losses,
            "win rate": _number(w.win_rate.estimate),
            "95 % interval": f"[{w.win_rate.low:.3f}, {w.win_rate.high:.3f}]",
            "(wins − losses)/judged": f"{w.net.estimate:+.3f}",
            "95 % interval ": _interval(w.net),
            "p (Holm)": _number(w.p_holm, 4),
        }  # fmt: skip
        for w in comparison.verdicts
    ]


def comparison_tables(comparison) -> list:
    """[the scores' table, the verdicts' table] (empty tables with their columns when None)."""
    if comparison is None:
        return [table([], COMPARISON_COLUMNS), table([], VERDICT_COLUMNS)]
    return [
        table(comparison_rows(comparison), COMPARISON_COLUMNS),
        table(verdict_rows(comparison), VERDICT_COLUMNS),
    ]


def job_state_line(job) -> str:
    """Where a job stands, in words, with its note (no judge, a judge that failed…) or its error."""
    progress = f"{job.done}/{'?' if job.total is None else job.total} items answered"
    line = f"Benchmark #{job.id} ({job.suite}, run #{job.run_id}) is {job.status}: {progress}"
    if job.status in JOB_ACTIVE:
        line += "; its scores appear when it ends"
    extra = job.error or job.note
    return markdown_text(line + (f". {extra}" if extra else "."))


def comparison_line(job, other: str | None, rows: int) -> str:
    """What the comparison tables show, or why they are empty."""
    if job.status != "succeeded":
        return ""
    if other in (None, "", BASE) and not job.base:
        return "This job did not answer with the base model: choose another job to compare with."
    if rows == 0:
        return "No item was scored under both arms (a judge-scored suite without a judge scores nothing)."
    against = "its base model" if other in (None, "", BASE) else f"benchmark #{markdown_text(other)}"
    return f"Adapter of benchmark #{job.id} (A) against {against} (B), item by item."
