"""Inserts and updates. Callers own the transaction (``with session.begin():``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import insert
from sqlalchemy.orm import Session

from storage.models import Dataset, Pair
from storage.queries import dataset_name_taken


class DatasetNameTaken(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a dataset named {name!r} already exists; choose another --name")


class PairLike(Protocol):
    direction: str
    split: str
    prompt: str
    chosen: str
    rejected: str
    source_text: str
    hter: float | None
    origin: str


def add_dataset(
    session: Session,
    name: str,
    pairs: Iterable[PairLike],
    build_options: dict[str, Any],
    sources: list[Any],
    report: dict[str, Any],
) -> int:
    """Insert a dataset with its pairs; returns the new dataset id."""
    if dataset_name_taken(session, name):
        raise DatasetNameTaken(name)
    dataset = Dataset(name=name, build_options=build_options, sources=sources, report=report)
    session.add(dataset)
    session.flush()
    rows = [
        {
            "dataset_id": dataset.id,
            "split": p.split,
            "direction": p.direction,
            "position": position,
            "prompt": p.prompt,
            "chosen": p.chosen,
            "rejected": p.rejected,
            "source_text": p.source_text,
            "hter": p.hter,
            "origin": p.origin,
        }
        for position, p in enumerate(pairs)
    ]
    if rows:
        session.execute(insert(Pair), rows)
    return dataset.id
