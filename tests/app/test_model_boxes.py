"""The Data tab's tokenizer and render boxes, as the browser triggers them: a path outside the model
folders or a hub id nobody allow-listed is one line beside the button, the same whether the file
exists or not, with no tokenizer loaded and no network tried."""

import socket
import time
from pathlib import Path

import pytest

from app.main import build_app
from capo_lab.service import LabService
from capo_lab.settings import Settings
from tests.app.ui_events import by_id, run

REFUSED = "is not one this lab offers"


@pytest.fixture
def demo(lab_home: Path, monkeypatch):
    def no_network(*_args, **_kwargs):
        raise AssertionError("the web process reached for the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    return build_app(LabService(Settings()))


@pytest.mark.parametrize("model", ["../../../../etc/passwd", "../../../../etc/no-such-file", "gpt2"])
def test_render_refuses_a_model_the_lab_does_not_offer(demo, model: str) -> None:
    started = time.monotonic()
    shown = by_id(*run(demo, "render-button", "click", "any-dataset", 1, model, "none"))
    status = shown["render-status"]
    assert status.startswith("⚠️ model") and REFUSED in status and "JSON" not in status
    assert time.monotonic() - started < 2.0  # gpt2 once blocked 46 s on the hub


def test_show_refuses_a_tokenizer_the_lab_does_not_offer(demo) -> None:
    shown = by_id(*run(demo, "show-button", "click", "any-dataset", "train", "", "gpt2"))
    assert REFUSED in shown["show-status"]
