"""Pick the reader for a path and read all triples from several paths."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from capo.data.divemt import is_divemt_header, read_divemt
from capo.data.generic import is_generic_path, read_generic
from capo.data.mlqe import is_mlqe_path, read_mlqe
from capo.data.triples import DataError, MTPETriple


def read_triples(
    path: Path,
    detokenize: bool = True,
    default_direction: str | None = None,
    columns: Mapping[str, str] | None = None,
) -> list[MTPETriple]:
    """All triples of one file or folder; raises ``DataError`` naming the file. ``columns`` maps the
    generic reader's column names (``src``, ``mt``, ``pe``, …) to a tabular file's own; other formats
    have fixed layouts and ignore it."""
    path = Path(path)
    if not path.exists():
        raise DataError(str(path), "no such file or folder")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(path.name, "the file is empty")
    if path.suffix.lower() == ".tsv" and _looks_like_divemt(path):
        triples = list(read_divemt(path))
    elif is_generic_path(path):
        triples = list(read_generic(path, default_direction, columns))
    elif is_mlqe_path(path):
        triples = list(read_mlqe(path, detokenize=detokenize))
    else:
        raise DataError(
            path.name,
            "unknown format: expected an MLQE-PE .tar.gz or folder, "
            "a DivEMT .tsv, or .jsonl/.json/.csv/.tsv/.parquet",
        )
    if not triples:
        raise DataError(path.name, "holds no usable rows")
    return triples


def read_all(paths: Iterable[Path], **options: object) -> list[MTPETriple]:
    """Concatenate ``read_triples`` over paths, in order."""
    return [t for p in paths for t in read_triples(Path(p), **options)]  # type: ignore[arg-type]


def _looks_like_divemt(path: Path) -> bool:
    with path.open("rb") as handle:
        header = handle.readline(1 << 16)
    return is_divemt_header(header.decode("utf-8", errors="replace"))
