"""Comparing two trained runs through the service: per-direction accuracy base → last with the pairs the
runs decide differently, the stored configs behind legend names, and the Runs and Inspect views fed by
them (a CAPO and a DPO smoke run, trained through run_job as the worker does)."""

import math
import threading
from pathlib import Path

import pytest

from app.charts_compare import LABEL_ROOM, NO_SCORES
from app.inspect_pairs import DISAGREE, compared_column
from app.runs_compare import run_names
from app.tab_inspect import open_pair, pair_table_view
from app.tab_runs import figures, refreshed
from capo_lab import comparisons
from capo_lab.database import Database
from capo_lab.service import LabService
from capo_lab.settings import Settings
from tests.conftest import DIVEMT
from worker.execute import train_run
from worker.training_job import run_job


@pytest.fixture
def service(lab_home: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> LabService:
    monkeypatch.setenv("CAPO_LAB_DATA_DIRS", str(shared_data))
    settings = Settings()

    def run_now(run_id: int) -> None:
        run_job(
            Database(settings.database_url), settings, run_id, "test", threading.Event(), execute=train_run
        )

    return LabService(settings, enqueue=run_now)


def launch(service: LabService, objective: dict) -> int:
    raw = service.preset("smoke").model_dump()
    raw["data"]["dataset"] = "d"
    raw["objective"] = objective
    raw["train"].update(epochs=2, eval_every=1)
    (run_id,) = service.launch(raw)
    return run_id


@pytest.fixture
def two_runs(service: LabService) -> tuple[int, int]:
    service.import_dataset("d", [str(DIVEMT)], [], per_direction=1)
    return launch(service, {"name": "capo", "beta": 0.1, "alpha": 2.0}), launch(service, {"name": "dpo"})


def correct(service: LabService, run_id: int, step: int) -> dict[int, tuple[str, bool]]:
    return {r.pair_id: (r.direction, r.delta > 0) for r in service.pair_table(run_id, step)}


@pytest.mark.slow
def test_direction_accuracy_counts_each_runs_pairs_and_their_disagreements(service, two_runs) -> None:
    capo, dpo = two_runs
    rows = service.direction_accuracy([capo, dpo])
    assert [r.direction for r in rows][-1] == "all" and len(rows) == 7  # six DivEMT directions, then all
    first = {rid: correct(service, rid, 0) for rid in two_runs}
    last = {rid: correct(service, rid, service.score_steps(rid)[-1]) for rid in two_runs}
    for row in rows:
        keep = [p for p, (d, _) in last[capo].items() if row.direction in ("all", d)]
        for rid in two_runs:
            cell = row.runs[rid]
            assert cell.n == len(keep) and (cell.base_step, cell.last_step) == (0, 2)
            assert cell.base == pytest.approx(sum(first[rid][p][1] for p in keep) / len(keep))
            assert cell.last == pytest.approx(sum(last[rid][p][1] for p in keep) / len(keep))
        assert row.shared == len(keep)
        assert row.disagree == sum(last[capo][p][1] != last[dpo][p][1] for p in keep)
    assert rows[-1].runs[capo].base == rows[-1].runs[dpo].base  # step 0 is the same base model
    (single,) = {r.disagree for r in service.direction_accuracy([capo])}
    assert single is None


@pytest.mark.slow
def test_runs_tab_and_inspect_tab_views_of_two_runs(service, two_runs) -> None:
    capo, dpo = two_runs
    configs = service.run_configs([capo, dpo])
    assert configs[capo]["objective"]["alpha"] == 2.0 and configs[dpo]["objective"]["name"] == "dpo"
    assert run_names(configs) == {capo: f"#{capo} capo α=2", dpo: f"#{dpo} dpo"}
    cache, *outputs = refreshed(service, [capo, dpo], {}, "", "", False)
    summary, table, bars, loss, accuracy, margins, regimes, deltas, sweep, lr, throughput = outputs
    assert "decide" in summary and list(table["direction"])[-1] == "all"
    assert [t.name for t in bars.data][0] == "base (step 0)" and bars.layout.yaxis.range == (0, LABEL_ROOM)
    assert {t.name for t in loss.data} == {f"#{capo} capo α=2 · training batches", f"#{dpo} dpo · eval"} | {
        f"#{capo} capo α=2 · eval",
        f"#{dpo} dpo · training batches",
    }
    assert "Δ = lw − ll" in margins.layout.title.text and len(regimes.data) == 6
    assert "not drawn" in sweep.layout.title.text
    again = refreshed(service, [capo, dpo], cache, "", "", False)
    assert all(not hasattr(o, "layout") for o in again[1:])  # nothing new since: every figure is skipped

    shown, note = pair_table_view(service, capo, 2, "", [DISAGREE], dpo)
    frame = shown.value
    assert compared_column(dpo) in frame["headers"] and ("matches" in note or "shown" in note)
    pair_id = service.pair_table(capo, 2)[0].pair_id
    opened = open_pair(service, capo, 2, pair_id, dpo)
    assert "post\\-edit pushed" in opened[5] and "ll &gt; −α/β" in opened[5] and "MT pushed" in opened[5]
    assert "CAPO α = 2" in opened[6].layout.title.text
    assert f"run #{dpo}, step 2" in opened[7] and "cannot occur under dpo" in opened[7]
    names = [t.name for t in opened[4].data if t.showlegend is not False]
    assert names == [f"#{capo} capo α=2", f"#{dpo} dpo"]


def test_without_scores_the_comparison_says_so(service) -> None:
    assert service.direction_accuracy([]) == []
    summary, table, bars = figures(_NoRuns(), [], {})[:3]
    assert "No eval pair scores yet" in summary and table.empty
    assert bars.layout.title.text.replace("<br>", " ") == NO_SCORES
    assert comparisons.accuracy({}, "all")[0] == 0 and math.isnan(comparisons.accuracy({}, "all")[1])


class _NoRuns:
    def run_configs(self, run_ids):
        return {}

    def direction_accuracy(self, run_ids):
        return []

    def score_steps(self, run_id, split="eval"):
        return []
