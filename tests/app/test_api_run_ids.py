"""The named API endpoints take run ids as whole numbers checked when called (issue 20 item 9): through
gradio_client against a launched lab, a run created after the server started is reachable by
``run_metrics`` and ``pair_detail``; an unknown run, or an id that is no whole number, is one error
line, and the server logs no traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from capo_lab.service import LabService
from capo_lab.settings import Settings
from storage import writes
from tests.app.test_browser_e2e import upload_file
from tests.conftest import wait_for_port
from worker.launch import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def lab(tmp_path: Path):
    """``capo-lab serve --no-worker`` on an empty home: (its address, the home, its log)."""
    port, home, log = free_port(), tmp_path / "home", tmp_path / "serve.log"
    env = {**os.environ, "CAPO_LAB_HOME": str(home), "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("CAPO_LAB_DB_URL", None)
    command = [sys.executable, "-m", "capo_lab", "serve", "--no-worker", "--port", str(port)]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, seconds=120)
    except TimeoutError:
        process.kill()
        pytest.fail("the lab did not start: " + log.read_text()[-2000:])
    yield f"http://127.0.0.1:{port}/", home, log
    process.terminate()
    process.wait(timeout=120)


def scored_run(home: Path, tmp_path: Path) -> tuple[int, int]:
    """A dataset and a finished run with metrics and one pair's eval score at step 10: (run, pair)."""
    service = LabService(Settings(home=home))
    result = service.import_dataset("api", [], [str(upload_file(tmp_path))], per_direction=2)
    pair_id, direction = first_pair(service, result.name)
    score = {
        "step": 10, "split": "eval", "pair_id": pair_id, "direction": direction, "logp_chosen": -1.0,
        "logp_rejected": -2.0, "n_tokens_chosen": 3, "n_tokens_rejected": 4, "ref_logp_chosen": None,
        "ref_logp_rejected": None, "rrm": 0.5, "loss": 0.6, "reward_margin": 0.1, "grad_chosen": {},
        "grad_rejected": {}, "chosen_token_logps": [-0.5, -0.5], "rejected_token_logps": [-1.0],
    }  # fmt: skip
    config = {"objective": {"name": "capo", "alpha": 1.0, "beta": 0.1}}
    with service.db.write() as session:
        run_id = writes.add_run(session, "api", config, result.dataset_id, "succeeded")
        writes.add_metrics(session, run_id, [(5, "loss", 0.7), (10, "loss", 0.6)])
        writes.add_pair_scores(session, run_id, [score])
    return run_id, pair_id


def first_pair(service: LabService, dataset: str) -> tuple[int, str]:
    """The id and direction of the dataset's first eval pair."""
    row = service.preview(dataset, "eval", "")[0]
    return int(row.pair_id), row.direction


def api_error(client, *args, api_name: str) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as caught:
        client.predict(*args, api_name=api_name)
    return str(caught.value)


def test_runs_created_after_start_up_are_reached_by_id_and_bad_ids_are_one_line(lab, tmp_path) -> None:
    from gradio_client import Client

    url, home, log = lab
    client = Client(url, verbose=False)
    run_id, pair_id = scored_run(home, tmp_path)  # after the server (and its components) started

    rows = client.predict(run_id, -1, api_name="/run_metrics")
    assert [(r["step"], r["key"]) for r in rows] == [(5, "loss"), (10, "loss")]
    assert client.predict(str(run_id), 5, api_name="/run_metrics")[0]["step"] == 10  # digits are an id too
    detail = client.predict(run_id, pair_id, "last", api_name="/pair_detail")
    assert (detail["run_id"], detail["pair_id"], detail["step"]) == (run_id, pair_id, 10)

    assert "no run 99999" in api_error(client, 99999, -1, api_name="/run_metrics")
    assert "no run 99999" in api_error(client, 99999, pair_id, "last", api_name="/pair_detail")
    assert "whole number" in api_error(client, "abc", pair_id, "last", api_name="/pair_detail")
    assert "whole number" in api_error(client, 2.5, -1, api_name="/run_metrics")
    assert "whole number" in api_error(client, run_id, "x", "last", api_name="/pair_detail")
    assert "Traceback" not in log.read_text()
