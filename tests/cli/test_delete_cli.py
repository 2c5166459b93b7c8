"""`capo-lab runs delete` and `capo-lab studies delete`: every row of the run and its folder go, after a
confirmation; a queued or running run is refused with one line and nothing is deleted."""

from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from capo_lab.cli import app
from capo_lab.database import Database
from capo_lab.runs import run_dir
from capo_lab.settings import Settings
from storage import writes
from storage.deletions import RUN_CHILDREN
from storage.models import Base, Run, Study

runner = CliRunner()


def cli(*args: str, answer: str | None = None):
    return runner.invoke(app, list(args), input=answer)


def seed_run(db: Database, settings: Settings, status: str = "succeeded", study_id: int | None = None) -> int:
    """A run with a row in every child table and a checkpoint folder on disk, as training leaves them."""
    with db.write() as session:
        run_id = writes.add_run(session, "r", {"objective": {"name": "capo"}}, None, status, study_id)
    checkpoint = run_dir(settings, run_id) / "checkpoints" / "step-000010"
    checkpoint.mkdir(parents=True)
    (checkpoint / "adapter_model.safetensors").write_bytes(b"weights")
    score = {
        "step": 10, "split": "eval", "pair_id": 1, "direction": "en-de", "logp_chosen": -1.0,
        "logp_rejected": -2.0, "n_tokens_chosen": 3, "n_tokens_rejected": 4, "ref_logp_chosen": None,
        "ref_logp_rejected": None, "rrm": 0.5, "loss": 0.6, "reward_margin": 0.1, "grad_chosen": {},
        "grad_rejected": {}, "chosen_token_logps": [-0.5, -0.5], "rejected_token_logps": [-1.0],
    }  # fmt: skip
    generation = {"pair_id": 1, "direction": "en-de", "text": "Hallo", "n_tokens": 2, "truncated": False}
    with db.write() as session:
        writes.add_metrics(session, run_id, [(10, "loss", 0.6)])
        writes.add_pair_scores(session, run_id, [score])
        writes.replace_generations(session, run_id, 10, "eval", "adapter", [generation])
        evaluation = writes.add_evaluation(session, run_id, "last", "eval", True, 8)
        writes.update_evaluation(session, evaluation, status="succeeded")
        writes.add_token_pieces(session, run_id, {1: (["Hal", "lo"], ["Hi"])})
        writes.add_checkpoint(session, run_id, 10, str(checkpoint))
        benchmark = writes.add_benchmark(session, run_id, BENCHMARK_REQUEST)
        answer = {
            "language": "en", "item_id": "1", "arm": "adapter", "turn": 1, "prompt": "p", "output": "o",
            "n_tokens": 1, "truncated": False, "max_new_tokens": 8, "temperature": 0.0, "seed": 0,
            "template": "none",
        }  # fmt: skip
        writes.add_benchmark_generations(session, benchmark, run_id, [answer])
        score = {"language": "en", "item_id": "1", "arm": "adapter", "metric": "rouge_l", "value": 0.5}
        writes.replace_benchmark_scores(session, benchmark, run_id, [score])
    return run_id


BENCHMARK_REQUEST = {
    "step": "last", "suite": "xlsum", "languages": ["en"], "limit": 1, "seed": 0, "base": False,
    "max_new_tokens": 8, "temperature": 0.0, "template": "none", "judge_requests": 0,
}  # fmt: skip


def rows_of(db: Database, run_id: int) -> dict[str, int]:
    """The run's rows per table: the run itself and every table with a ``run_id`` column."""
    with db.read() as session:
        found = {"runs": session.scalar(select(func.count()).where(Run.id == run_id))}
        for table in Base.metadata.sorted_tables:
            if "run_id" in table.columns:
                found[table.name] = session.scalar(select(func.count()).where(table.c.run_id == run_id))
    return found


def test_every_table_with_a_run_id_is_deleted_explicitly() -> None:
    """Not left to ON DELETE CASCADE, which SQLite honours only where the connection turns it on."""
    tables = {t.name for t in Base.metadata.sorted_tables if "run_id" in t.columns}
    assert {model.__tablename__ for model in RUN_CHILDREN} == tables


def test_runs_delete_asks_then_removes_every_row_and_the_checkpoint_folder(lab_home: Path) -> None:
    settings = Settings()
    db = Database(settings.database_url)
    run_id, kept = seed_run(db, settings), seed_run(db, settings)
    assert set(rows_of(db, run_id).values()) == {1}  # one row in every table
    declined = cli("runs", "delete", str(run_id), answer="n\n")
    assert declined.exit_code == 1 and set(rows_of(db, run_id).values()) == {1}
    assert run_dir(settings, run_id).exists()
    done = cli("runs", "delete", str(run_id), answer="y\n")
    assert done.exit_code == 0, done.stderr
    assert f"deleted 1 run(s) ({run_id}); 1 folder(s) removed" in done.stdout
    assert set(rows_of(db, run_id).values()) == {0} and not run_dir(settings, run_id).exists()
    assert set(rows_of(db, kept).values()) == {1} and run_dir(settings, kept).exists()
    again = cli("runs", "delete", str(run_id), "--yes")
    assert (again.exit_code, again.stderr) == (1, f"error: no run {run_id}; see `capo-lab runs list`\n")


def test_a_queued_or_running_run_is_refused_with_one_line(lab_home: Path) -> None:
    settings = Settings()
    db = Database(settings.database_url)
    for status in ("running", "queued"):
        run_id = seed_run(db, settings, status)
        refused = cli("runs", "delete", str(run_id), "--yes")
        assert refused.exit_code == 1
        assert refused.stderr.strip() == (
            f"error: run {run_id} is {status}; cancel it first, then delete it once it has stopped"
        )
        assert set(rows_of(db, run_id).values()) == {1} and run_dir(settings, run_id).exists()


def test_a_run_with_a_translation_evaluation_under_way_is_refused(lab_home: Path) -> None:
    settings = Settings()
    db = Database(settings.database_url)
    run_id = seed_run(db, settings)
    with db.write() as session:
        job = writes.add_evaluation(session, run_id, "last", "eval", True, 8)
    refused = cli("runs", "delete", str(run_id), "--yes")
    assert refused.exit_code == 1 and f"translation evaluation queued (job {job})" in refused.stderr
    assert rows_of(db, run_id)["runs"] == 1


def test_studies_delete_removes_the_study_its_runs_and_their_folders(lab_home: Path) -> None:
    settings = Settings()
    db = Database(settings.database_url)
    with db.write() as session:
        study = writes.add_study(session, "cmp", {"train.seed": [0, 1]})
    runs = [seed_run(db, settings, study_id=study) for _ in range(2)]
    running = seed_run(db, settings, "running", study_id=study)
    refused = cli("studies", "delete", "cmp", "--yes")
    assert refused.exit_code == 1 and refused.stderr.strip() == (
        f"error: study 'cmp': run {running} is running; cancel it first, then delete it once it has stopped"
    )
    assert all(set(rows_of(db, r).values()) == {1} for r in [*runs, running])
    with db.write() as session:
        writes.update_run(session, running, status="cancelled")
    done = cli("studies", "delete", "cmp", answer="y\n")
    assert done.exit_code == 0, done.stderr
    assert "deleted study 'cmp' and 3 run(s)" in done.stdout
    for run_id in [*runs, running]:
        assert set(rows_of(db, run_id).values()) == {0} and not run_dir(settings, run_id).exists()
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Study)) == 0
    assert "cmp" not in cli("studies").stdout
