"""MLQE-PE post-editing reader (Fomicheva et al., 2022).

Accepts a ``.tar.gz`` as shipped (``en-de-train.tar.gz``) or its extracted
folder, holding line-aligned ``*.src``, ``*.mt``, ``*.pe`` and ``*.hter``.
Archives are read in memory: nothing is extracted, so no member path can
write anywhere. Within ``ReadLimits``: each member's declared size, the archive's member count
and unpacked total are checked before the member is read (and its read is capped), header
extensions (GNU long names, pax headers) are capped before ``tarfile`` reads them, and every
line counts as a row and a field. The text is Moses-tokenised; ``detokenize=True`` (default)
restores natural spacing with sacremoses so that prompts and responses look
like the text a model meets in use.
"""

from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from capo.data.limits import MiB, ReadLimits, check_size, human_bytes, over_limit, utf8_over
from capo.data.triples import DataError, MTPETriple, decode_text, parse_hter
from capo.languages import find_direction, parse_direction

PARTS = ("src", "mt", "pe", "hter")
# Moses leaves spaces around CJK characters and full-width punctuation; such text uses none.
_CJK = "\u3000-\u303f\u3040-\u30ff\u4e00-\u9fff\uff00-\uffef"
_SPACE_BY_CJK = re.compile(f"(?<=[{_CJK}])\\s+|\\s+(?=[{_CJK}])")
_UNSPACED_LANGS = frozenset({"zh", "ja"})
REQUIRED = ("src", "mt", "pe")
MAX_HEADER_BYTES = 1 * MiB  # a GNU long name or pax header; real ones take a few hundred bytes
_HEADER_TYPES = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)


def is_mlqe_path(path: Path) -> bool:
    """True for an MLQE-PE tarball or a folder holding ``*.src`` and ``*.pe`` files."""
    if path.is_dir():
        return any(path.glob("*.src")) and any(path.glob("*.pe"))
    return path.name.endswith((".tar.gz", ".tgz", ".tar"))


def read_mlqe(path: Path, detokenize: bool = True, limits: ReadLimits | None = None) -> Iterator[MTPETriple]:
    """Yield one triple per line of an MLQE-PE split (tarball or folder); ``limits`` default to
    ``ReadLimits.from_env()``."""
    label = path.name
    limits = limits or ReadLimits.from_env()
    parts = _read_archive(path, limits) if path.is_file() else _read_folder(path, limits)
    direction = find_direction(label) or _direction_from_parts(parts, label)
    src_lang, tgt_lang = parse_direction(direction)
    lines = _aligned_lines(parts, label, limits)
    src_detok = _detokenizer(src_lang) if detokenize else _strip
    tgt_detok = _detokenizer(tgt_lang) if detokenize else _strip
    for index, (src, mt, pe, hter) in enumerate(zip(*lines, strict=True)):
        yield MTPETriple(
            direction=direction,
            source=src_detok(src),
            mt=tgt_detok(mt),
            post_edit=tgt_detok(pe),
            hter=parse_hter(hter, f"{label} line {index + 1}"),
            origin=f"mlqe-pe:{label}:{index + 1}",
        )


def _strip(line: str) -> str:
    return line.strip()


def _detokenizer(lang: str) -> Callable[[str], str]:
    """Moses detokenisation, plus removal of spaces next to CJK text for zh/ja."""
    from sacremoses import MosesDetokenizer  # slow to import; only MLQE-PE needs it

    moses = MosesDetokenizer(lang=lang)

    def detokenize(line: str) -> str:
        text = moses.detokenize(line.split())
        return _SPACE_BY_CJK.sub("", text) if lang in _UNSPACED_LANGS else text

    return detokenize


class _RefusedHeader(Exception):
    """Raised from inside ``tarfile`` by ``_BoundedTarInfo``; becomes a ``DataError`` naming the archive."""


