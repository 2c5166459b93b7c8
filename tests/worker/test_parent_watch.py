"""The worker's parent watch: it sets the stop flag once the given parent is gone, and only then."""

import os
import threading

from worker.consumer import watch_parent


def test_a_parent_that_is_gone_sets_the_stop_flag() -> None:
    stop = threading.Event()
    thread = watch_parent(os.getppid() + 1_000_000, stop, poll_seconds=0.05)  # not our parent: it is gone
    assert stop.wait(timeout=5)
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_a_living_parent_leaves_the_flag_alone_and_the_watch_ends_with_the_stop() -> None:
    stop = threading.Event()
    thread = watch_parent(os.getppid(), stop, poll_seconds=0.05)
    assert not stop.wait(timeout=0.5)
    stop.set()  # a signal's stop ends the watch too
    thread.join(timeout=5)
    assert not thread.is_alive()
