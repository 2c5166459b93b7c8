"""The bars' pieces: when a bar is drawn, the count bar of evaluate and benchmark, the time texts."""

from __future__ import annotations

import io
import os

from rich.console import Console

from capo_lab.cli.progress import CountBar, clock_text, eta_text, shows_progress
from capo_lab.eta import Estimate


def test_a_bar_is_drawn_only_on_a_terminal_and_not_when_quiet() -> None:
    leader, follower = os.openpty()
    with open(follower, "w") as terminal:
        assert shows_progress(False, terminal) and not shows_progress(True, terminal)
    os.close(leader)
    assert not shows_progress(False, io.StringIO())  # a pipe or a file


def test_the_count_bar_shows_done_of_total_and_nothing_without_a_console() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    with CountBar("sentences", console) as bar:
        bar(2, 8)
        bar(8, 8)
    shown = screen.getvalue()
    assert "sentences" in shown and "8/8" in shown and "ETA" in shown
    with CountBar("sentences", None) as silent:
        silent(1, 2)  # no console: draws nothing and raises nothing
    assert silent.progress is None


def test_times_read_as_a_clock_and_a_rough_eta_is_marked() -> None:
    assert [clock_text(s) for s in (0.4, 42, 725, 3723)] == ["0:00", "0:42", "12:05", "1:02:03"]
    assert eta_text(Estimate({"steps": 60.0, "evaluations": 65.0}, rough=True)) == "ETA ~2:05"
    assert eta_text(Estimate({"steps": 60.0}, rough=False, already=15.0)) == "ETA 0:45"  # 60 − 15 s
    assert eta_text(None) == "ETA ?"
