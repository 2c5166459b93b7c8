"""What a checkpoint folder holds, and why a saved one would not load (its folder gone, a file
missing, truncated or changed since it was written), without importing torch: the services choose
the newest checkpoint that loads, and refuse to export one that does not, from the web process too.
``capo.checkpoints`` writes and reads the folders.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from pathlib import Path

TRAINER_STATE = "trainer_state.pt"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
CHECKSUMS = "checksums.json"  # each file's size and sha256, written last
CHECKED_FILES = (ADAPTER_CONFIG, ADAPTER_WEIGHTS, TRAINER_STATE)
CHUNK_BYTES = 1 << 20


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step-{step:06d}"


def sha256(path: Path) -> str:
    """The file's sha256 in hex, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def checkpoint_problem(path: Path) -> str | None:
    """Why the checkpoint in ``path`` would not load, in a few words; None when it is whole.

    Checks the files ``save_checkpoint`` writes: the folder and each file are there, and each has the
    size and sha256 recorded in ``checksums.json``. A checkpoint saved before checksums were written
    is checked by structure instead: the adapter config parses, the safetensors file is as long as
    its header says, and every member of the trainer state's zip archive passes its CRC."""
    path = Path(path)
    if not path.is_dir():
        return f"its folder {path} is missing"
    for name in CHECKED_FILES:
        if not (path / name).is_file():
            return f"{name} is missing"
    try:
        if (path / CHECKSUMS).is_file():
            return _checksum_problem(path)
        return _adapter_config_problem(path) or _safetensors_problem(path) or _trainer_state_problem(path)
    except OSError as err:
        return f"a file cannot be read ({err.strerror or err})"


def _checksum_problem(path: Path) -> str | None:
    try:
        files = json.loads((path / CHECKSUMS).read_text())["files"]
        expected = {name: (int(files[name]["bytes"]), str(files[name]["sha256"])) for name in CHECKED_FILES}
    except (ValueError, KeyError, TypeError):
        return f"{CHECKSUMS} is unreadable"
    for name, (size, _) in expected.items():
        actual = (path / name).stat().st_size
        if actual != size:
            return _size_problem(name, actual, size)
    for name, (_, sha) in expected.items():
        if sha256(path / name) != sha:
            return f"{name} does not match its checksum"
    return None


def _adapter_config_problem(path: Path) -> str | None:
    try:
        config = json.loads((path / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return f"{ADAPTER_CONFIG} is not valid JSON"
    return None if isinstance(config, dict) else f"{ADAPTER_CONFIG} is not a JSON object"


def _safetensors_problem(path: Path) -> str | None:
    """The file is 8 bytes of header length, the JSON header, then the tensors' bytes up to the
    largest end offset the header gives."""
    file = path / ADAPTER_WEIGHTS
    size = file.stat().st_size
    with file.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return f"{ADAPTER_WEIGHTS} is truncated ({size} bytes)"
        (length,) = struct.unpack("<Q", head)
        if length > size - 8:
            return f"{ADAPTER_WEIGHTS} is truncated (its header says more than its {size} bytes)"
        try:
            header = json.loads(handle.read(length))
            end = max(
                (int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0
            )
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return f"{ADAPTER_WEIGHTS} has an unreadable header"
    expected = 8 + length + end
    return _size_problem(ADAPTER_WEIGHTS, size, expected) if size != expected else None


def _size_problem(name: str, actual: int, expected: int) -> str:
    if actual < expected:
        return f"{name} is truncated ({actual} of {expected} bytes)"
    return f"{name} is longer than saved ({actual} bytes, saved with {expected})"


def _trainer_state_problem(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path / TRAINER_STATE) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, ValueError):
        return f"{TRAINER_STATE} is not a whole torch archive (truncated?)"
    return f"{TRAINER_STATE} is damaged ({bad} fails its CRC)" if bad is not None else None
