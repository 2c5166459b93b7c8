"""``capo-lab data fetch`` and import by name, against a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capo_lab.cli import app
from tests.capo.data.divemt_main import write_main_tsv
from tests.conftest import DIVEMT, MLQE
from worker.launch import free_port

runner = CliRunner()
EN_DE_DEV = MLQE / "dev" / "en-de-dev.tar.gz"


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@dataclass
class Upstream:
    """A loopback server laid out like the upstream URLs; ``mode`` ok, truncate or corrupt."""

    url: str
    requests: list[str] = field(default_factory=list)
    mode: str = "ok"


def _handler(root: Path, upstream: Upstream) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self) -> None:
            upstream.requests.append(self.path)
            if upstream.mode == "ok":
                return super().do_GET()
            data = Path(self.translate_path(self.path)).read_bytes()
            # truncate: announce every byte, send half; corrupt: same length, one byte changed
            body = data[: len(data) // 2] if upstream.mode == "truncate" else b"X" + data[1:]
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def upstream(
    shared_data: Path, lab_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Upstream]:
    """Upstream paths (GitHub raw for MLQE-PE and the DivEMT warm-up, the Hub for main.tsv) on loopback."""
    root = tmp_path / "upstream"
    links = {
        "mlqe/data/post-editing/dev/en-de-dev.tar.gz": EN_DE_DEV,
        "divemt-github/data/warmup.tsv": DIVEMT,
        "hub/main.tsv": write_main_tsv(tmp_path / "main.tsv"),
    }
    for link, target in links.items():
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        (root / link).symlink_to(target)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(root, state := Upstream("")))
    state.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("CAPO_LAB_MLQE_PE_URL", f"{state.url}/mlqe")
    monkeypatch.setenv("CAPO_LAB_DIVEMT_WARMUP_URL", f"{state.url}/divemt-github")
    monkeypatch.setenv("CAPO_LAB_DIVEMT_URL", f"{state.url}/hub")
    monkeypatch.delenv("CAPO_LAB_DATA_DIRS", raising=False)
    yield state
    server.shutdown()
    server.server_close()


def cached_files(lab_home: Path) -> list[Path]:
    return sorted(p for p in (lab_home / "sources").rglob("*") if p.is_file())


def error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_fetch_downloads_records_checksums_and_imports_by_name(upstream: Upstream, lab_home: Path) -> None:
    code, out, err = cli("data", "fetch", "mlqe-pe", "--directions", "en-de", "--splits", "dev")
    assert code == 0, err
    assert f"downloaded {upstream.url}/mlqe/data/post-editing/dev/en-de-dev.tar.gz" in out
    assert cli("data", "fetch", "divemt")[0] == 0  # the warm-up set by default
    for original, cached in [
        (EN_DE_DEV, lab_home / "sources/mlqe-pe/post-editing/dev/en-de-dev.tar.gz"),
        (DIVEMT, lab_home / "sources/divemt/warmup.tsv"),
    ]:
        assert cached.read_bytes() == original.read_bytes()
        manifest = json.loads(cached.with_name(cached.name + ".manifest.json").read_text())
        assert manifest["size"] == original.stat().st_size
        assert manifest["sha256"] == hashlib.sha256(original.read_bytes()).hexdigest()
    asked = len(upstream.requests)
    code, out, _ = cli("data", "fetch", "divemt", "--set", "warmup")
    assert code == 0 and "already fetched" in out and len(upstream.requests) == asked
    code, out, err = cli("data", "import", "mlqe-pe:en-de:dev", "divemt:warmup", "--name", "named")
    assert code == 0, err
    stats = [json.loads(line) for line in cli("data", "stats", "named", "--json")[1].splitlines()]
    assert {"en-de", "en-it", "en-ar"} <= {s["direction"] for s in stats}


def test_divemt_main_is_fetched_from_the_hub_path_and_imported(upstream: Upstream, lab_home: Path) -> None:
    code, out, err = cli("data", "fetch", "divemt", "--set", "main")
    assert code == 0 and f"{upstream.url}/hub/main.tsv" in out, err
    assert upstream.requests == ["/hub/main.tsv"]
    code, out, err = cli(
        "data", "import", "divemt:main", "--name", "main", "--per-direction", "1", "--min-source-chars", "0"
    )
    assert code == 0, err
    assert "en-it" in out and "en-ar" in out


def test_a_mirror_wins_and_nothing_is_requested(
    upstream: Upstream, lab_home: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPO_LAB_DATA_DIRS", str(shared_data))
    code, out, err = cli("data", "fetch", "mlqe-pe", "--directions", "en-de", "--splits", "dev")
    assert code == 0, err
    assert f"using the local mirror {EN_DE_DEV}" in out
    assert cli("data", "fetch", "divemt")[0] == 0
    code, _, err = cli("data", "import", "divemt:warmup", "--name", "mirrored", "--per-direction", "1")
    assert code == 0, err
    assert upstream.requests == [] and cached_files(lab_home) == []


def test_a_mirror_copy_with_other_bytes_is_refused(
    upstream: Upstream, lab_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "divemt").mkdir(parents=True)
    (mirror / "divemt" / "warmup.tsv").write_bytes(DIVEMT.read_bytes()[:-1])
    monkeypatch.setenv("CAPO_LAB_DATA_DIRS", str(mirror))
    code, _, err = cli("data", "fetch", "divemt")
    assert code == 1 and "is not divemt:warmup" in error_line(err)
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("mode", "args", "words"),
    [
        (
            "truncate",
            ["mlqe-pe", "--directions", "en-de", "--splits", "dev"],
            "stopped after 80532 of 161064",
        ),
        (
            "corrupt",
            ["mlqe-pe", "--directions", "en-de", "--splits", "dev"],
            "does not match the pinned sha256",
        ),
        ("truncate", ["divemt", "--set", "main"], "stopped after"),
        ("corrupt", ["divemt"], "does not match the pinned sha256"),
    ],
)
def test_a_truncated_or_corrupt_download_is_refused_and_nothing_is_kept(
    upstream: Upstream, lab_home: Path, mode: str, args: list[str], words: str
) -> None:
    upstream.mode = mode
    code, out, err = cli("data", "fetch", *args)
    line = error_line(err)
    assert code == 1 and words in line and upstream.url in line and "Traceback" not in out + err
    assert cached_files(lab_home) == []


def test_a_failed_download_leaves_the_cached_copy_as_it_was(upstream: Upstream, lab_home: Path) -> None:
    assert cli("data", "fetch", "divemt")[0] == 0
    cached = lab_home / "sources/divemt/warmup.tsv"
    cached.write_bytes(cached.read_bytes() + b"tampered\n")
    code, _, err = cli("data", "import", "divemt:warmup", "--name", "x")
    assert code == 1 and "run `capo-lab data fetch divemt --set warmup` again" in error_line(err)
    upstream.mode = "truncate"
    assert cli("data", "fetch", "divemt")[0] == 1
    assert cached.read_bytes().endswith(b"tampered\n")
    upstream.mode = "ok"
    assert cli("data", "fetch", "divemt")[0] == 0 and cached.read_bytes() == DIVEMT.read_bytes()


def test_offline_fetch_is_one_line_naming_the_url_and_the_mirror_path(
    lab_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = free_port()  # nothing listens there: connection refused
    monkeypatch.setenv("CAPO_LAB_MLQE_PE_URL", f"http://127.0.0.1:{closed}/mlqe")
    code, out, err = cli("data", "fetch", "mlqe-pe", "--directions", "en-zh", "--splits", "test")
    line = error_line(err)
    assert code == 1 and "Traceback" not in out + err
    assert f"cannot reach http://127.0.0.1:{closed}/mlqe/data/post-editing/test/en-zh-test.tar.gz" in line
    assert "<folder>/mlqe-pe/post-editing/test/en-zh-test.tar.gz" in line and "CAPO_LAB_DATA_DIRS" in line
    assert cached_files(lab_home) == []


def test_import_by_name_of_an_unfetched_source_says_how_to_fetch_it(
    lab_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAPO_LAB_DATA_DIRS", raising=False)
    code, _, err = cli("data", "import", "mlqe-pe:en-zh:test", "--name", "x")
    line = error_line(err)
    assert code == 1 and "mlqe-pe:en-zh:test is not fetched" in line
    assert "run `capo-lab data fetch mlqe-pe --directions en-zh --splits test`" in line
    code, _, err = cli("data", "import", "divemt:main", "--name", "x")
    assert code == 1 and "`capo-lab data fetch divemt --set main`" in error_line(err)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["import", "mlqe-pe:en-fr:train", "--name", "x"], "unknown source name"),
        (["fetch", "mlqe-pe", "--directions", "en-fr"], "unknown direction 'en-fr'"),
        (["fetch", "mlqe-pe", "--set", "main"], "--set is for divemt"),
        (["fetch", "divemt", "--splits", "train"], "--directions and --splits are for mlqe-pe"),
    ],
)
def test_bad_names_and_options_are_one_line(lab_home: Path, args: list[str], words: str) -> None:
    code, _, err = cli("data", *args)
    assert code == 1 and words in error_line(err)
