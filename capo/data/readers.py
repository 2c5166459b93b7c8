"""Pick the reader for a path and read all triples from several paths, each within ``ReadLimits``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from capo.data.divemt import is_divemt_header, read_divemt
from capo.data.generic import is_generic_path, read_generic
from capo.data.limits import ReadLimits, check_size
from capo.data.mlqe import is_mlqe_path, read_mlqe
from capo.data.triples import DataError, MTPETriple


def read_triples(
    path: Path,
    detokenize: bool = True,
    default_direction: str | None = None,
    columns: Mapping[str, str] | None = None,
    limits: ReadLimits | None = None,
) -> list[MTPETriple]:
    """All triples of one file or folder; raises ``DataError`` naming the file. ``columns`` maps the
    generic reader's column names (``src``, ``mt``, ``pe``, …) to a tabular file's own; other formats
    have fixed layouts and ignore it. ``limits`` bound what the file may make the reader hold
    (default: ``ReadLimits.from_env()``, the ``CAPO_LAB_MAX_*`` settings)."""
    path = Path(path)
    limits = limits or ReadLimits.from_env()
    if not path.exists():
        raise DataError(str(path), "no such file or folder")
    if path.is_file():
        size = path.stat().st_size
        if size == 0:
            raise DataError(path.name, "the file is empty")
        check_size(path.name, "the file", size, "max_total_bytes", limits)
    if path.suffix.lower() == ".tsv" and _looks_like_divemt(path):
        triples = list(read_divemt(path, limits=limits))
    elif is_generic_path(path):
        triples = list(read_generic(path, default_direction, columns, limits))
    elif is_mlqe_path(path):
        triples = list(read_mlqe(path, detokenize=detokenize, limits=limits))
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
