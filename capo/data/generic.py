"""Generic tabular MTPE files: JSONL, JSON, CSV, TSV and Parquet.

Columns: either ``src, mt, pe`` (post-edit data) or ``prompt, chosen,
rejected`` (ready pairs), plus optional ``direction`` (``en-de``),
``src_lang``/``tgt_lang`` and ``hter``. A column mapping names a file's own
columns for these (``{"src": "source", "mt": "translation", "pe": "postedit"}``;
``parse_columns`` reads it from ``src=source,mt=translation,pe=postedit``).
Without a direction column the direction comes from ``default_direction`` or
the file name (``en-de.jsonl``).

Every format is streamed within ``ReadLimits`` (``capo.data.limits``): JSON Lines and CSV/TSV a
bounded line at a time with the stdlib parsers (a JSON value's nesting measured on its raw text
first), a ``.json`` array an item at a time, Parquet checked by its footer and then read a batch
at a time with ``pyarrow``. Only the columns the reader uses are kept; nothing is written to disk.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from capo.data.limits import (
    ROW_FIELDS,
    UTF8_BOM,
    ReadLimits,
    check_depth,
    check_field,
    check_head,
    check_size,
    csv_rows,
    human_bytes,
    over_limit,
    text_lines,
)
from capo.data.triples import DataError, MTPETriple, parse_hter
from capo.languages import UnknownLanguageError, find_direction, make_direction, parse_direction

TEXT_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv"}
FORMATS = {**TEXT_FORMATS, ".parquet": "parquet"}
MTPE_COLUMNS = ("src", "mt", "pe")
PAIR_COLUMNS = ("prompt", "chosen", "rejected")
OPTIONAL_COLUMNS = ("direction", "src_lang", "tgt_lang", "hter")
ROLES = (*MTPE_COLUMNS, *PAIR_COLUMNS, *OPTIONAL_COLUMNS)  # the names a column mapping may map to
LISTED_COLUMNS = 200  # a file's columns named in an error, at most
PARQUET_BATCH = 256  # rows converted to Python at a time

if TYPE_CHECKING:
    import pyarrow as pa


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
    path: Path,
    default_direction: str | None = None,
    columns: Mapping[str, str] | None = None,
    limits: ReadLimits | None = None,
) -> Iterator[MTPETriple]:
    """Yield a triple per row; ``prompt/chosen/rejected`` rows keep their prompt. ``columns`` maps
    roles (``src``, ``mt``, ``pe``, …) to the file's own column names. The whole file is read, within
    ``limits`` (default: ``ReadLimits.from_env()``), before the first triple is yielded."""
    table = _load_rows(path, columns or {}, limits or ReadLimits.from_env())
    names = column_names(path.name, table.found, columns or {})
    is_pair = not all(names[r] in table.found for r in MTPE_COLUMNS)
    roles = PAIR_COLUMNS if is_pair else MTPE_COLUMNS
    fallback = default_direction or find_direction(path.name)
    for index, row in enumerate(table.rows):
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


class _Rows:
    """A file's rows, each kept as only the columns the reader may use, within ``limits``.

    ``found`` lists the file's columns in first-seen order (at most ``LISTED_COLUMNS`` of them, plus
    every column the reader may use), for ``column_names``."""

    def __init__(self, source: str, wanted: frozenset[str], limits: ReadLimits) -> None:
        self.source = source
        self.wanted = wanted
        self.limits = limits
        self.found: list[str] = []
        self.rows: list[dict[str, object]] = []
        self._seen: set[str] = set()

    def see(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self._seen and (len(self.found) < LISTED_COLUMNS or name in self.wanted):
                self._seen.add(name)
                self.found.append(name)

    def add(self, row: dict[str, object]) -> None:
        """Keep one row (already cut to the wanted columns); refuse one row too many or a field
        over ``max_field_bytes``."""
        if len(self.rows) >= self.limits.max_rows:
            raise over_limit(self.source, f"more than {self.limits.max_rows:,} rows", "max_rows", self.limits)
        for name, value in row.items():
            check_field(self.source, f"row {len(self.rows) + 1}, column {name!r}", value, self.limits)
        self.rows.append(row)

    def add_json(self, value: object, where: str, kind: str) -> None:
        if not isinstance(value, dict):
            raise DataError(self.source, f"cannot parse as {kind}: {where} is not an object")
        if len(self._seen) < LISTED_COLUMNS:
            self.see(value)
        else:
            self.see(name for name in self.wanted if name in value)
        self.add({name: value[name] for name in self.wanted if name in value})


def _load_rows(path: Path, columns: Mapping[str, str], limits: ReadLimits) -> _Rows:
    """Every row of a tabular file, streamed and bounded by ``limits``; ``DataError`` naming the file
    for a file that cannot be parsed or goes over a limit."""
    wanted = frozenset(columns.get(role, role) for role in ROLES)
    table = _Rows(path.name, wanted, limits)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        _read_parquet(path, table, limits)
        return table
    with path.open("rb") as handle:
        if suffix in (".csv", ".tsv"):
            _read_csv(handle, path.name, table, limits, suffix)
        else:
            _read_json(handle, path.name, table, limits, suffix[1:])
    return table


def _read_csv(handle: BinaryIO, source: str, table: _Rows, limits: ReadLimits, suffix: str) -> None:
    """A CSV (``,``) or TSV (tab) file with a header row, ``"`` quoting; a missing field is empty."""
    kind = suffix[1:]
    rows = csv_rows(handle, source, limits, "\t" if suffix == ".tsv" else ",", kind)
    first = next(rows, None)
    if first is None:
        raise DataError(source, "the file is empty")
    _, header = first
    table.see(header)
    picks = [(index, name) for index, name in enumerate(header) if name in table.wanted]
    for number, fields in rows:
        if len(fields) > len(header):
            problem = f"line {number} has {len(fields)} fields, the header {len(header)}"
            raise DataError(source, f"cannot parse as {kind}: {problem}")
        table.add({name: fields[index] for index, name in picks if index < len(fields)})


