from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from capo.data.triples import PreferencePair, is_tie
from capo_lab.database import Database
from storage import queries
from storage.engine import make_engine
from storage.migrate import current_revision, downgrade, head_revision, upgrade
from storage.models import Base
from storage.writes import DatasetNameTaken, add_dataset


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'nested' / 'lab.db'}"


def pairs(n: int) -> list[PreferencePair]:
    return [
        PreferencePair(
            "en-de" if i % 2 else "en-zh",
            "train" if i < n - 1 else "eval",
            f"prompt {i}",
            f"chosen {i}",
            f"rejected {i}",
            f"source {i}",
            f"o:{i}",
            None if i == 0 else i / 10,
        )
        for i in range(n)
    ]


def test_migrations_upgrade_downgrade_and_match_the_models(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path))
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    assert {"datasets", "pairs"} <= set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
    downgrade(engine, "base")
    assert "pairs" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert "pairs" in inspect(engine).get_table_names()


def test_earlier_sweeps_become_studies_and_no_row_of_a_run_is_lost(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path))
    upgrade(engine, "0006")
    with engine.begin() as connection:
        for sweep in ("abc", "abc", None):
            connection.execute(
                text(
                    "INSERT INTO runs (name, config, status, sweep_id, created_at, step, notes) "
                    "VALUES ('r', '{}', 'succeeded', :s, CURRENT_TIMESTAMP, 0, '[]')"
                ),
                {"s": sweep},
            )
        connection.execute(text("INSERT INTO metrics (run_id, step, key, value) VALUES (1, 0, 'loss', 0.7)"))
        connection.execute(
            text("INSERT INTO checkpoints (run_id, step, path, created_at) VALUES (1, 1, 'p', 0)")
        )
    upgrade(engine)
    with engine.connect() as connection:
        studies = connection.execute(text("SELECT id, name FROM studies")).all()
        runs = connection.execute(text("SELECT id, study_id FROM runs ORDER BY id")).all()
        kept = [
            connection.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in ("metrics", "checkpoints")
        ]
        foreign_keys = connection.execute(text("PRAGMA foreign_keys")).scalar()
    assert [name for _, name in studies] == ["sweep-abc"]
    assert [study for _, study in runs] == [studies[0][0], studies[0][0], None]
    assert kept == [1, 1]  # rebuilding the runs table must not cascade-delete what references it
    assert foreign_keys == 1


# (chosen, rejected): collapsing runs of whitespace (str.split: tabs, newlines, U+00A0, U+3000)
# makes the first four ties; case, punctuation and an inner space that splits a word do not.
TIE_CASES = [
    ("Das Haus ist rot.", "Das Haus ist rot."),
    ("Das  Haus\tist\nrot.", " Das Haus ist rot. "),
    ("Das\u00a0Haus", "Das Haus"),
    ("你好\u3000世界", "你好 世界"),
    ("Das Haus ist rot.", "das Haus ist rot."),
    ("Das Haus ist rot.", "Das Haus ist rot"),
    ("Dashaus", "Das haus"),
]
TIES = [True, True, True, True, False, False, False]


def test_migration_0011_backfills_ties_from_the_text_of_existing_pairs(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path))
    upgrade(engine, "0010")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO datasets (name, created_at, build_options, sources, report) "
                "VALUES ('old', CURRENT_TIMESTAMP, '{}', '[]', '{}')"
            )
        )
        for position, (chosen, rejected) in enumerate(TIE_CASES):
            connection.execute(
                text(
                    "INSERT INTO pairs (dataset_id, split, direction, position, prompt, chosen, rejected, "
                    "source_text, hter, origin) VALUES (1, 'train', 'en-de', :p, 'x', :c, :r, 's', NULL, 'o')"
                ),
                {"p": position, "c": chosen, "r": rejected},
            )
        connection.execute(
            text(
                "INSERT INTO runs (name, config, status, created_at, step, notes) "
                "VALUES ('r', '{}', 'succeeded', CURRENT_TIMESTAMP, 0, '[]')"
            )
        )
        connection.execute(text("INSERT INTO metrics (run_id, step, key, value) VALUES (1, 0, 'loss', 0.7)"))
    upgrade(engine)
    with engine.connect() as connection:
        ties = connection.execute(text("SELECT tie FROM pairs ORDER BY position")).scalars().all()
        metrics = connection.execute(text("SELECT COUNT(*) FROM metrics")).scalar()
    assert [bool(t) for t in ties] == TIES
    assert [bool(t) for t in ties] == [is_tie(c, r) for c, r in TIE_CASES]  # the migration's rule is is_tie
    assert metrics == 1  # nothing that references a rebuilt table is lost
    with Database(sqlite_url(tmp_path)).read() as session:
        assert [p.tie for p in queries.list_pairs(session, 1)] == TIES


