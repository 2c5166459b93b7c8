"""Named sources: fetch MLQE-PE and DivEMT files into a checked cache, or use a local mirror.

Cache layout: ``$CAPO_LAB_HOME/sources/<mirror path>``, e.g.
``sources/mlqe-pe/post-editing/train/en-de-train.tar.gz``, with ``<file>.manifest.json`` beside it
recording the URL, size and sha256. A download streams into a hidden ``.part`` file in the same
folder and is renamed over the target only after its size (Content-Length, and the pinned size when
there is one) and its sha256 (when pinned) check out; otherwise the part file is deleted and the
cache is as before. A file at the mirror path under a ``CAPO_LAB_DATA_DIRS`` folder wins over the
cache and the network. Every failure is a ``LabError`` of one line.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from capo.checkpoint_files import sha256
from capo.data.sources import CATALOGUE, DEFAULT_BASE_URLS, SourceFile, is_source_name, source_file
from capo_lab.errors import LabError
from capo_lab.settings import Settings

CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 60
USER_AGENT = "capo-lab (+https://github.com/sheffieldnlp/mlqe-pe; data fetch)"


@dataclass(frozen=True)
class Fetched:
    """Where a fetched file is and how it got there: ``mirror``, ``cached`` or ``downloaded``."""

    name: str
    path: Path
    how: str
    size: int
    url: str | None = None

    def line(self) -> str:
        if self.how == "mirror":
            return f"{self.name}: using the local mirror {self.path} (no download)"
        if self.how == "cached":
            return f"{self.name}: already fetched, {self.path} ({self.size} bytes, sha256 checked)"
        return f"{self.name}: downloaded {self.url} to {self.path} ({self.size} bytes, sha256 checked)"


def base_url(settings: Settings, file: SourceFile) -> str:
    """The configured base URL serving ``file`` (``CAPO_LAB_<BASE>_URL``), else its upstream."""
    return getattr(settings, f"{file.base}_url") or DEFAULT_BASE_URLS[file.base]


def cache_path(settings: Settings, file: SourceFile) -> Path:
    return settings.sources_dir / file.mirror_path


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def fetch(
    settings: Settings, files: Sequence[SourceFile], notify: Callable[[str], None] | None = None
) -> list[Fetched]:
    """Fetch each file in turn (mirror, else verified cache, else download); stops at the first error."""
    return [fetch_one(settings, f, notify) for f in files]


def fetch_names(settings: Settings, names: Sequence[str]) -> list[Fetched]:
    """Fetch files by name (``mlqe-pe:en-de:train``…), as the Data tab asks for them."""
    return fetch(settings, [source_file(n) for n in names])


def fetch_one(settings: Settings, file: SourceFile, notify: Callable[[str], None] | None = None) -> Fetched:
    mirror = find_mirror(settings, file)
    if mirror is not None:
        return Fetched(file.name, mirror, "mirror", mirror.stat().st_size)
    target = cache_path(settings, file)
    if cache_problem(file, target) is None:
        return Fetched(file.name, target, "cached", target.stat().st_size)
    url = file.url(base_url(settings, file))
    if notify is not None:
        notify(f"{file.name}: downloading {url}")
    size, digest = _download(url, file, target)
    _write_manifest(target, file, url, size, digest)
    return Fetched(file.name, target, "downloaded", size, url)


def locate(settings: Settings, name: str) -> Path:
    """The local file of a source name, checked; a ``LabError`` naming the fetch command otherwise."""
    file = source_file(name)
    mirror = find_mirror(settings, file)
    if mirror is not None:
        return mirror
    target = cache_path(settings, file)
    problem = cache_problem(file, target)
    if problem is None:
        return target
    if not target.exists():
        raise LabError(
            f"{name} is not fetched; run `{file.fetch_command}` "
            f"(or put the file at <folder>/{file.mirror_path} in a CAPO_LAB_DATA_DIRS folder)"
        )
    raise LabError(f"{name}: the cached {target} {problem}; run `{file.fetch_command}` again")


def resolve_inputs(settings: Settings, items: Sequence[Path | str]) -> list[tuple[Path, str]]:
    """(local path, label) per import argument: an existing path is itself, a source name is located."""
    resolved = []
    for item in items:
        text = str(item)
        if not Path(text).exists() and is_source_name(text):
            resolved.append((locate(settings, text), text))
        else:
            resolved.append((Path(text), Path(text).name))
    return resolved


def find_mirror(settings: Settings, file: SourceFile) -> Path | None:
    """The first mirror folder's copy of ``file``; refused when it differs from the pinned bytes."""
    path = _mirror_copy(settings, file)
    if path is not None and _pin_problem(file, path.stat().st_size, lambda: sha256(path)):
        raise LabError(
            f"{path} is in a CAPO_LAB_DATA_DIRS folder but is not {file.name} "
            "(its size or sha256 differs from the pinned one); replace or remove it"
        )
    return path


def _mirror_copy(settings: Settings, file: SourceFile) -> Path | None:
    for folder in settings.data_folders:
        path = folder / file.mirror_path
        if path.is_file():
            return path
    return None