def _read_json(handle: BinaryIO, source: str, table: _Rows, limits: ReadLimits, kind: str) -> None:
    """JSON Lines (one object per line), or one JSON array of objects (a file starting with ``[``).
    Each value's nesting is measured on its raw text before the stdlib parser reads it."""
    head = check_head(handle, source)
    if head.removeprefix(UTF8_BOM).lstrip(b" \t\r\n")[:1] == b"[":
        _read_json_array(handle, source, table, limits, kind)
        return
    for number, line in text_lines(handle, source, limits):
        if not line.strip():
            continue
        where = f"line {number}"
        check_depth(source, where, line, limits)
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as err:
            raise DataError(source, f"cannot parse as {kind}: {where}: {_short(err)}") from None
        table.add_json(value, where, kind)


def _read_json_array(handle: BinaryIO, source: str, table: _Rows, limits: ReadLimits, kind: str) -> None:
    cursor = _JsonCursor(handle, source, limits, kind)
    cursor.skip_space()
    cursor.pos += 1  # the opening [, seen by the caller
    number = 0
    while True:
        cursor.skip_space()
        if cursor.at_end():
            raise DataError(source, f"cannot parse as {kind}: the array is not closed")
        if cursor.text[cursor.pos] == "]":
            cursor.pos += 1
            cursor.skip_space()
            if not cursor.at_end():
                raise DataError(source, f"cannot parse as {kind}: text after the array")
            return
        if number:
            if cursor.text[cursor.pos] != ",":
                raise DataError(source, f"cannot parse as {kind}: expected ',' or ']' after item {number}")
            cursor.pos += 1
            cursor.skip_space()
        number += 1
        table.add_json(cursor.value(f"item {number}"), f"item {number}", kind)


