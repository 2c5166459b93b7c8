"""The lab on real PostgreSQL + Redis, by configuration alone: migrations, import, submit, two workers."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import inspect

from capo_lab.database import Database
from capo_lab.runs import list_runs
from storage import queries
from storage.migrate import current_revision, head_revision
from tests.scale.servers import postgres_server, redis_server

DIVEMT = Path(__file__).resolve().parents[3] / "shared" / "data" / "divemt" / "warmup.tsv"
SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"


@pytest.fixture(scope="module")
def servers():
    with postgres_server() as db_url, redis_server() as queue_url:
        yield db_url, queue_url


def cli(env: dict, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "capo_lab", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def wait_for_text(path: Path, text: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{path} never said {text!r}")


@pytest.mark.slow
def test_a_tiny_job_runs_end_to_end_and_two_workers_share_the_queue(servers, tmp_path: Path) -> None:
    db_url, queue_url = servers
    env = {**os.environ, "CAPO_LAB_HOME": str(tmp_path / "home"), "CAPO_LAB_DB_URL": db_url}
    env["CAPO_LAB_QUEUE_URL"] = queue_url
    assert "revision" in cli(env, "db", "upgrade")
    db = Database(db_url)
    assert current_revision(db.engine) == head_revision(db.engine)
    assert {"datasets", "pairs", "runs", "metrics"} <= set(inspect(db.engine).get_table_names())

    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "capo_lab", "worker", "--device", "cpu"],
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        for log in logs
    ]
    try:
        for log in logs:  # both workers listen before the jobs arrive
            wait_for_text(log, "serving")
        cli(env, "data", "import", str(DIVEMT), "--name", "warmup", "--per-direction", "6")
        overrides = [
            "--set",
            "data.dataset=warmup",
            "--set",
            "train.max_steps=3",
            "--set",
            "train.batch_size=4",
        ]
        # one sweep: four jobs reach the queue at once, so both idle workers take some
        submitted = cli(env, "submit", str(SMOKE), *overrides, "--sweep", "train.seed=0,1,2,3")
        run_ids = [int(word) for word in submitted.splitlines()[-1].split(":")[1].split()]
        assert len(run_ids) == 4
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            statuses = {r.id: r.status for r in list_runs(db) if r.id in run_ids}
            if all(s in ("succeeded", "failed") for s in statuses.values()):
                break
            time.sleep(1)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGINT)
        for worker in workers:
            worker.wait(timeout=120)
    runs = [r for r in list_runs(db) if r.id in run_ids]
    assert [r.status for r in runs] == ["succeeded"] * 4, [r.error for r in runs]
    assert len({r.worker for r in runs}) == 2  # both workers took jobs
    with db.read() as session:
        for run_id in run_ids:
            first_step = [m for m in queries.metrics(session, run_id) if m.step == 1 and m.key == "loss"]
            assert len(first_step) == 1  # no run trained twice
    started = "".join(log.read_text() for log in logs).count("job capo_lab.train_run: ")
    assert started == 4