def cache_problem(file: SourceFile, path: Path) -> str | None:
    """What is wrong with a cached file (missing, no manifest, other size or sha256), or None."""
    if not path.is_file():
        return "is missing"
    record = read_manifest(path)
    if record is None:
        return "has no readable manifest"
    size = path.stat().st_size
    if size != record.get("size"):
        return f"has {size} bytes where its manifest records {record.get('size')}"
    if file.sha256 is not None and record.get("sha256") != file.sha256:
        return "has a manifest that does not match the pinned sha256"
    if sha256(path) != record.get("sha256"):
        return "does not match the sha256 in its manifest"
    return None


def read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(manifest_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _pin_problem(file: SourceFile, size: int, digest: Callable[[], str]) -> str | None:
    """Why bytes of ``size`` (and sha256 ``digest()``) are not the pinned file, or None."""
    if file.size is not None and size != file.size:
        return f"has {size} bytes, not the pinned {file.size}"
    if file.sha256 is not None and digest() != file.sha256:
        return "does not match the pinned sha256"
    return None


def _download(url: str, file: SourceFile, target: Path) -> tuple[int, str]:
    """Stream ``url`` next to ``target``, check it, then rename it over ``target``; (size, sha256)."""
    part = _part_file(target)
    try:
        size, digest, length = _stream(url, file, part)
        if length is not None and size != length:
            raise LabError(f"download of {url} stopped after {size} of {length} bytes; nothing was kept")
        problem = _pin_problem(file, size, lambda: digest)
        if problem:
            raise LabError(f"download of {url} {problem}; refused, nothing was kept")
        try:
            os.replace(part, target)
        except OSError as err:
            raise LabError(f"cannot store {target}: {err}") from None
    finally:
        part.unlink(missing_ok=True)
    return size, digest


def _part_file(target: Path) -> Path:
    """A new empty hidden file beside ``target``, unique to this download."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as err:
        raise LabError(f"cannot write into {target.parent}: {err}") from None
    os.close(handle)
    return Path(name)


def _stream(url: str, file: SourceFile, part: Path) -> tuple[int, str, int | None]:
    """(bytes received, their sha256, the announced Content-Length) of ``url`` written to ``part``."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            length = _content_length(response)
            if file.size is not None and length is not None and length != file.size:
                raise LabError(f"{url} announces {length} bytes, not the pinned {file.size}; refused")
            return (*_copy(response, part, length or file.size, url), length)
    except urllib.error.HTTPError as err:
        raise LabError(f"cannot download {url}: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise LabError(
            f"cannot reach {url} ({err.reason}); to work offline, put the file at "
            f"<folder>/{file.mirror_path} in a folder listed in CAPO_LAB_DATA_DIRS"
        ) from None
    except (http.client.HTTPException, ConnectionError, TimeoutError) as err:
        raise LabError(f"download of {url} broke off ({type(err).__name__}); nothing was kept") from None
    except OSError as err:
        raise LabError(f"cannot download {url} into {part.parent}: {err}") from None


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.strip().isdigit() else None


def _copy(response: http.client.HTTPResponse, part: Path, limit: int | None, url: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with part.open("wb") as out:
        while chunk := response.read(CHUNK_BYTES):
            size += len(chunk)
            if limit is not None and size > limit:
                raise LabError(f"download of {url} is longer than the expected {limit} bytes; refused")
            out.write(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


def _write_manifest(target: Path, file: SourceFile, url: str, size: int, digest: str) -> None:
    record = {
        "name": file.name,
        "url": url,
        "size": size,
        "sha256": digest,
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    manifest = manifest_path(target)
    part = manifest.with_name(f".{manifest.name}.{uuid.uuid4().hex}.part")
    try:
        part.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        os.replace(part, manifest)
    except OSError as err:
        part.unlink(missing_ok=True)
        raise LabError(f"cannot write the manifest {manifest}: {err}") from None


def source_names() -> list[str]:
    return list(CATALOGUE)


@dataclass(frozen=True)
class SourceStatus:
    """A named file and where it stands here: ``fetched``, ``mirrored``, ``not fetched`` or ``needs a new
    fetch``; ``path`` empty when absent."""

    name: str
    what: str
    status: str
    size_bytes: int | None
    path: str


def source_rows(settings: Settings) -> list[SourceStatus]:
    """One row per named file for the Data tab: name, what, status, size (MB) and local path.

    Cheap: compares sizes only; the sha256 is checked when a file is fetched or imported.
    """
    return [_row(settings, f) for f in CATALOGUE.values()]


def _row(settings: Settings, file: SourceFile) -> SourceStatus:
    path = _mirror_copy(settings, file)
    if path is not None:
        status = "mirrored"
    else:
        path = cache_path(settings, file)
        record = read_manifest(path) if path.is_file() else None
        fetched = record is not None and record.get("size") == path.stat().st_size
        status = "fetched" if fetched else "needs a new fetch" if path.exists() else "not fetched"
    size = path.stat().st_size if path.is_file() else file.size
    return SourceStatus(file.name, file.description, status, size, str(path) if path.is_file() else "")
