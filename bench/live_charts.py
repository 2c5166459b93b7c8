"""One tick of the Runs tab's live charts, before and after reading only the new rows of the charted keys.

Builds a temporary SQLite lab of 10 running runs x 20,000 metric rows: every step a training batch's
charted keys (loss, accuracy, learning rate, throughput), every 10th step an evaluation's (loss,
accuracy, log-probs overall and per direction, regime shares). It then times a tick three ways:

- whole history (the issue's account of the tab): each run's every row re-read, one statement per
  run, and every figure redrawn;
- per-run reads (the tab before this change): one statement per run for the rows after the last step
  seen, every figure redrawn (the pair-score views included) when a row is new, and the same reads
  after the runs finished;
- now: one statement for every run's new rows of the charted keys (after one for the runs' statuses),
  each chart given only its keys' points, the pair-score views redrawn only for an evaluation, and
  nothing read once no run is queued or running.

Each in four cases: nothing new, 1 new training step per run, 10 new steps per run (one of them an
evaluation), all runs finished.

    python bench/live_charts.py                  # 10 runs x 20,000 rows, median of 5 ticks
    python bench/live_charts.py --runs 3 --rows 2000 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import gradio as gr  # noqa: E402
from sqlalchemy import event  # noqa: E402

from app.charts import Point, delta_distribution, line_chart, sweep_or_why  # noqa: E402
from app.charts_compare import margin_chart, regime_chart, renamed  # noqa: E402
from app.runs_compare import run_looks  # noqa: E402
from app.tab_runs import (  # noqa: E402
    ACCURACIES,
    COMPARISON_OUTPUTS,
    FIGURES,
    LOSSES,
    MARGINS,
    SPLIT_NAMES,
    accuracy_keys,
    comparison_view,
    refreshed,
)
from capo.analysis.sweep import sweep_point  # noqa: E402
from capo_lab.service import LabService  # noqa: E402
from capo_lab.settings import Settings  # noqa: E402
from storage import writes  # noqa: E402

TRAINING = ("loss", "rewards/accuracies", "learning_rate", "throughput/pairs_per_second")
EVALUATION = (
    "eval_loss", "eval_rewards/accuracies", "eval_logps/chosen", "eval_logps/rejected",
    "eval_logps/chosen/en-de", "eval_logps/chosen/en-zh", "eval_logps/rejected/en-de",
    "eval_logps/rejected/en-zh", "eval_regime/chosen_down", "eval_regime/rejected_up",
    "eval_regime/toward_rejected",
)  # fmt: skip
EVAL_EVERY = 10


def step_rows(step: int, evaluations: bool = True) -> list[tuple[int, str, float]]:
    """A step's rows: its training batch's, and its evaluation's every ``EVAL_EVERY`` steps."""
    keys = TRAINING + (EVALUATION if evaluations and step % EVAL_EVERY == 0 else ())
    return [(step, key, (step % 97) / 97 + i / 100) for i, key in enumerate(keys)]


def build_lab(home: Path, runs: int, rows: int) -> tuple[LabService, list[int], int]:
    """A lab of ``runs`` running runs with ``rows`` metric rows each; returns the service, the run ids
    and the last step logged."""
    service = LabService(Settings(home=home))
    logged, step = [], 0
    while len(logged) < rows:
        step += 1
        logged += step_rows(step)
    ids = []
    for i in range(runs):
        config = {"objective": {"name": "capo", "alpha": 1.0 + i, "beta": 0.1}}
        with service.db.write() as session:
            ids.append(writes.add_run(session, f"run-{i}", config, None, "running"))
            writes.add_metrics(session, ids[-1], logged[:rows])
    return service, ids, logged[rows - 1][0]


# ---- the tab before this change: one read per run of every key after the last step seen, and every
# chart given every point read ---------------------------------------------------------------------
def old_fetch(service, run_ids: list[int], cache: dict) -> tuple[dict, bool]:
    cache = {rid: cache.get(rid, {"after": -1, "points": []}) for rid in run_ids}
    grew = False
    for rid, entry in cache.items():
        rows = service.metrics(rid, after_step=entry["after"])
        entry["points"] = entry["points"] + [Point(f"#{rid}", r.step, r.key, r.value) for r in rows]
        if rows:
            entry["after"], grew = max(r.step for r in rows), True
    return cache, grew


def old_training_figures(points: list, looks: dict, accuracy: str, objectives: dict, margin: str) -> list:
    names = dict(zip(accuracy_keys(accuracy), SPLIT_NAMES, strict=True))
    title = f"Reward accuracy: {accuracy or next(iter(ACCURACIES))}"
    return [
        line_chart(renamed(points, LOSSES), list(LOSSES.values()), "Loss", looks=looks),
        line_chart(renamed(points, names), list(names.values()), title, looks=looks, y_range=(0, 1)),
        margin_chart(points, looks, objectives, MARGINS.get(margin, False)),
        regime_chart(points, looks),
        line_chart(points, ["learning_rate"], "Learning rate", looks=looks),
        line_chart(points, ["throughput/pairs_per_second"], "Throughput (pairs/s)", looks=looks),
    ]


def old_sweep(configs: dict, cache: dict, parameter: str = "alpha"):
    points = [
        sweep_point(
            float(c["objective"][parameter]), [(p.step, p.key, p.value) for p in cache[rid]["points"]]
        )
        for rid, c in configs.items()
        if c["objective"].get(parameter) is not None and cache.get(rid, {}).get("points")
    ]
    return sweep_or_why(points, parameter, len(configs))


