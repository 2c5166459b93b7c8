"""Dataset services: import MTPE files as preference pairs, list, show and describe them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from capo.data import BuildOptions, BuildReport, DirectionStats, build_pairs, direction_stats
from capo.data.readers import read_triples
from capo_lab.database import Database
from capo_lab.errors import LabError
from capo_lab.settings import Settings
from capo_lab.sources import resolve_inputs
from storage import queries
from storage.records import DatasetInfo, PairRecord
from storage.writes import DatasetNameTaken, add_dataset


@dataclass(frozen=True)
class ImportResult:
    dataset_id: int
    name: str
    pair_count: int
    report: BuildReport


def import_dataset(
    db: Database,
    paths: Sequence[Path | str],
    name: str,
    options: BuildOptions,
    detokenize: bool = True,
    default_direction: str | None = None,
    settings: Settings | None = None,
) -> ImportResult:
    """Read every path or source name (``mlqe-pe:en-de:train``), build pairs and store them in one
    transaction (all or nothing). Names are looked up with ``settings`` (default: the environment)."""
    name = name.strip()
    if not name:
        raise LabError("a dataset needs a non-empty --name")
    if not paths:
        raise LabError("give at least one file or folder to import")
    with db.read() as session:
        if queries.dataset_name_taken(session, name):
            raise DatasetNameTaken(name)
    inputs = resolve_inputs(settings or Settings(), paths)
    triples = [
        t
        for path, _ in inputs
        for t in read_triples(path, detokenize=detokenize, default_direction=default_direction)
    ]
    pairs, report = build_pairs(triples, options)
    if not pairs:
        raise LabError("no pair survived the filters: " + _dropped_summary(report))
    try:
        with db.write() as session:
            dataset_id = add_dataset(
                session,
                name,
                pairs,
                build_options=asdict(options),
                sources=[label for _, label in inputs],
                report=report_to_json(report),
            )
    except IntegrityError:
        raise DatasetNameTaken(name) from None
    return ImportResult(dataset_id, name, len(pairs), report)


def report_to_json(report: BuildReport) -> dict[str, object]:
    return {
        "per_direction": report.per_direction,
        "usable": dict(report.usable),
        "dropped": {d: dict(c) for d, c in report.dropped.items()},
        "counts": report.counts,
        "shortfalls": report.shortfalls,
    }


def _dropped_summary(report: BuildReport) -> str:
    parts = [
        f"{d}: " + ", ".join(f"{n} {why}" for why, n in c.items()) for d, c in sorted(report.dropped.items())
    ]
    return "; ".join(parts) or "the input held no rows"


def list_datasets(db: Database) -> list[DatasetInfo]:
    with db.read() as session:
        return queries.list_datasets(session)


def get_dataset(db: Database, name_or_id: str | int) -> DatasetInfo:
    with db.read() as session:
        info = queries.find_dataset(session, name_or_id)
    if info is None:
        raise LabError(f"no dataset named or numbered {name_or_id!r}; see `capo-lab data list`")
    return info


def dataset_pairs(
    db: Database, name_or_id: str | int, split: str | None = None, direction: str | None = None
) -> list[PairRecord]:
    info = get_dataset(db, name_or_id)
    with db.read() as session:
        return queries.list_pairs(session, info.id, split=split, direction=direction)


def dataset_stats(
    db: Database,
    name_or_id: str | int,
    split: str | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> list[DirectionStats]:
    pairs = dataset_pairs(db, name_or_id, split=split)
    return direction_stats(pairs, count_tokens=count_tokens)


def token_counter(tokenizer: str, cache_dir: Path) -> Callable[[str], int]:
    """Tokens in a text (no special tokens) under a model's tokenizer, for tokens-per-character."""
    from capo.models import load_tokenizer

    tok = load_tokenizer(tokenizer, cache_dir)
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])
