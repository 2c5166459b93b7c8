"""Dataset services: import MTPE files as preference pairs, list, show and describe them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from capo.data import BuildOptions, BuildReport, DirectionStats, build_pairs, direction_stats
from capo.data.generic import check_role
from capo.data.readers import read_triples
from capo.languages import UnknownLanguageError, parse_direction
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


@dataclass(frozen=True)
class ImportProblem:
    """One thing wrong with an import's inputs. ``field`` names it neutrally (``name``, ``files``,
    ``columns``, ``per_direction``, ``min_source_chars``); each front end shows it in its own words
    (the UI's "Dataset name", the CLI's ``--name``)."""

    field: str
    message: str


class ImportProblems(LabError):
    """An import refused before reading anything, with every problem found."""

    def __init__(self, problems: Sequence[ImportProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = tuple(problems)


def import_problems(
    db: Database,
    name: str,
    paths: Sequence[Path | str],
    columns: Mapping[str, str] | None = None,
    options: Mapping[str, int] | None = None,
    default_direction: str | None = None,
) -> list[ImportProblem]:
    """Every problem with these import inputs found without reading the files: a blank or taken
    name, nothing to import, a column mapping to unknown names, a default direction that is not one
    (``en-de``), ``options`` (per_direction, min_source_chars) out of range."""
    problems = []
    if default_direction and default_direction.strip():
        try:
            parse_direction(default_direction)
        except UnknownLanguageError as err:
            problems.append(ImportProblem("direction", str(err)))
    if not name.strip():
        problems.append(ImportProblem("name", "a dataset needs a name"))
    else:
        with db.read() as session:
            if queries.dataset_name_taken(session, name.strip()):
                problems.append(ImportProblem("name", f"a dataset named {name.strip()!r} already exists"))
    if not paths:
        problems.append(ImportProblem("files", "choose at least one file or source to import"))
    checked: dict[str, str] = {}
    for role, column in (columns or {}).items():
        try:
            check_role(role, checked)
        except ValueError as err:
            problems.append(ImportProblem("columns", str(err)))
        checked[role] = column
    return problems + _option_problems(options or {})


def _option_problems(options: Mapping[str, int]) -> list[ImportProblem]:
    found = []
    if options.get("per_direction", 1) < 1:
        found.append(ImportProblem("per_direction", "must be at least 1"))
    if options.get("min_source_chars", 0) < 0:
        found.append(ImportProblem("min_source_chars", "must be 0 or more"))
    return found


def import_dataset(
    db: Database,
    paths: Sequence[Path | str],
    name: str,
    options: BuildOptions,
    detokenize: bool = True,
    default_direction: str | None = None,
    settings: Settings | None = None,
    columns: Mapping[str, str] | None = None,
) -> ImportResult:
    """Read every path or source name (``mlqe-pe:en-de:train``), build pairs and store them in one
    transaction (all or nothing). Names are looked up with ``settings`` (default: the environment);
    ``columns`` maps tabular files' own column names (``capo.data.generic``). The import options are
    stored with the dataset, so that it can be rebuilt elsewhere."""
    problems = import_problems(db, name, paths, columns, default_direction=default_direction)
    if problems:
        raise ImportProblems(problems)
    name = name.strip()
    inputs = resolve_inputs(settings or Settings(), paths)
    read = {"detokenize": detokenize, "default_direction": default_direction, "columns": dict(columns or {})}
    triples = [t for path, _ in inputs for t in read_triples(path, **read)]
    pairs, report = build_pairs(triples, options)
    if not pairs:
        raise LabError("no pair survived the filters: " + _dropped_summary(report))
    try:
        with db.write() as session:
            dataset_id = add_dataset(
                session,
                name,
                pairs,
                build_options={**asdict(options), **read},
                sources=[label for _, label in inputs],
                report=report_to_json(report),
            )
    except IntegrityError:
        if not _name_taken(db, name):  # another constraint failed: a bug, not the user's name
            raise
        raise DatasetNameTaken(name) from None  # an import that took the name since the check above
    return ImportResult(dataset_id, name, len(pairs), report)


def _name_taken(db: Database, name: str) -> bool:
    with db.read() as session:
        return queries.dataset_name_taken(session, name)


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


def train_pair_count(info: DatasetInfo, directions: Sequence[str] | None = None) -> int:
    """The dataset's train pairs, only ``directions`` when given (a run's ``data.directions``)."""
    return sum(
        per_split.get("train", 0)
        for direction, per_split in info.counts.items()
        if not directions or direction in directions
    )


def dataset_fingerprint(db: Database, name_or_id: str | int) -> str:
    """sha256 over the dataset's pairs in the order the import built them (their position), each as
    its position, split, direction, prompt, chosen, rejected, source and HTER: the same import gives
    the same fingerprint in any lab, whatever ids its database gave the pairs."""
    pairs = sorted(dataset_pairs(db, name_or_id), key=lambda p: p.position)
    digest = hashlib.sha256()
    for p in pairs:
        row = [p.position, p.split, p.direction, p.prompt, p.chosen, p.rejected, p.source_text, p.hter]
        digest.update(json.dumps(row, ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()
