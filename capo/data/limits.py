"""How much one input file may make a reader hold, and the bounded reading every reader goes through.

A file is refused, with one ``DataError`` naming it, the limit and the setting that raises it, as
soon as it is seen to go over a limit, and where possible before the bytes are read: an archive
member by its declared size, a Parquet file by the row counts and sizes in its footer, a JSON
value by the bracket depth of its raw text before any parser sees it.

| limit | default | setting |
| --- | --- | --- |
| rows (lines) of one file | 2,000,000 | ``CAPO_LAB_MAX_ROWS`` |
| bytes of one field (a text column, an MLQE-PE line) | 64 KiB | ``CAPO_LAB_MAX_FIELD_BYTES`` |
| bytes of one archive member or Parquet column chunk, unpacked | 512 MiB | ``CAPO_LAB_MAX_MEMBER_BYTES`` |
| nesting depth of a JSON value | 32 | ``CAPO_LAB_MAX_DEPTH`` |
| bytes of one file, unpacked (archives, Parquet text) | 2 GiB | ``CAPO_LAB_MAX_TOTAL_BYTES`` |
| members of one archive | 10,000 | ``CAPO_LAB_MAX_MEMBERS`` |

A line of a text file (a JSONL row, a CSV row with its quoted line breaks) may hold
``ROW_FIELDS`` fields' worth of bytes (``max_row_bytes``: 1 MiB by default), so that an over-long
line is refused without being read whole.
"""

from __future__ import annotations

import csv
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import BinaryIO

from capo.data.triples import DataError

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
ROW_FIELDS = 16  # a line may be this many largest fields long
HEAD_BYTES = 1 << 16  # the head of a text file looked at for NUL bytes
UTF8_BOM = b"\xef\xbb\xbf"

# field → (environment variable, how the limit reads in a message)
SETTINGS: dict[str, tuple[str, str]] = {
    "max_rows": ("CAPO_LAB_MAX_ROWS", "rows"),
    "max_field_bytes": ("CAPO_LAB_MAX_FIELD_BYTES", "per field"),
    "max_member_bytes": ("CAPO_LAB_MAX_MEMBER_BYTES", "per archive member"),
    "max_depth": ("CAPO_LAB_MAX_DEPTH", "levels of nesting"),
    "max_total_bytes": ("CAPO_LAB_MAX_TOTAL_BYTES", "per file, unpacked"),
    "max_members": ("CAPO_LAB_MAX_MEMBERS", "archive members"),
}