class _JsonCursor:
    """A JSON array's text, decoded and read ``max_row_bytes`` at a time: no item longer than that,
    or nested deeper than ``max_depth``, is handed to the parser."""

    _SPACE = re.compile(r"[ \t\n\r]*")

    def __init__(self, handle: BinaryIO, source: str, limits: ReadLimits, kind: str) -> None:
        self.handle = handle
        self.source = source
        self.limits = limits
        self.kind = kind
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.parser = json.JSONDecoder()
        self.text = ""
        self.pos = 0
        self.offset = 0  # bytes read so far
        self.eof = False

    def more(self) -> bool:
        """Read the next chunk; False at the end of the file. Text already read is dropped."""
        if self.eof:
            return False
        data = self.handle.read(self.limits.max_row_bytes)
        self.eof = not data
        try:
            decoded = self.decoder.decode(data, final=self.eof)
        except UnicodeDecodeError as err:
            place = self.offset + err.start
            raise DataError(self.source, f"not UTF-8 text (invalid byte near offset {place})") from None
        self.offset += len(data)
        self.text = self.text[self.pos :] + decoded
        self.pos = 0
        return True

    def at_end(self) -> bool:
        return self.pos >= len(self.text) and not self.more()

    def skip_space(self) -> None:
        while True:
            self.pos = self._SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.text) or not self.more():
                return

    def value(self, where: str) -> object:
        cap = self.limits.max_row_bytes
        while True:
            check_depth(
                self.source, where, self.text[self.pos : self.pos + cap], self.limits, first_value=True
            )
            try:
                value, end = self.parser.raw_decode(self.text, self.pos)
            except RecursionError:
                problem = f"cannot parse as {self.kind}: {where} is nested too deep"
                raise DataError(self.source, problem) from None
            except json.JSONDecodeError as err:
                if len(self.text) - self.pos <= cap and self.more():
                    continue
                cut_short = err.pos >= len(self.text) - 1 or err.msg.startswith("Unterminated string")
                if cut_short and len(self.text) - self.pos > cap:
                    raise self._too_long(where) from None
                raise DataError(self.source, f"cannot parse as {self.kind}: {where}: {err}") from None
            if end - self.pos > cap:
                raise self._too_long(where)
            self.pos = end
            return value

    def _too_long(self, where: str) -> DataError:
        cap = human_bytes(self.limits.max_row_bytes)
        found = f"{where} is longer than {cap} ({ROW_FIELDS} fields' worth)"
        return over_limit(self.source, found, "max_field_bytes", self.limits)


def _read_parquet(path: Path, table: _Rows, limits: ReadLimits) -> None:
    """Refuse by the footer (rows, unpacked column-chunk sizes) before reading any data; then read
    only the wanted columns, ``PARQUET_BATCH`` rows at a time, text columns kept dictionary-encoded
    until every distinct value has been measured."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = path.name
    try:
        footer = pq.ParquetFile(path)
        metadata, schema = footer.metadata, footer.schema_arrow
    except Exception as err:  # pyarrow raises several types for a bad file
        raise DataError(source, f"cannot parse as parquet: {_short(err)}") from None
    table.see(schema.names)
    read = [name for name in schema.names if name in table.wanted]
    for name in read:
        kind = schema.field(name).type
        if pa.types.is_nested(kind):
            raise DataError(source, f"column {name!r} must be text or a number, got {kind}")
    rows = max(metadata.num_rows, sum(metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)))
    if rows > limits.max_rows:
        raise over_limit(source, f"{rows:,} rows", "max_rows", limits)
    unpacked = 0
    for group in range(metadata.num_row_groups):
        chunks = metadata.row_group(group)
        for index in range(chunks.num_columns):
            chunk = chunks.column(index)
            if chunk.path_in_schema in read:
                what = f"column {chunk.path_in_schema!r} in row group {group + 1}"
                check_size(source, what, chunk.total_uncompressed_size, "max_member_bytes", limits)
                unpacked += chunk.total_uncompressed_size
    check_size(source, "the columns read, unpacked,", unpacked, "max_total_bytes", limits)
    texts = [n for n in read if _is_text(schema.field(n).type)]
    decoded = 0
    try:
        reader = pq.ParquetFile(path, read_dictionary=texts, pre_buffer=False, buffer_size=1 << 20)
        for batch in reader.iter_batches(batch_size=PARQUET_BATCH, columns=read):
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                decoded += _measure(source, name, column, limits)
            check_size(source, "the text read", decoded, "max_total_bytes", limits)
            for row in batch.to_pylist():
                table.add(row)
    except DataError:
        raise
    except Exception as err:
        raise DataError(source, f"cannot parse as parquet: {_short(err)}") from None


def _measure(source: str, name: str, column: pa.Array, limits: ReadLimits) -> int:
    """The UTF-8 bytes a batch's column unpacks to; refuses a value over ``max_field_bytes``, measured
    on a dictionary's distinct values before any row is unpacked."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = column.dictionary if pa.types.is_dictionary(column.type) else column
    if not _is_text(values.type):
        return 0
    lengths = pc.binary_length(values)
    longest = pc.max(lengths).as_py() or 0
    if longest > limits.max_field_bytes:
        found = f"column {name!r} holds a value of {human_bytes(longest)}"
        raise over_limit(source, found, "max_field_bytes", limits)
    if pa.types.is_dictionary(column.type):
        lengths = pc.take(lengths, column.indices)
    return int(pc.sum(lengths).as_py() or 0)


def _is_text(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


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
