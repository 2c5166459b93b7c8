"""An integrity error while storing an import is "name taken" only when the name is taken; any other
failed constraint is a bug, not dressed as the user's mistake."""

import json
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

import capo_lab.datasets as datasets
from capo.data import BuildOptions
from capo_lab.database import Database
from capo_lab.settings import Settings
from storage.writes import DatasetNameTaken


def mtpe_jsonl(path: Path) -> Path:
    rows = [
        {
            "direction": "en-de",
            "src": f"Sentence {i} about the weather in the mountains",
            "mt": f"Satz {i}",
            "pe": f"Der Satz {i}",
        }
        for i in range(6)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def failing_insert(before=None):
    def add_dataset(session, name, *_args, **_kwargs):
        if before:
            before(name)
        raise IntegrityError("INSERT INTO datasets …", {}, Exception("CHECK constraint failed"))

    return add_dataset


@pytest.fixture
def db(lab_home: Path) -> Database:
    return Database(Settings().database_url)


def test_another_constraint_is_a_bug_not_a_taken_name(db: Database, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(datasets, "add_dataset", failing_insert())
    with pytest.raises(IntegrityError):
        datasets.import_dataset(db, [mtpe_jsonl(tmp_path / "a.jsonl")], "d", BuildOptions(2, 10))
    assert datasets.list_datasets(db) == []


def test_a_name_taken_while_importing_is_a_taken_name(db: Database, tmp_path: Path, monkeypatch) -> None:
    path = mtpe_jsonl(tmp_path / "a.jsonl")
    original = datasets.add_dataset

    def take(name: str) -> None:  # another import stores the same name first
        with db.write() as session:
            original(session, name, [], build_options={}, sources=[], report={})

    monkeypatch.setattr(datasets, "add_dataset", failing_insert(before=take))
    with pytest.raises(DatasetNameTaken, match="a dataset named 'd' already exists"):
        datasets.import_dataset(db, [path], "d", BuildOptions(2, 10))