class _BoundedTarInfo(tarfile.TarInfo):
    """Refuses a header extension over ``MAX_HEADER_BYTES`` and GNU sparse members before
    ``tarfile`` reads them: it would read the first whole into memory, and the second's chain of
    extension blocks without end."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise _RefusedHeader(f"member {self.name!r} is a GNU sparse file, which is not read")
        if self.type in _HEADER_TYPES and self.size > MAX_HEADER_BYTES:
            size, most = human_bytes(self.size), human_bytes(MAX_HEADER_BYTES)
            raise _RefusedHeader(f"a long-name or pax header of {size}, over {most}; real ones are tiny")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


def _read_archive(path: Path, limits: ReadLimits) -> dict[str, tuple[str, str]]:
    """Map part (``src``…) to (member name, text), reading members in memory. Every member's
    declared size is checked before ``tarfile`` reads or skips its data."""
    parts: dict[str, tuple[str, str]] = {}
    members = unpacked = 0
    try:
        with tarfile.open(path, "r:*", tarinfo=_BoundedTarInfo) as archive:
            for member in archive:
                members += 1
                if members > limits.max_members:
                    found = f"more than {limits.max_members:,} members"
                    raise over_limit(path.name, found, "max_members", limits)
                _refuse_escaping_member(member.name, path.name)
                check_size(path.name, f"member {member.name!r}", member.size, "max_member_bytes", limits)
                unpacked += member.size
                check_size(path.name, "the unpacked archive", unpacked, "max_total_bytes", limits)
                part = _part_of(member.name)
                if part is None or not member.isfile():
                    continue
                handle = archive.extractfile(member)
                data = handle.read(limits.max_member_bytes + 1) if handle is not None else b""
                label = f"{path.name}:{member.name}"
                check_size(path.name, f"member {member.name!r}", len(data), "max_member_bytes", limits)
                parts[part] = (label, decode_text(data, label))
    except _RefusedHeader as err:
        raise DataError(path.name, f"corrupt archive, refused: {err}") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError, RecursionError) as err:
        raise DataError(path.name, f"truncated or corrupt archive ({err})") from None
    return parts


def _refuse_escaping_member(name: str, archive: str) -> None:
    member = PurePosixPath(name)
    if member.is_absolute() or ".." in member.parts:
        raise DataError(archive, f"archive member {name!r} points outside the archive; refused")


def _read_folder(path: Path, limits: ReadLimits) -> dict[str, tuple[str, str]]:
    parts: dict[str, tuple[str, str]] = {}
    unpacked = 0
    for file in sorted(path.iterdir()):
        part = _part_of(file.name)
        if part is not None and file.is_file():
            label = f"{path.name}/{file.name}"
            size = file.stat().st_size
            check_size(path.name, f"file {file.name!r}", size, "max_member_bytes", limits)
            unpacked += size
            check_size(path.name, "the folder's MLQE-PE files together", unpacked, "max_total_bytes", limits)
            with file.open("rb") as handle:
                data = handle.read(limits.max_member_bytes + 1)
            check_size(path.name, f"file {file.name!r}", len(data), "max_member_bytes", limits)
            parts[part] = (label, decode_text(data, label))
    return parts


def _part_of(name: str) -> str | None:
    suffix = PurePosixPath(name).suffix.lstrip(".")
    return suffix if suffix in PARTS else None


def _direction_from_parts(parts: dict[str, tuple[str, str]], label: str) -> str:
    for member, _ in parts.values():
        direction = find_direction(member)
        if direction:
            return direction
    raise DataError(label, "cannot tell the direction; name it like 'en-de-train'")


def _aligned_lines(parts: dict[str, tuple[str, str]], label: str, limits: ReadLimits) -> list[list[str]]:
    missing = [p for p in REQUIRED if p not in parts]
    if missing:
        wanted = ", ".join(f"*.{p}" for p in missing)
        raise DataError(label, f"missing {wanted} (MLQE-PE needs *.src, *.mt and *.pe)")
    columns = {part: text.splitlines() for part, (_, text) in parts.items()}
    if "hter" not in columns:
        columns["hter"] = [""] * len(columns["src"])
    counts = {parts[p][0] if p in parts else p: len(columns[p]) for p in PARTS}
    if len(set(counts.values())) != 1:
        detail = ", ".join(f"{name}: {n}" for name, n in counts.items())
        raise DataError(label, f"files have different line counts ({detail})")
    if len(columns["src"]) > limits.max_rows:
        raise over_limit(label, f"{len(columns['src']):,} lines", "max_rows", limits)
    for part in PARTS:
        for number, line in enumerate(columns[part], start=1):
            if utf8_over(line, limits.max_field_bytes):
                found = f"line {number} of {parts[part][0]}: {human_bytes(len(line.encode('utf-8')))}"
                raise over_limit(label, found, "max_field_bytes", limits)
    return [columns[p] for p in PARTS]
