"""Loopback servers for the benchmark tests: static upstream files, and a chat-completions judge."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
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


class ChatServer:
    """A chat-completions endpoint on loopback: ``reply(messages) -> str`` answers, after answering
    each status in ``failures`` first (429, 500…); ``bodies`` records every request body."""

    def __init__(self) -> None:
        self.reply = lambda messages: "Preferred: TIE"
        self.failures: list[int] = []
        self.bodies: list[dict] = []
        self.url = ""

    def respond(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        self.bodies.append(body)
        if self.failures:
            status = self.failures.pop(0)
            payload = {"error": {"message": f"status {status}", "type": "server_error", "code": status}}
        else:
            status = 200
            content = self.reply(body["messages"])
            payload = {
                "id": f"chatcmpl-{len(self.bodies)}",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    state = ChatServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.rstrip("/").endswith("/chat/completions"):
                state.respond(self)
            else:
                self.send_error(404)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_port}/v1"
    yield state
    server.shutdown()
    server.server_close()
