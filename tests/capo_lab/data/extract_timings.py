"""Write a finished run's phase timings as a test fixture for tests/capo_lab/test_eta_recorded.py.

    CAPO_LAB_HOME=/tmp/firstrun-home .venv/bin/python tests/capo_lab/data/extract_timings.py 1 \\
        tests/capo_lab/data/paper_cpu_timings.json

Reads through the lab's API: the run's config, planned steps, start and end, its dataset's split
sizes, every ``seconds/<phase>`` row, and its end-of-run translation jobs (start, end, sentences).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from capo.config import RunConfig
from capo_lab.eta import TIMING_PREFIX, split_sizes
from capo_lab.service import LabService


def when(moment) -> str | None:
    return moment.isoformat() if moment else None


def extract(run_id: int) -> dict:
    lab = LabService()
    run = lab.run(run_id)
    cfg = RunConfig.model_validate(run.config)
    dataset = next(d for d in lab.datasets() if d.name == cfg.data.dataset)
    return {
        "about": f"run {run.id} ({run.name}), {run.status}, device {run.device}; extract_timings.py",
        "config": run.config,
        "total_steps": run.total_steps,
        "started_at": when(run.started_at),
        "finished_at": when(run.finished_at),
        "split_sizes": split_sizes(dataset, cfg.data.directions),
        "timings": [[m.step, m.key, m.value] for m in lab.metrics(run.id) if m.key.startswith(TIMING_PREFIX)],
        "evaluations": [
            {
                "split": e.split,
                "started_at": when(e.started_at),
                "finished_at": when(e.finished_at),
                "sentences": e.total,
                "status": e.status,
            }
            for e in lab.evaluations(run.id)
        ],  # fmt: skip
    }


if __name__ == "__main__":
    Path(sys.argv[2]).write_text(json.dumps(extract(int(sys.argv[1])), indent=1) + "\n")
