"""The Train tab's queue actions take a run id typed into a text box: the box opens empty (a number box
drew empty as 0, an id no run has), and what is typed is checked as an id, with one message each."""

from __future__ import annotations

import html

from app.main import build_app
from tests.app.test_benchmark_service import lab, lab_service  # noqa: F401  (fixtures)
from tests.app.ui_events import component, run


def test_the_box_opens_empty_and_every_bad_id_is_one_line(lab_service):  # noqa: F811
    service, _, run_id = lab_service
    demo = build_app(service)
    assert component(demo, "queue-run-id").value == ""
    for typed, line in [
        ("", "**Run id**: give the id of a run in the queue"),
        ("abc", "run id must be a whole number, got 'abc'"),
        ("0", "run id must be a whole number from 1 to 2^63 \\- 1, got '0'"),  # "-" escaped for Markdown
        ("2.5", "run id must be a whole number from 1 to 2^63 \\- 1, got '2\\.5'"),
        ("999", "no run 999"),
    ]:
        for button in ("queue-cancel", "queue-resume"):
            _, values = run(demo, button, "click", typed)
            shown = html.unescape(values[-1])  # the typed text reaches the page escaped
            assert line in shown and "Traceback" not in shown, (button, typed, values)


def test_a_typed_id_with_spaces_cancels_that_run(lab_service):  # noqa: F811
    service, _, run_id = lab_service
    _, values = run(build_app(service), "queue-cancel", "click", f" {run_id} ")
    assert values[-1].startswith(f"run {run_id}: ")