@dataclass(frozen=True)
class ReadLimits:
    """The most one input file may make a reader hold; every reader takes one (default: ``from_env``)."""

    max_rows: int = 2_000_000
    max_field_bytes: int = 64 * KiB
    max_member_bytes: int = 512 * MiB
    max_depth: int = 32
    max_total_bytes: int = 2 * GiB
    max_members: int = 10_000

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{item.name} must be a whole number of at least 1, got {value!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReadLimits:
        """The defaults, each replaced by its ``CAPO_LAB_MAX_*`` variable when set (a whole number;
        ``_`` may group digits). A bad value is a ``DataError`` naming the variable."""
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for name, (variable, _) in SETTINGS.items():
            text = env.get(variable, "").strip()
            if not text:
                continue
            try:
                value = int(text)
            except ValueError:
                value = 0
            if value < 1:
                raise DataError(variable, f"must be a whole number of at least 1, got {text!r}")
            values[name] = value
        return cls(**values)

    @property
    def max_row_bytes(self) -> int:
        """The longest line of a text file: ``ROW_FIELDS`` fields of ``max_field_bytes``."""
        return ROW_FIELDS * self.max_field_bytes


def human_bytes(count: int) -> str:
    """``65536`` → ``64 KiB``, ``1073741824`` → ``1 GiB``, ``1500000`` → ``1.4 MiB``."""
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if count >= size:
            whole, rest = divmod(count, size)
            return f"{whole} {unit}" if not rest else f"{count / size:.1f} {unit}"
    return f"{count} bytes"


def over_limit(source: str, found: str, limit: str, limits: ReadLimits) -> DataError:
    """The one error for going over ``limit`` (a ``ReadLimits`` field): what was found, the limit,
    and the setting that raises it. ``found`` reads like ``line 1 is longer than 1 MiB``."""
    value = getattr(limits, limit)
    variable, unit = SETTINGS[limit]
    shown = human_bytes(value) if limit.endswith("_bytes") else f"{value:,}"
    return DataError(
        source, f"{found}, over the limit of {shown} {unit}; to read it, set {variable} higher (now {value})"
    )


def check_size(source: str, what: str, size: int, limit: str, limits: ReadLimits) -> None:
    """Refuse ``what`` (``member 'a.src'``) when its ``size`` in bytes is over the byte limit ``limit``."""
    if size > getattr(limits, limit):
        raise over_limit(source, f"{what}: {human_bytes(size)}", limit, limits)


def utf8_over(text: str, limit: int) -> bool:
    """True when ``text`` takes more than ``limit`` bytes in UTF-8 (encoding only when it might)."""
    chars = len(text)
    if chars > limit:
        return True
    return 4 * chars > limit and len(text.encode("utf-8", "surrogatepass")) > limit


def check_field(source: str, where: str, value: object, limits: ReadLimits) -> None:
    """Refuse a text ``value`` longer than ``max_field_bytes``; ``where`` reads ``row 3, column 'src'``."""
    if isinstance(value, str) and utf8_over(value, limits.max_field_bytes):
        size = len(value.encode("utf-8", "surrogatepass"))
        raise over_limit(source, f"{where}: {human_bytes(size)}", "max_field_bytes", limits)


# A JSON string, or an unterminated one running to the end: every match ends, so the scan is linear.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\(?:.|\Z)[^"\\]*)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_too_deep(text: str, max_depth: int, first_value: bool = False) -> bool:
    """True when JSON ``text`` opens more than ``max_depth`` arrays or objects inside each other;
    with ``first_value``, only within the value ``text`` starts with (what follows is not looked at).

    Read from the raw text, before any parser (a recursive one may crash on deep input): strings
    are blanked out, then the brackets are counted. Invalid JSON may count deeper than a parser
    would go, never shallower."""
    if text.count("[") + text.count("{") <= max_depth:
        return False
    if first_value and text.lstrip()[:1] not in ("[", "{"):
        return False  # a string, number or literal: no depth
    depth = 0
    for bracket in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
            if first_value and depth <= 0:
                return False
    return False


def check_depth(source: str, where: str, text: str, limits: ReadLimits, first_value: bool = False) -> None:
    """Refuse JSON ``text`` nested deeper than ``max_depth``; ``where`` reads ``line 3``. With
    ``first_value``, only the value ``text`` starts with is measured."""
    if json_too_deep(text, limits.max_depth, first_value):
        found = f"{where} nests values more than {limits.max_depth} levels deep"
        raise over_limit(source, found, "max_depth", limits)


def check_head(handle: BinaryIO, source: str) -> bytes:
    """Refuse a binary (NUL bytes in its head) or blank text stream; the head is returned and the
    stream left at its start."""
    head = handle.read(HEAD_BYTES)
    handle.seek(0)
    if len(head) < HEAD_BYTES and not head.strip():
        raise DataError(source, "the file is empty")
    if b"\x00" in head:
        raise DataError(source, "binary data (NUL bytes), not a text file")
    return head


def text_lines(handle: BinaryIO, source: str, limits: ReadLimits) -> Iterator[tuple[int, str]]:
    """``(number, line)`` for each line of a UTF-8 byte stream, numbered from 1, line ends kept, a
    leading byte-order mark dropped. No line is read past ``max_row_bytes``: a longer one is
    refused, as are NUL bytes and bytes that are not UTF-8."""
    cap = limits.max_row_bytes
    offset = 0
    number = 0
    while raw := handle.readline(cap + 1):
        number += 1
        if len(raw) > cap and not raw.endswith(b"\n"):
            raise over_limit(
                source,
                f"line {number} is longer than {human_bytes(cap)} ({ROW_FIELDS} fields' worth)",
                "max_field_bytes",
                limits,
            )
        skip = len(UTF8_BOM) if number == 1 and raw.startswith(UTF8_BOM) else 0
        if b"\x00" in raw:
            raise DataError(source, f"binary data (NUL bytes) on line {number}, not a text file")
        try:
            text = raw[skip:].decode("utf-8")
        except UnicodeDecodeError as err:
            place = offset + skip + err.start
            raise DataError(source, f"not UTF-8 text (invalid byte at offset {place})") from None
        offset += len(raw)
        yield number, text


class _RowFeed:
    """Lines for ``csv.reader``, refusing a row (quoted line breaks included) over ``max_row_bytes``."""

    def __init__(self, lines: Iterator[tuple[int, str]], source: str, limits: ReadLimits) -> None:
        self.lines = lines
        self.source = source
        self.limits = limits
        self.row_chars = 0
        self.row_start = 1

    def __iter__(self) -> _RowFeed:
        return self

    def __next__(self) -> str:
        number, line = next(self.lines)
        if not self.row_chars:
            self.row_start = number
        self.row_chars += len(line)
        if self.row_chars > self.limits.max_row_bytes:
            cap = human_bytes(self.limits.max_row_bytes)
            found = f"the row on line {self.row_start} is longer than {cap} ({ROW_FIELDS} fields' worth)"
            raise over_limit(self.source, found, "max_field_bytes", self.limits)
        return line

    def next_row(self) -> None:
        self.row_chars = 0


def csv_rows(
    handle: BinaryIO, source: str, limits: ReadLimits, delimiter: str, kind: str = "csv"
) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` for each non-blank row of a UTF-8 CSV/TSV stream, read one row at a
    time with every row bounded (``text_lines``, ``max_row_bytes``). A malformed row is
    ``cannot parse as {kind}``."""
    check_head(handle, source)
    feed = _RowFeed(text_lines(handle, source, limits), source, limits)
    csv.field_size_limit(sys.maxsize)  # the feed bounds whole rows instead; the stdlib's limit is global
    reader = csv.reader(feed, delimiter=delimiter)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataError(source, f"cannot parse as {kind}: line {reader.line_num}: {err}") from None
        start = feed.row_start
        feed.next_row()
        if row:
            yield start, row
