"""Throwaway PostgreSQL and Redis servers on loopback, from Debian's postgresql and redis-server.

Tests that need them skip when the binaries are missing, except where
``CAPO_LAB_REQUIRE_SERVERS=1`` (set by ``.ci/run``): there a missing server fails.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import wait_for_port
from worker.launch import free_port


def unavailable(what: str) -> None:
    if os.environ.get("CAPO_LAB_REQUIRE_SERVERS") == "1":
        pytest.fail(f"{what} is required here (CAPO_LAB_REQUIRE_SERVERS=1) but not installed")
    pytest.skip(f"{what} is not installed")


@contextmanager
def postgres_server() -> Iterator[str]:
    """A fresh cluster (trust auth, user ``capo``); yields its SQLAlchemy URL."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        unavailable("PostgreSQL (Debian package postgresql)")
    bindir = Path(bins[-1]).parent
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="capo-pg-"))
    if as_postgres:
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    run = lambda *args: subprocess.run([*as_postgres, *map(str, args)], check=True, capture_output=True)  # noqa: E731
    try:
        run(bindir / "initdb", "-D", data / "db", "-U", "capo", "--auth=trust", "-E", "UTF8")
        run(
            bindir / "pg_ctl", "-D", data / "db", "-l", data / "log", "-w", "start",
            "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off",
        )  # fmt: skip
        yield f"postgresql+psycopg://capo@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[str]:
    """A Redis with no persistence; yields its redis:// URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("Redis (Debian package redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=30)
