"""Generic tabular MTPE files (JSONL, JSON, CSV, TSV, Parquet), read with ``datasets``.

Columns: either ``src, mt, pe`` (post-edit data) or ``prompt, chosen,
rejected`` (ready pairs), plus optional ``direction`` (``en-de``),
``src_lang``/``tgt_lang`` and ``hter``. A column mapping names a file's own
columns for these (``{"src": "source", "mt": "translation", "pe": "postedit"}``;
``parse_columns`` reads it from ``src=source,mt=translation,pe=postedit``).
Without a direction column the direction comes from ``default_direction`` or
the file name (``en-de.jsonl``).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capo.data.triples import DataError, MTPETriple, decode_text, parse_hter
from capo.languages import UnknownLanguageError, find_direction, make_direction, parse_direction

TEXT_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv"}
FORMATS = {**TEXT_FORMATS, ".parquet": "parquet"}
MTPE_COLUMNS = ("src", "mt", "pe")
PAIR_COLUMNS = ("prompt", "chosen", "rejected")
OPTIONAL_COLUMNS = ("direction", "src_lang", "tgt_lang", "hter")
ROLES = (*MTPE_COLUMNS, *PAIR_COLUMNS, *OPTIONAL_COLUMNS)  # the names a column mapping may map to

if TYPE_CHECKING:
    import datasets


def is_generic_path(path: Path) -> bool:
    return path.suffix.lower() in FORMATS


def parse_columns(text: str) -> dict[str, str]:
    """``src=source,mt=translation,pe=postedit`` → {role: the file's column}; ValueError naming the
    first bad item. Empty text is no mapping."""
    mapping: dict[str, str] = {}
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        role, sep, column = (part.strip() for part in item.partition("="))
        if not sep or not role or not column:
            raise ValueError(f"{item!r} must look like src=column_name")
        check_role(role, mapping)
        mapping[role] = column
    return mapping


def check_role(role: str, mapping: Mapping[str, str]) -> None:
    """ValueError unless ``role`` is one a column can be mapped to, and not mapped already."""
    if role not in ROLES:
        raise ValueError(f"{role!r} is not a column the reader uses; use one of {', '.join(ROLES)}")
    if role in mapping:
        raise ValueError(f"{role!r} is mapped twice")


def column_names(file_name: str, found: list[str], mapping: Mapping[str, str]) -> dict[str, str]:
    """Role → the file's column for every role, the mapping's names first; DataError naming a mapped
    column the file lacks, or the required columns when neither src/mt/pe nor prompt/chosen/rejected
    are all there."""
    missing = [f"{column!r} (for {role})" for role, column in mapping.items() if column not in found]
    listed = ", ".join(found) or "none"
    if missing:
        raise DataError(file_name, f"no column {', '.join(missing)}; the file's columns: {listed}")
    names = {role: mapping.get(role, role) for role in ROLES}
    if not any(all(names[r] in found for r in group) for group in (MTPE_COLUMNS, PAIR_COLUMNS)):
        raise DataError(
            file_name,
            "needs columns src, mt, pe or prompt, chosen, rejected (or a column mapping naming them); "
            f"found {', '.join(sorted(found)) or 'none'}",
        )
    return names


def read_generic(
    path: Path, default_direction: str | None = None, columns: Mapping[str, str] | None = None
) -> Iterator[MTPETriple]:
    """Yield a triple per row; ``prompt/chosen/rejected`` rows keep their prompt. ``columns`` maps
    roles (``src``, ``mt``, ``pe``, …) to the file's own column names."""
    table = _load_table(path)
    names = column_names(path.name, list(table.column_names), columns or {})
    is_pair = not all(names[r] in table.column_names for r in MTPE_COLUMNS)
    roles = PAIR_COLUMNS if is_pair else MTPE_COLUMNS
    fallback = default_direction or find_direction(path.name)
    for index, row in enumerate(table):
        where = f"{path.name} row {index + 1}"
        first, second, third = (_text(row.get(names[r]), where, names[r]) for r in roles)
        # src, mt, pe  or  prompt, chosen, rejected
        mt, post_edit = (third, second) if is_pair else (second, third)
        yield MTPETriple(
            direction=_direction(row, names, fallback, where),
            source=first,
            mt=mt,
            post_edit=post_edit,
            hter=parse_hter(row.get(names["hter"]), where),
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
    logging.getLogger("datasets").setLevel(logging.CRITICAL)  # its parser errors become DataError below
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


def _direction(row: dict[str, Any], names: Mapping[str, str], fallback: str | None, where: str) -> str:
    direction, src_lang, tgt_lang = (row.get(names[r]) for r in ("direction", "src_lang", "tgt_lang"))
    try:
        if direction:
            src, tgt = parse_direction(str(direction))
            return f"{src}-{tgt}"
        if src_lang and tgt_lang:
            return make_direction(str(src_lang), str(tgt_lang))
    except UnknownLanguageError as err:
        raise DataError(where, str(err)) from None
    if fallback:
        return fallback
    raise DataError(
        where,
        "no direction: add a 'direction' column or src_lang/tgt_lang columns, name the file after its "
        "direction (en-de.csv), or give a default direction",
    )
