"""Done when (issue 23 item 6): the ETA estimator, fed the phase timings recorded from a real
paper-cpu run up to its step 1, predicts that run's remaining time within 30 %. A test on recorded
timings, not a timed test.

The fixture is the run's ``seconds/<phase>`` rows, start and end, and its end-of-run translation
jobs, written by ``tests/capo_lab/data/extract_timings.py`` from the lab that ran it:

    CAPO_LAB_HOME=/tmp/firstrun-home .venv/bin/python tests/capo_lab/data/extract_timings.py 1 \\
        tests/capo_lab/data/paper_cpu_timings.json

The remaining time at step 1 runs from the moment step 1's row was written (the run's start plus
its clock's ``total`` then) to the end of its last translation job (the run is marked finished
before it translates).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from capo.config import RunConfig
from capo_lab import eta
from capo_lab.records import MetricRow

FIXTURE = Path(__file__).parent / "data" / "paper_cpu_timings.json"
pytestmark = pytest.mark.skipif(
    not FIXTURE.exists(), reason=f"{FIXTURE.name} not recorded yet: see this module's docstring"
)


def recorded() -> dict:
    return json.loads(FIXTURE.read_text())


def moments(found: dict) -> tuple[datetime, datetime]:
    """(the run's start, the end of its last translation, or of the run when it translated nothing)."""
    ends = [found["finished_at"]] + [e["finished_at"] for e in found["evaluations"] if e["finished_at"]]
    return datetime.fromisoformat(found["started_at"]), max(map(datetime.fromisoformat, ends))


def test_the_recording_is_a_whole_paper_cpu_run() -> None:
    found = recorded()
    cfg = RunConfig.model_validate(found["config"])
    assert cfg.name == "capo-paper-cpu" and found["total_steps"] == 16 and cfg.train.generate_at_end
    steps = {step for step, key, _ in found["timings"] if key == "seconds/total"}
    assert steps == set(range(17))  # a row at step 0 and after each of the 16 steps, one attempt
    assert [e["status"] for e in found["evaluations"]] == ["succeeded"] * len(cfg.train.eval_splits)


def test_at_step_1_the_estimate_is_within_30_percent_of_the_time_that_was_left() -> None:
    found = recorded()
    cfg = RunConfig.model_validate(found["config"])
    plan = eta.plan_run(cfg, found["split_sizes"], found["total_steps"])
    rows = [MetricRow(step, key, value) for step, key, value in found["timings"] if step <= 1]
    clock = eta.read_clock(rows)
    predicted = eta.time_left(plan, clock).seconds
    started, ended = moments(found)
    actual = (ended - started).total_seconds() - clock.latest["total"]
    assert abs(predicted - actual) / actual <= 0.30, (predicted, actual)
    spread = clock.latest["total"] / 1 * (found["total_steps"] - 1)  # the old rule: elapsed / step × left
    assert abs(predicted - actual) < abs(spread - actual), (predicted, spread, actual)
