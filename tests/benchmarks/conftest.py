"""Loopback servers for the benchmark tests: static upstream files, and a chat-completions judge."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


def _static_handler(root: Path, requests: list[str]) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args: object) -> None:
            return None

    return Handler


@pytest.fixture
def static_server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """(base URL, the folder it serves, the paths asked for)."""
    root = tmp_path / "upstream"
    root.mkdir()
    requests: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _static_handler(root, requests))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", root, requests
    server.shutdown()
    server.server_close()