def test_pairs_store_the_tie_decided_from_their_text(tmp_path: Path) -> None:
    made = [PreferencePair("en-de", "train", "p", c, r, f"s{i}", "o") for i, (c, r) in enumerate(TIE_CASES)]
    assert [p.tie for p in made] == TIES
    db = Database(sqlite_url(tmp_path))
    with db.write() as session:
        dataset_id = add_dataset(session, "ties", made, {}, [], {})
    with db.read() as session:
        stored = queries.list_pairs(session, dataset_id)
    assert {(p.chosen, p.rejected): p.tie for p in stored} == {(p.chosen, p.rejected): p.tie for p in made}
    assert stored[0].as_dict()["tie"] is True


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path))
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_dataset_round_trip(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path))
    with db.write() as session:
        dataset_id = add_dataset(session, "demo", pairs(5), {"seed": 1}, ["a.tsv"], {"usable": {}})
    with db.read() as session:
        info = queries.find_dataset(session, "demo")
        assert info is not None and info.id == dataset_id
        assert queries.find_dataset(session, str(dataset_id)) == info
        assert info.pair_count == 5 and info.counts == {
            "en-de": {"train": 2},
            "en-zh": {"train": 2, "eval": 1},
        }
        assert info.build_options == {"seed": 1} and info.sources == ["a.tsv"]
        rows = queries.list_pairs(session, dataset_id, split="train", direction="en-zh")
    assert [(r.prompt, r.chosen, r.rejected, r.hter) for r in rows] == [
        ("prompt 0", "chosen 0", "rejected 0", None),
        ("prompt 2", "chosen 2", "rejected 2", 0.2),
    ]


def test_a_taken_name_rolls_back_everything(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path))
    with db.write() as session:
        add_dataset(session, "demo", pairs(3), {}, [], {})
    with pytest.raises(DatasetNameTaken), db.write() as session:
        add_dataset(session, "demo", pairs(3), {}, [], {})
    with db.read() as session:
        assert [d.pair_count for d in queries.list_datasets(session)] == [3]


def test_runs_metrics_scores_and_checkpoints_round_trip(tmp_path: Path) -> None:
    from storage.writes import add_checkpoint, add_metrics, add_pair_scores, add_run, update_run

    db = Database(sqlite_url(tmp_path))
    score = {
        "pair_id": 7,
        "direction": "en-de",
        "logp_chosen": -3.0,
        "logp_rejected": -4.0,
        "n_tokens_chosen": 2,
        "n_tokens_rejected": 3,
        "ref_logp_chosen": None,
        "ref_logp_rejected": None,
        "rrm": 0.75,
        "loss": 0.5,
        "reward_margin": 0.1,
        "grad_chosen": {"dpo": -0.1, "rrm": -0.2},
        "grad_rejected": {"dpo": 0.1, "rrm": 0.05},
    }
    with db.write() as session:
        run_id = add_run(session, "r", {"objective": {"name": "capo"}}, None)
        add_metrics(session, run_id, [(0, "eval_loss", 0.7), (1, "loss", 0.6), (2, "loss", 0.5)])
        add_pair_scores(
            session,
            run_id,
            [{**score, "step": 0, "split": "train"}, {**score, "step": 5, "split": "train", "loss": 0.25}],
        )
        add_checkpoint(session, run_id, 5, "/ckpt/5")
        add_checkpoint(session, run_id, 10, "/ckpt/10")
        update_run(session, run_id, status="running", step=5)
    with db.read() as session:
        run = queries.get_run(session, run_id)
        assert (run.status, run.step, run.config) == ("running", 5, {"objective": {"name": "capo"}})
        assert [(m.step, m.key) for m in queries.metrics(session, run_id, after_step=0)] == [
            (1, "loss"),
            (2, "loss"),
        ]
        assert queries.score_steps(session, run_id, "train") == [0, 5]
        (late,) = queries.pair_scores(session, run_id, "train", 5)
        assert late.loss == 0.25 and late.grad_chosen == {"dpo": -0.1, "rrm": -0.2}
        assert [s.step for s in queries.pair_history(session, run_id, 7)] == [0, 5]
        assert queries.latest_checkpoint(session, run_id).path == "/ckpt/10"
    with pytest.raises(ValueError, match="no column"), db.write() as session:
        update_run(session, run_id, colour="red")


def test_generations_and_prefixed_metrics_are_replaced_not_duplicated(tmp_path) -> None:
    from capo_lab.database import Database
    from storage import queries, writes

    db = Database(f"sqlite:///{tmp_path / 'lab.db'}")
    with db.write() as session:
        run_id = writes.add_run(session, "r", {}, None, "succeeded", None)
    rows = [{"pair_id": 3, "direction": "en-de", "text": "Hallo", "n_tokens": 2, "truncated": False}]
    for output in ("first", "second"):
        with db.write() as session:
            writes.replace_generations(session, run_id, 4, "eval", "adapter", [{**rows[0], "text": output}])
            writes.replace_metrics(session, run_id, 4, "eval_translation/", [("eval_translation/chrf", 1.0)])
    with db.read() as session:
        stored = queries.generations(session, run_id, "eval", 4)
        metrics = queries.metrics(session, run_id, -1)
    assert [(g.pair_id, g.model, g.text) for g in stored] == [(3, "adapter", "second")]
    assert [(m.key, m.value) for m in metrics] == [("eval_translation/chrf", 1.0)]
    with db.read() as session:
        assert queries.generation_steps(session, run_id, "eval") == [4]
