"""`capo-lab study`: the grid through the worker, names that say what differs, bad factors refused."""

import json
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capo_lab.cli import app
from capo_lab.database import Database
from capo_lab.runs import list_runs
from capo_lab.settings import Settings
from capo_lab.studies import get_study
from tests.conftest import DIVEMT
from worker.consumer import serve

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args))


def test_bad_factors_are_refused_naming_the_key_and_nothing_is_queued(
    lab_home: Path, shared_data: Path
) -> None:
    assert cli("data", "import", str(DIVEMT), "--name", "paper8", "--per-direction", "1").exit_code == 0
    bad_key = cli("study", str(SMOKE), "--name", "s", "--vary", "train.batch=1,2")
    assert (
        bad_key.exit_code == 1
        and bad_key.stderr.strip() == "error: train.batch: Extra inputs are not permitted"
    )
    bad_value = cli("study", str(SMOKE), "--name", "s", "--objectives", "capo,ipo")
    assert bad_value.exit_code == 1 and "objective.name: unknown ipo" in bad_value.stderr
    assert list_runs(Database(Settings().database_url)) == []


def test_objectives_by_seeds_run_through_the_worker(lab_home: Path, shared_data: Path) -> None:
    assert cli("data", "import", str(DIVEMT), "--name", "paper8", "--per-direction", "1").exit_code == 0
    quick = ["--set", "train.epochs=1"]
    result = cli("study", str(SMOKE), "--name", "cmp", "--objectives", "capo,dpo", "--seeds", "0,1", *quick)
    assert result.exit_code == 0, result.stderr
    study_id = result.stdout.split()[-1]
    assert serve(max_jobs=4, poll_seconds=0.1) == 4
    db = Database(Settings().database_url)
    study = get_study(db, study_id)
    runs = [r for r in list_runs(db) if r.id in study.run_ids]
    assert sorted(r.name for r in runs) == [
        "cmp[capo, seed=0]", "cmp[capo, seed=1]", "cmp[dpo, seed=0]", "cmp[dpo, seed=1]",
    ]  # fmt: skip
    assert {r.status for r in runs} == {"succeeded"}
    assert study.factors == {"objective.name": ["capo", "dpo"], "train.seed": [0, 1]}
    assert "cmp" in cli("studies").stdout
    check_report_against_pairs(study_id, runs)


def check_report_against_pairs(study_id: str, runs) -> None:
    """The JSON report's per-direction accuracies equal what `capo-lab pairs` gives at the same step."""
    report = json.loads(cli("report", study_id, "--step", "last", "--format", "json").stdout)
    assert report["missing"] == [] and report["arms"] == ["capo", "dpo"]
    for arm in ("capo", "dpo"):
        outcomes = defaultdict(list)
        for run in (r for r in runs if r.name.startswith(f"cmp[{arm},")):
            rows = cli("pairs", "--run", str(run.id), "--step", "last", "--split", "eval").stdout.splitlines()
            for row in map(json.loads, rows):
                won = row["logp_chosen"] > row["logp_rejected"]
                outcomes[row["direction"]].append(won)
                outcomes["all"].append(won)
        cells = {c["direction"]: c["interval"] for c in report["accuracy"] if c["arm"] == arm}
        assert set(cells) == set(outcomes)
        for direction, won in outcomes.items():
            assert cells[direction]["estimate"] == pytest.approx(sum(won) / len(won))
            assert cells[direction]["low"] <= cells[direction]["estimate"] <= cells[direction]["high"]
    (comparison,) = [c for c in report["comparisons"] if c["direction"] == "all"]
    assert (comparison["arm_a"], comparison["arm_b"]) == ("capo", "dpo") and 0 < comparison["p_value"] <= 1
