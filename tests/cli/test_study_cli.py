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
from capo_lab.studies import get_study, list_studies
from tests.conftest import DIVEMT
from worker.consumer import serve

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args))


def test_bad_factors_are_refused_naming_the_key_and_nothing_is_queued(
    lab_home: Path, shared_data: Path
) -> None:
    assert cli("data", "import", str(DIVEMT), "--name", "paper8-cpu", "--per-direction", "1").exit_code == 0
    bad_key = cli("study", str(SMOKE), "--name", "s", "--vary", "train.batch=1,2")
    assert bad_key.exit_code == 1 and len(bad_key.stderr.strip().splitlines()) == 1
    assert bad_key.stderr.startswith("error: train.batch: unknown key; train keys: batch_size, bf16,")
    bad_value = cli("study", str(SMOKE), "--name", "s", "--objectives", "capo,ipo")
    assert bad_value.exit_code == 1 and "objective.name: unknown ipo" in bad_value.stderr
    assert list_runs(Database(Settings().database_url)) == []


REFUSED = {
    ("--vary", "objective.alpa=0.5,1,2"): "objective.alpa: unknown key; objective keys: alpha, beta, gamma, "
    "name, nll_weight",
    ("--objectives", "dpo", "--vary", "objective.alpha=1,2"): "objective.alpha: applies to no run of the "
    "grid; alpha is a parameter of capo, not of dpo",
    ("--vary", "seed=0,1"): "seed: unknown key; top-level keys: data, lora, model, name, objective, optim, "
    "train (did you mean train.seed?)",
    ("--set", "objective.gamma=2"): "objective.gamma: applies to no run of the grid; gamma is a parameter of "
    "simpo, not of capo",
}


@pytest.mark.parametrize("args", list(REFUSED), ids=" ".join)
def test_a_factor_no_run_has_is_refused_in_one_line_and_nothing_is_stored(
    lab_home: Path, shared_data: Path, args: tuple[str, ...]
) -> None:
    """Before, ``_applies`` dropped an unknown ``objective.*`` factor and one run was queued without it."""
    assert cli("data", "import", str(DIVEMT), "--name", "paper8-cpu", "--per-direction", "1").exit_code == 0
    refused = cli("study", str(SMOKE), "--name", "x", *args)
    assert (refused.exit_code, refused.stderr) == (1, f"error: {REFUSED[args]}\n")
    db = Database(Settings().database_url)
    assert list_runs(db) == [] and list_studies(db) == []


def test_a_refused_study_leaves_nothing_behind_and_the_retry_works(lab_home: Path, shared_data: Path) -> None:
    """Before, a missing dataset refused the runs after the study was stored; the retry found it taken."""
    study = ["study", str(SMOKE), "--name", "nc", "--seeds", "0,1"]
    refused = cli(*study)
    assert refused.exit_code == 1
    assert refused.stderr == "error: no dataset named or numbered 'paper8-cpu'; see `capo-lab data list`\n"
    db = Database(Settings().database_url)
    assert list_studies(db) == [] and list_runs(db) == []
    assert cli("data", "import", str(DIVEMT), "--name", "paper8-cpu", "--per-direction", "1").exit_code == 0
    retried = cli(*study)
    assert retried.exit_code == 0, retried.stderr
    (made,) = list_studies(db)
    assert made.name == "nc" and [r.name for r in list_runs(db)] == ["nc[seed=0]", "nc[seed=1]"]
    assert cli(*study).stderr == "error: a study named 'nc' already exists; choose another name\n"
    assert len(list_runs(db)) == 2
    from worker.huey_app import huey

    huey.flush()  # the queue is one per test process: leave no task for another test's worker


def test_objectives_by_seeds_run_through_the_worker(lab_home: Path, shared_data: Path) -> None:
    assert cli("data", "import", str(DIVEMT), "--name", "paper8-cpu", "--per-direction", "1").exit_code == 0
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
    assert report["missing"] == [] and report["arms"] == ["capo", "dpo", "base"]
    assert {r["chosen_on"] for r in report["runs"]} == {None} and 0 not in {r["step"] for r in report["runs"]}
    for arm in ("capo", "dpo"):
        outcomes = defaultdict(list)
        for run in (r for r in runs if r.name.startswith(f"cmp[{arm},")):
            rows = cli("pairs", "--run", str(run.id), "--step", "last", "--split", "eval").stdout.splitlines()
            for row in map(json.loads, rows):
                won = not row["tie"] and row["logp_chosen"] > row["logp_rejected"]
                outcomes[row["direction"]].append(won)
                outcomes["all"].append(won)
        cells = {c["direction"]: c["interval"] for c in report["accuracy"] if c["arm"] == arm}
        assert set(cells) == set(outcomes)
        for direction, won in outcomes.items():
            assert cells[direction]["estimate"] == pytest.approx(sum(won) / len(won))
            assert cells[direction]["low"] <= cells[direction]["estimate"] <= cells[direction]["high"]
    primary = [c for c in report["comparisons"] if c["direction"] == "all"]
    assert [(c["arm_a"], c["arm_b"]) for c in primary] == [("capo", "dpo"), ("capo", "base"), ("dpo", "base")]
    assert all(0 < c["p_value"] <= c["p_holm"] <= 1 and c["seeds"] == [0, 1] for c in primary)
    refused = cli("report", study_id, "--step", "best")
    assert refused.exit_code == 1 and refused.stderr.startswith("error: --step best needs a validation split")
    assert len(refused.stderr.splitlines()) == 1
