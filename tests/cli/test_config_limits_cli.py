"""Config values out of range are refused before anything is stored: one `error:` line naming the key
and its allowed range, exit status 1, no traceback, no run and no study (issue 20).

Before, a huge whole number reached SQLite (an 83-line OverflowError), and inf, nan and absurd
values were queued (an lr of inf then failed in training on a NOT NULL metric)."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from capo_lab.cli import app
from capo_lab.database import Database
from capo_lab.runs import list_runs
from capo_lab.settings import Settings
from capo_lab.studies import list_studies
from tests.conftest import DIVEMT

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
runner = CliRunner()

STEPS = "(allowed: a whole number from 1 to 10,000,000, or null)"
LR = "(allowed: a finite number, greater than 0 and at most 1)"
ALPHA = "(allowed: a finite number from 0 to 100)"

# --set value → the one line on stderr
REFUSED_OVERRIDES = {
    "train.max_steps=1e23": f"train.max_steps: Input should be a valid integer, unable to parse string as an "
    f"integer {STEPS}",  # YAML reads 1e23 (no dot, no exponent sign) as text
    "train.max_steps=1.0e+23": "train.max_steps: Unable to parse input string as an integer, exceeded "
    f"maximum size {STEPS}",
    "train.max_steps=100000000000000000000000": f"train.max_steps: Input should be less than or equal to "
    f"10000000 {STEPS}",
    "train.epochs=99999999999999999999999999999": "train.epochs: Input should be less than or equal to 10000 "
    "(allowed: a whole number from 1 to 10,000)",
    "train.batch_size=9223372036854775808": "train.batch_size: Input should be less than or equal to 4096 "
    "(allowed: a whole number from 1 to 4,096)",
    "optim.lr=.inf": f"optim.lr: Input should be a finite number {LR}",
    "optim.lr=.nan": f"optim.lr: Input should be a finite number {LR}",
    "optim.lr=1.0e+300": f"optim.lr: Input should be less than or equal to 1 {LR}",
    "objective.alpha=-.inf": f"objective.alpha: Input should be a finite number {ALPHA}",
    "train.seed=-1": "train.seed: Input should be greater than or equal to 0 "
    "(allowed: a whole number from 0 to 2,147,483,647)",
    "name=[unclosed": "name: not a valid YAML value (expected ',' or ']', but got '<stream end>'): "
    "'[unclosed'",
}


def cli(*args: str):
    return runner.invoke(app, list(args))


def nothing_stored() -> bool:
    db = Database(Settings().database_url)
    return list_runs(db) == [] and list_studies(db) == []


def refused_in_one_line(result, expected: str) -> None:
    assert isinstance(result.exception, SystemExit), result.exception  # not an uncaught exception
    assert (result.exit_code, result.stderr) == (1, f"error: {expected}\n")
    assert "Traceback" not in result.output + result.stderr


@pytest.fixture
def paper8(lab_home: Path, shared_data: Path) -> None:
    imported = cli("data", "import", str(DIVEMT), "--name", "paper8-cpu", "--per-direction", "1")
    assert imported.exit_code == 0, imported.stderr


@pytest.mark.parametrize("override", list(REFUSED_OVERRIDES))
def test_submit_refuses_an_out_of_range_override_in_one_line_and_stores_nothing(
    paper8: None, override: str
) -> None:
    refused_in_one_line(cli("submit", str(SMOKE), "--set", override), REFUSED_OVERRIDES[override])
    assert nothing_stored()


def test_a_config_file_with_inf_or_a_huge_length_is_refused(paper8: None, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(SMOKE.read_text().replace("max_length: 384", "max_length: 1.0e+12"))
    refused_in_one_line(
        cli("submit", str(config)),
        "data.max_length: Input should be less than or equal to 131072 "
        "(allowed: a whole number from 1 to 131,072)",
    )
    config.write_text(SMOKE.read_text().replace("lr: 3.0e-3", "lr: .inf"))
    refused_in_one_line(cli("submit", str(config)), f"optim.lr: Input should be a finite number {LR}")
    assert nothing_stored()


@pytest.mark.parametrize(
    "args",
    [
        ("study", str(SMOKE), "--name", "s", "--vary", "objective.alpha=1,nan,inf"),
        ("submit", str(SMOKE), "--sweep", "objective.alpha=1,nan,inf"),
    ],
    ids=["study --vary", "submit --sweep"],
)
def test_a_grid_with_a_non_finite_value_is_refused_before_any_run_is_queued(
    paper8: None, args: tuple[str, ...]
) -> None:
    """The grid's first value (1) is valid: nothing of it may be stored when a later one is refused."""
    refused_in_one_line(cli(*args), f"objective.alpha: Input should be a finite number {ALPHA}")
    assert nothing_stored()


def test_the_edges_of_each_range_are_accepted(paper8: None) -> None:
    edges = ["optim.lr=1", "objective.alpha=0", "train.seed=2147483647", "train.max_steps=10000000"]
    queued = cli("submit", str(SMOKE), *(a for edge in edges for a in ("--set", edge)))
    assert queued.exit_code == 0, queued.stderr
    (run,) = list_runs(Database(Settings().database_url))
    assert (run.config["optim"]["lr"], run.config["train"]["max_steps"]) == (1, 10_000_000)
    from worker.huey_app import huey

    huey.flush()  # the queue is one per test process: leave no task for another test's worker


def test_a_study_whose_run_names_are_too_long_is_refused_before_anything_is_stored(paper8: None) -> None:
    try:
        result = cli("study", str(SMOKE), "--name", "s" * 195, "--vary", "objective.alpha=1,2")
        refused_in_one_line(
            result,
            "name: String should have at most 200 characters "
            "(allowed: 1 to 200 characters, no control characters)",
        )
        assert nothing_stored()
    finally:
        from worker.huey_app import huey

        huey.flush()
