"""DivEMT reader (Sarti et al., 2022): the warm-up and main TSVs and files of the same shape.

Both sets share one column list (the release builds them alike; the Hub's later files add
annotation and QE columns), and only the columns below are read, so one reader serves both.

Keeps post-editing rows (``task_type`` ``pe1``/``pe2``) that have an MT; rows
translated from scratch (``ht``) carry no machine translation to reject.
DivEMT reports HTER in percent; it is stored as a fraction like MLQE-PE's.
``lang_id`` is ISO 639-3 (``ara``, ``ita``…); the source language is English.
The file is streamed a row at a time within ``ReadLimits`` (rows, bytes per row and per field).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from capo.data.limits import ReadLimits, check_field, csv_rows, over_limit
from capo.data.triples import DataError, MTPETriple, parse_hter
from capo.languages import UnknownLanguageError, make_direction

REQUIRED_COLUMNS = ("lang_id", "task_type", "src_text", "mt_text", "tgt_text")
READ_COLUMNS = (*REQUIRED_COLUMNS, "hter")
POST_EDIT_TASKS = frozenset({"pe1", "pe2"})


def is_divemt_header(header_line: str) -> bool:
    """True when a TSV header names DivEMT's columns."""
    columns = set(header_line.strip().split("\t"))
    return {"lang_id", "task_type", "src_text", "tgt_text"} <= columns


def read_divemt(
    path: Path, source_lang: str = "en", limits: ReadLimits | None = None
) -> Iterator[MTPETriple]:
    """Yield a triple per post-edited row with a non-empty MT; ``limits`` default to
    ``ReadLimits.from_env()``."""
    limits = limits or ReadLimits.from_env()
    with path.open("rb") as handle:
        rows = csv_rows(handle, path.name, limits, "\t", "tsv")
        _, header = next(rows, (0, []))
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise DataError(path.name, f"missing DivEMT column(s): {', '.join(missing)}")
        picks = [(index, name) for index, name in enumerate(header) if name in READ_COLUMNS]
        # numbered like csv.DictReader rows from 2, blank lines not counted
        for row_number, (_, fields) in enumerate(rows, start=2):
            if row_number - 1 > limits.max_rows:
                raise over_limit(path.name, f"more than {limits.max_rows:,} rows", "max_rows", limits)
            row = {name: fields[index] if index < len(fields) else None for index, name in picks}
            if row.get("task_type") not in POST_EDIT_TASKS or not (row.get("mt_text") or "").strip():
                continue
            where = f"{path.name} line {row_number}"
            for name, value in row.items():
                check_field(path.name, f"line {row_number}, column {name!r}", value, limits)
            try:
                direction = make_direction(source_lang, row["lang_id"])
            except UnknownLanguageError as err:
                raise DataError(where, str(err)) from None
            yield MTPETriple(
                direction=direction,
                source=row["src_text"].strip(),
                mt=row["mt_text"].strip(),
                post_edit=(row.get("tgt_text") or "").strip(),
                hter=_percent_to_fraction(parse_hter(row.get("hter"), where)),
                origin=f"divemt:{path.name}:{row_number}",
            )


def _percent_to_fraction(hter: float | None) -> float | None:
    return None if hter is None else hter / 100.0
