"""Migration 0013 (benchmark jobs, their answers and scores, the judge's reply cache) up and down on
SQLite and PostgreSQL, and the judge cache's insert that keeps the first reply."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from storage import queries, writes
from storage.engine import make_engine
from storage.migrate import downgrade, upgrade
from storage.models import Base

NEW = {"benchmarks", "benchmark_generations", "benchmark_scores", "judge_replies"}


def _round_trip(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine, "0012")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO runs (name, config, status, created_at, step, notes, cancel_requested) "
                "VALUES ('r', '{}', 'succeeded', CURRENT_TIMESTAMP, 0, '[]', false)"
            )
        )
    assert not NEW & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert NEW <= set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    with Session(engine) as session, session.begin():
        job = writes.add_benchmark(session, 1, REQUEST)
        writes.add_benchmark_generations(session, job, 1, [GENERATION, {**GENERATION, "output": "again"}])
        writes.add_judge_reply(session, "k" * 64, "m", [{"role": "user", "content": "q"}], "first")
        writes.add_judge_reply(session, "k" * 64, "m", [{"role": "user", "content": "q"}], "second")
    with Session(engine) as session:
        assert [g.output for g in queries.benchmark_generations(session, job)] == ["hola"]
        assert queries.judge_reply(session, "k" * 64) == "first"
        assert queries.get_benchmark(session, job).languages == ("es", "ja")
    downgrade(engine, "0012")
    assert not NEW & set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM runs")).scalar() == 1
    engine.dispose()


REQUEST = {
    "step": "last", "suite": "m-ifeval", "languages": ["es", "ja"], "limit": 2, "seed": 0, "base": True,
    "max_new_tokens": 8, "temperature": 0.0, "template": "zephyr", "judge_requests": 0,
}  # fmt: skip
GENERATION = {
    "language": "es", "item_id": "1", "arm": "adapter", "turn": 1, "prompt": "p", "output": "hola",
    "n_tokens": 1, "truncated": False, "max_new_tokens": 8, "temperature": 0.0, "seed": 0,
    "template": "zephyr",
}  # fmt: skip


def test_migration_0013_up_and_down_on_sqlite(tmp_path: Path) -> None:
    _round_trip(f"sqlite:///{tmp_path / 'lab.db'}")


def test_migration_0013_up_and_down_on_postgresql() -> None:
    from sqlalchemy import create_engine

    from tests.scale.servers import postgres_server

    with postgres_server() as server:
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE bench"))
        admin.dispose()
        _round_trip(server.rsplit("/", 1)[0] + "/bench")
