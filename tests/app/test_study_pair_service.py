"""LabService's study methods behind the Train and Inspect tabs: ``launch_study`` queues the grid's runs
named after what differs, and ``study_pair`` reads one pair under every run of a real tiny study from
storage: Δ as ``capo-lab pairs`` gives it, per-token log-probs that add up to lw, the others named."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capo_lab import studies
from capo_lab.cli import app
from capo_lab.datasets import dataset_pairs
from capo_lab.errors import LabError
from capo_lab.service import LabService
from capo_lab.settings import Settings
from tests.conftest import DIVEMT
from worker.consumer import serve

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args))


def import_warmup() -> None:
    result = cli("data", "import", str(DIVEMT), "--name", "paper8-cpu", "--per-direction", "1")
    assert result.exit_code == 0, result.stderr


def test_launch_study_queues_one_named_run_per_objective_and_seed(lab_home: Path, shared_data: Path) -> None:
    import_warmup()
    queued: list[int] = []
    service = LabService(Settings(), enqueue=queued.append)
    raw = service.preset("smoke").model_dump()
    study_id, run_ids = service.launch_study(raw, "s", ["capo", "dpo"], "0,1", "")
    assert queued == run_ids and len(run_ids) == 4
    listed = {r.id: r for r in service.runs()}
    assert [listed[r].name for r in run_ids] == [
        "s[capo, seed=0]", "s[capo, seed=1]", "s[dpo, seed=0]", "s[dpo, seed=1]",
    ]  # fmt: skip
    assert {listed[r].status for r in run_ids} == {"queued"}
    assert {listed[r].study_id for r in run_ids} == {study_id}
    (study,) = service.studies()
    assert study.run_ids == tuple(run_ids)
    assert study.factors == {"objective.name": ["capo", "dpo"], "train.seed": [0, 1]}
    # nothing has run: every run is listed as missing, with why
    pair = dataset_pairs(service.db, "paper8-cpu", split="eval")[0]
    found = service.study_pair(study_id, pair.pair_id)
    assert found.runs == () and [m.reason for m in found.missing] == ["not finished (queued)"] * 4


@pytest.mark.slow
def test_one_pair_under_every_run_of_a_real_study(lab_home: Path, shared_data: Path) -> None:
    import_warmup()
    quick = ["--set", "train.epochs=1"]
    result = cli("study", str(SMOKE), "--name", "cmp", "--objectives", "capo,dpo", "--seeds", "0", *quick)
    assert result.exit_code == 0, result.stderr
    study_id = int(result.stdout.split()[-1])
    assert serve(max_jobs=2, poll_seconds=0.1) == 2
    service = LabService(Settings())
    (study,) = service.studies()
    pairs = {r: last_eval_rows(r) for r in study.run_ids}
    pair = dataset_pairs(service.db, "paper8-cpu", split="eval")[0]
    found = service.study_pair(study_id, pair.pair_id)
    assert found.missing == () and [r.run_id for r in found.runs] == list(study.run_ids)
    assert [(r.name, r.objective, r.seed) for r in found.runs] == [
        ("cmp[capo, seed=0]", "capo", 0), ("cmp[dpo, seed=0]", "dpo", 0),
    ]  # fmt: skip
    assert (found.source, found.post_edit, found.mt) == (pair.source_text, pair.chosen, pair.rejected)
    for run in found.runs:
        check_against_pairs(run, pairs[run.run_id][pair.pair_id])
    with pytest.raises(AttributeError):
        found.runs[0].delta = 0.0  # frozen
    train_pair = dataset_pairs(service.db, "paper8-cpu", split="train")[0]
    elsewhere = service.study_pair(study_id, train_pair.pair_id)
    assert elsewhere.runs == () and len(elsewhere.missing) == 2
    assert all(m.reason.startswith(f"no eval score for pair {train_pair.pair_id}") for m in elsewhere.missing)
    not_stored = service.study_pair(study_id, pair.pair_id, "999")
    assert not_stored.runs == ()
    assert all("no eval scores at step '999'" in m.reason for m in not_stored.missing)
    with pytest.raises(LabError, match="no pair 999999"):
        service.study_pair(study_id, 999999)


def last_eval_rows(run_id: int) -> dict[int, dict]:
    """``capo-lab pairs`` at the run's last eval step, by pair id."""
    out = cli("pairs", "--run", str(run_id), "--step", "last", "--split", "eval").stdout
    return {row["pair_id"]: row for row in map(json.loads, out.splitlines())}


def check_against_pairs(run: studies.StudyPairRun, row: dict) -> None:
    assert run.step == row["step"] and run.delta == pytest.approx(row["logp_chosen"] - row["logp_rejected"])
    assert (run.lw, run.ll, run.loss) == (row["logp_chosen"], row["logp_rejected"], row["loss"])
    assert run.base_delta == pytest.approx(row["ref_logp_chosen"] - row["ref_logp_rejected"])
    assert len(run.chosen_tokens) == len(run.chosen_logps) == row["n_tokens_chosen"]
    assert len(run.rejected_tokens) == len(run.rejected_logps) == row["n_tokens_rejected"]
    assert sum(run.chosen_logps) == pytest.approx(run.lw, abs=1e-3)
    assert sum(run.rejected_logps) == pytest.approx(run.ll, abs=1e-3)
