"""Generic tabular MTPE files (JSONL, JSON, CSV, TSV, Parquet), read with ``datasets``.

Columns: either ``src, mt, pe`` (post-edit data) or ``prompt, chosen,
rejected`` (ready pairs), plus optional ``direction`` (``en-de``),
``src_lang``/``tgt_lang`` and ``hter``. Without a direction column the
direction comes from ``default_direction`` or the file name (``en-de.jsonl``).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capo.data.triples import DataError, MTPETriple, decode_text, parse_hter
from capo.languages import UnknownLanguageError, find_direction, make_direction, parse_direction

TEXT_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv"}
FORMATS = {**TEXT_FORMATS, ".parquet": "parquet"}
MTPE_COLUMNS = ("src", "mt", "pe")
PAIR_COLUMNS = ("prompt", "chosen", "rejected")

if TYPE_CHECKING:
    import datasets


def is_generic_path(path: Path) -> bool:
    return path.suffix.lower() in FORMATS


def read_generic(path: Path, default_direction: str | None = None) -> Iterator[MTPETriple]:
    """Yield a triple per row; ``prompt/chosen/rejected`` rows keep their prompt."""
    table = _load_table(path)
    columns = set(table.column_names)
    if set(MTPE_COLUMNS) <= columns:
        names = MTPE_COLUMNS
    elif set(PAIR_COLUMNS) <= columns:
        names = PAIR_COLUMNS
    else:
        found = ", ".join(sorted(columns)) or "none"
        raise DataError(path.name, f"needs columns src, mt, pe or prompt, chosen, rejected; found {found}")
    fallback = default_direction or find_direction(path.name)
    for index, row in enumerate(table):
        where = f"{path.name} row {index + 1}"
        first, second, third = (_text(row.get(n), where, n) for n in names)
        is_pair = names == PAIR_COLUMNS
        # src, mt, pe  or  prompt, chosen, rejected
        mt, post_edit = (third, second) if is_pair else (second, third)
        yield MTPETriple(
            direction=_direction(row, fallback, where),
            source=first,
            mt=mt,
            post_edit=post_edit,
            hter=parse_hter(row.get("hter"), where),
            origin=f"file:{path.name}:{index + 1}",
            prompt=first if is_pair else None,
        )


def _load_table(path: Path) -> datasets.Dataset:
    import datasets  # Hugging Face datasets: slow to import, needed only for these formats

    suffix = path.suffix.lower()
    if suffix in TEXT_FORMATS:
        decode_text(path.read_bytes(), path.name)  # clear errors for empty, binary, non-UTF-8
    options: dict[str, Any] = {"sep": "\t"} if suffix == ".tsv" else {}
    datasets.disable_progress_bars()
    logging.getLogger("datasets").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="capo-read-") as cache:
        try:
            return datasets.load_dataset(
                FORMATS[suffix],
                data_files=str(path),
                split="train",
                cache_dir=cache,
                keep_in_memory=True,
                **options,
            )
        except Exception as err:  # datasets wraps parser errors in many types
            raise DataError(path.name, f"cannot parse as {suffix[1:]}: {_short(err)}") from None


def _short(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def _text(value: object, where: str, column: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(where, f"column {column!r} must be text, got {type(value).__name__}")
    return value.strip()


def _direction(row: dict[str, Any], fallback: str | None, where: str) -> str:
    try:
        if row.get("direction"):
            src, tgt = parse_direction(str(row["direction"]))
            return f"{src}-{tgt}"
        if row.get("src_lang") and row.get("tgt_lang"):
            return make_direction(str(row["src_lang"]), str(row["tgt_lang"]))
    except UnknownLanguageError as err:
        raise DataError(where, str(err)) from None
    if fallback:
        return fallback
    raise DataError(where, "no direction: add a 'direction' column, src_lang/tgt_lang, or --direction")