def old_figures(service, run_ids: list[int], cache: dict, accuracy: str = "", margin: str = "") -> list:
    """As the tab drew them: the configs read again, every figure, the pair-score views included."""
    configs = service.run_configs(run_ids)
    looks = run_looks(configs)
    points = [p for entry in cache.values() for p in entry["points"]]
    objectives = {f"#{rid}": c["objective"]["name"] for rid, c in configs.items()}
    deltas = {
        looks[f"#{r}"].name: service.deltas(r, "eval", "last") for r in run_ids if service.score_steps(r)
    }
    loss, acc, margins, regimes, lr, throughput = old_training_figures(
        points, looks, accuracy, objectives, margin
    )
    colours = {look.name: look.colour for look in looks.values()}
    delta_figure = delta_distribution(deltas, "Δr = lw − ll per direction at the latest evaluation", colours)
    return [
        *comparison_view(service, run_ids, configs),
        *[loss, acc, margins, regimes, delta_figure, old_sweep(configs, cache), lr, throughput],
    ]


def old_tick(service, run_ids: list[int], cache: dict, whole: bool) -> list:
    cache, grew = old_fetch(service, run_ids, {} if whole else cache)
    skip = [gr.skip()] * (COMPARISON_OUTPUTS + FIGURES)
    return [cache, *old_figures(service, run_ids, cache)] if grew else [cache, *skip]


# ---- timing ----------------------------------------------------------------------------------------
class Ticks:
    """Each way's state between its ticks, its times (ms) per case and its SQL statements per tick."""

    def __init__(self, service, run_ids: list[int]) -> None:
        self.service, self.run_ids = service, run_ids
        self.ways: dict[str, Callable[[object], list]] = {
            "whole history": lambda s: old_tick(service, run_ids, s, whole=True),
            "per-run reads": lambda s: old_tick(service, run_ids, s, whole=False),
            "now": lambda s: refreshed(service, run_ids, s, "", "", False),
        }
        self.states = {"whole history": {}, "per-run reads": old_fetch(service, run_ids, {})[0]}
        self.states["now"] = refreshed(service, run_ids, None, "", "", True)[0]
        self.times: dict[tuple[str, str], list[float]] = {}
        self.sql: dict[tuple[str, str], int] = {}
        self.statements = 0
        event.listen(service.db.engine, "before_cursor_execute", self._count)

    def _count(self, *_args) -> None:
        self.statements += 1

    def tick(self, case: str) -> None:
        for way, tick in self.ways.items():
            self.statements, started = 0, time.perf_counter()
            self.states[way] = tick(self.states[way])[0]
            self.times.setdefault((case, way), []).append((time.perf_counter() - started) * 1000)
            self.sql[(case, way)] = self.statements


def log_steps(service, run_ids: list[int], first: int, steps: int, evaluations: bool = True) -> int:
    """Each run logs ``steps`` more steps from ``first``; returns the last step logged."""
    rows = [r for s in range(first, first + steps) for r in step_rows(s, evaluations)]
    for rid in run_ids:
        with service.db.write() as session:
            writes.add_metrics(session, rid, rows)
    return first + steps - 1


def finish(service, run_ids: list[int]) -> None:
    with service.db.write() as session:
        for rid in run_ids:
            writes.update_run(session, rid, status="succeeded")


def ratio(before: float, now: float) -> str:
    """``before`` / ``now``; a tick that runs nothing (well under 0.1 ms) has no meaningful ratio."""
    return f"{before / now:.0f}x" if now >= 0.1 else "(none run)"


def report(ticks: Ticks, cases: list[str]) -> None:
    ways = list(ticks.ways)
    print(f"{'case':31}" + "".join(f"{w:>21}" for w in ways) + f"{'whole/now':>12}{'per-run/now':>12}")
    for case in cases:
        ms = {w: statistics.median(ticks.times[(case, w)]) for w in ways}
        cells = "".join(f"{ms[w]:>9.2f} ms {ticks.sql[(case, w)]:>3} SQL " for w in ways)
        now = ms["now"]
        print(f"{case:31}{cells}{ratio(ms['whole history'], now):>12}{ratio(ms['per-run reads'], now):>12}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rows", type=int, default=20_000, help="metric rows per run")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="capo-live-bench-") as home:
        started = time.perf_counter()
        service, run_ids, last = build_lab(Path(home), args.runs, args.rows)
        print(f"{args.runs} runs x {args.rows} rows, steps 1..{last}: {time.perf_counter() - started:.1f} s")
        ticks = Ticks(service, run_ids)
        cases = ["nothing new", "1 new training step per run", "10 new steps per run"]
        cases += ["all finished (the first tick)", "all finished"]
        for _ in range(args.repeats):
            ticks.tick(cases[0])
            last = log_steps(service, run_ids, last + 1, 1, evaluations=False)
            ticks.tick(cases[1])
            last = log_steps(service, run_ids, last + 1, 10)
            ticks.tick(cases[2])
        finish(service, run_ids)
        ticks.tick(cases[3])
        for _ in range(args.repeats):
            ticks.tick(cases[4])
        print(f"median ms per tick and SQL statements in one tick, of {args.repeats} ticks")
        report(ticks, cases)
        service.db.close()


if __name__ == "__main__":
    main()
