"""The records that flow through the data pipeline, and its one error type."""

from __future__ import annotations

from dataclasses import dataclass, field

from capo.errors import UserError


class DataError(UserError):
    """Input data that cannot be used; the message names the file and the problem."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


@dataclass(frozen=True)
class MTPETriple:
    """One post-edited machine translation: source, raw MT and its human post-edit.

    ``prompt`` is set only when the input already carried a prompt (generic
    ``prompt, chosen, rejected`` files); the builder then keeps it verbatim.
    """

    direction: str
    source: str
    mt: str
    post_edit: str
    origin: str
    hter: float | None = None
    prompt: str | None = None


SPLITS: tuple[str, ...] = ("train", "eval", "validation")


def is_tie(chosen: str, rejected: str) -> bool:
    """True when the pair states no preference: post-edit and MT are equal once every run of
    whitespace is collapsed to one space (and leading and trailing whitespace dropped).

    The one rule for a tie: the builder's ``keep_ties`` filter, ``PreferencePair.tie``, the
    statistics and the trainer (through the stored ``pairs.tie``) all use it. Migration 0011
    backfills ``pairs.tie`` with a frozen copy of it (storage may not import ``capo``)."""
    return " ".join(chosen.split()) == " ".join(rejected.split())


@dataclass(frozen=True)
class PreferencePair:
    """A preference pair: chosen = post-edit (y_w), rejected = raw MT (y_l).

    ``tie`` is decided from the text by ``is_tie`` when the pair is made, so it cannot
    disagree with ``chosen`` and ``rejected``; it is stored with the pair."""

    direction: str
    split: str
    prompt: str
    chosen: str
    rejected: str
    source_text: str
    origin: str
    hter: float | None = None
    tie: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tie", is_tie(self.chosen, self.rejected))


def decode_text(data: bytes, source: str) -> str:
    """Bytes of a text file as ``str``; refuses empty, binary and non-UTF-8 input."""
    if not data.strip():
        raise DataError(source, "the file is empty")
    if b"\x00" in data[:65536]:
        raise DataError(source, "binary data (NUL bytes), not a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(source, f"not UTF-8 text (invalid byte at offset {err.start})") from None


def parse_hter(value: object, source: str) -> float | None:
    """HTER as a float in [0, ∞), or None when the field is empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        hter = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(source, f"HTER is not a number: {value!r}") from None
    if hter != hter or hter < 0:
        raise DataError(source, f"HTER must be a non-negative number, got {value!r}")
    return hter
