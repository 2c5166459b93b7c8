"""MLQE-PE post-editing reader (Fomicheva et al., 2022).

Accepts a ``.tar.gz`` as shipped (``en-de-train.tar.gz``) or its extracted
folder, holding line-aligned ``*.src``, ``*.mt``, ``*.pe`` and ``*.hter``.
Archives are read in memory: nothing is extracted, so no member path can
write anywhere. The text is Moses-tokenised; ``detokenize=True`` (default)
restores natural spacing with sacremoses so that prompts and responses look
like the text a model meets in use.
"""

from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from capo.data.triples import DataError, MTPETriple, decode_text, parse_hter
from capo.languages import find_direction, parse_direction

PARTS = ("src", "mt", "pe", "hter")
# Moses leaves spaces around CJK characters and full-width punctuation; such text uses none.
_CJK = "\u3000-\u303f\u3040-\u30ff\u4e00-\u9fff\uff00-\uffef"
_SPACE_BY_CJK = re.compile(f"(?<=[{_CJK}])\\s+|\\s+(?=[{_CJK}])")
_UNSPACED_LANGS = frozenset({"zh", "ja"})
REQUIRED = ("src", "mt", "pe")


def is_mlqe_path(path: Path) -> bool:
    """True for an MLQE-PE tarball or a folder holding ``*.src`` and ``*.pe`` files."""
    if path.is_dir():
        return any(path.glob("*.src")) and any(path.glob("*.pe"))
    return path.name.endswith((".tar.gz", ".tgz", ".tar"))


def read_mlqe(path: Path, detokenize: bool = True) -> Iterator[MTPETriple]:
    """Yield one triple per line of an MLQE-PE split (tarball or folder)."""
    label = path.name
    parts = _read_archive(path) if path.is_file() else _read_folder(path)
    direction = find_direction(label) or _direction_from_parts(parts, label)
    src_lang, tgt_lang = parse_direction(direction)
    lines = _aligned_lines(parts, label)
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


def _read_archive(path: Path) -> dict[str, tuple[str, str]]:
    """Map part (``src``…) to (member name, text), reading members in memory."""
    parts: dict[str, tuple[str, str]] = {}
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                _refuse_escaping_member(member.name, path.name)
                part = _part_of(member.name)
                if part is None or not member.isfile():
                    continue
                handle = archive.extractfile(member)
                data = handle.read() if handle is not None else b""
                label = f"{path.name}:{member.name}"
                parts[part] = (label, decode_text(data, label))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise DataError(path.name, f"truncated or corrupt archive ({err})") from None
    return parts


def _refuse_escaping_member(name: str, archive: str) -> None:
    member = PurePosixPath(name)
    if member.is_absolute() or ".." in member.parts:
        raise DataError(archive, f"archive member {name!r} points outside the archive; refused")


def _read_folder(path: Path) -> dict[str, tuple[str, str]]:
    parts: dict[str, tuple[str, str]] = {}
    for file in sorted(path.iterdir()):
        part = _part_of(file.name)
        if part is not None and file.is_file():
            label = f"{path.name}/{file.name}"
            parts[part] = (label, decode_text(file.read_bytes(), label))
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


def _aligned_lines(parts: dict[str, tuple[str, str]], label: str) -> list[list[str]]:
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
    return [columns[p] for p in PARTS]
