"""Every select the lab runs. Each takes a Session and returns plain records."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Dataset, Pair
from storage.records import DatasetInfo, PairRecord


def _split_counts(session: Session, dataset_ids: list[int]) -> dict[int, dict[str, dict[str, int]]]:
    rows = session.execute(
        select(Pair.dataset_id, Pair.direction, Pair.split, func.count())
        .where(Pair.dataset_id.in_(dataset_ids))
        .group_by(Pair.dataset_id, Pair.direction, Pair.split)
    )
    counts: dict[int, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for dataset_id, direction, split, n in rows:
        counts[dataset_id][direction][split] = n
    return counts


def _info(dataset: Dataset, counts: dict[str, dict[str, int]]) -> DatasetInfo:
    return DatasetInfo(
        id=dataset.id,
        name=dataset.name,
        created_at=dataset.created_at,
        pair_count=sum(n for per_split in counts.values() for n in per_split.values()),
        counts={d: dict(s) for d, s in counts.items()},
        sources=list(dataset.sources),
        build_options=dict(dataset.build_options),
        report=dict(dataset.report),
    )


def list_datasets(session: Session) -> list[DatasetInfo]:
    datasets = session.scalars(select(Dataset).order_by(Dataset.id)).all()
    counts = _split_counts(session, [d.id for d in datasets])
    return [_info(d, counts.get(d.id, {})) for d in datasets]


def find_dataset(session: Session, name_or_id: str | int) -> DatasetInfo | None:
    """A dataset by exact name, or by id when given an int or a string of digits."""
    dataset = session.scalar(select(Dataset).where(Dataset.name == str(name_or_id)))
    if dataset is None and str(name_or_id).isdigit():
        dataset = session.get(Dataset, int(name_or_id))
    if dataset is None:
        return None
    return _info(dataset, _split_counts(session, [dataset.id]).get(dataset.id, {}))


def dataset_name_taken(session: Session, name: str) -> bool:
    return session.scalar(select(func.count()).where(Dataset.name == name)) > 0


def list_pairs(
    session: Session, dataset_id: int, split: str | None = None, direction: str | None = None
) -> list[PairRecord]:
    query = select(Pair).where(Pair.dataset_id == dataset_id)
    if split:
        query = query.where(Pair.split == split)
    if direction:
        query = query.where(Pair.direction == direction)
    pairs = session.scalars(query.order_by(Pair.direction, Pair.split, Pair.position))
    return [_pair_record(p) for p in pairs]


def get_pairs(session: Session, pair_ids: list[int]) -> list[PairRecord]:
    pairs = session.scalars(select(Pair).where(Pair.id.in_(pair_ids)).order_by(Pair.id))
    return [_pair_record(p) for p in pairs]


def _pair_record(p: Pair) -> PairRecord:
    return PairRecord(
        pair_id=p.id,
        dataset_id=p.dataset_id,
        split=p.split,
        direction=p.direction,
        position=p.position,
        prompt=p.prompt,
        chosen=p.chosen,
        rejected=p.rejected,
        source_text=p.source_text,
        hter=p.hter,
        origin=p.origin,
    )
