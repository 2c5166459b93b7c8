"""Shared fixtures: the real MTPE data beside the repo and an isolated lab home."""

from __future__ import annotations

import io
import os
import socket
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

# Modules that read settings at import (the Huey instance) must never touch the user's lab.
os.environ["CAPO_LAB_HOME"] = tempfile.mkdtemp(prefix="capo-lab-tests-")
os.environ.pop("CAPO_LAB_QUEUE_URL", None)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CAPO_LAB_SHARED_DATA", REPO.parent / "shared" / "data"))
MLQE = SHARED_DATA / "mlqe-pe" / "post-editing"
MLQE_EN_DE_TRAIN = MLQE / "train" / "en-de-train.tar.gz"
MLQE_EN_ZH_TRAIN = MLQE / "train" / "en-zh-train.tar.gz"
DIVEMT = SHARED_DATA / "divemt" / "warmup.tsv"


def wait_for_port(port: int, seconds: float = 30) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``; TimeoutError after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DIVEMT.exists():
        pytest.fail(f"real MTPE data not found at {SHARED_DATA}; set CAPO_LAB_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture
def lab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh CAPO_LAB_HOME with its SQLite database, isolated from the user's."""
    home = tmp_path / "lab-home"
    monkeypatch.setenv("CAPO_LAB_HOME", str(home))
    monkeypatch.delenv("CAPO_LAB_DB_URL", raising=False)
    monkeypatch.delenv("CAPO_LAB_QUEUE_URL", raising=False)
    return home


def make_tar(path: Path, members: dict[str, bytes]) -> Path:
    """A .tar.gz with the given member names and bytes (names are written as given, even unsafe ones)."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path
