"""The Runs, Inspect, Studies and Data tabs say what went wrong in a line beside the action, never as a
red gr.Error badge over a component's content; after a failed action the tab shows only the new error
(results that would pass for the new choice's are cleared) and leaves no stale pick to be submitted.
Each handler is the one the built app runs for the component's event, as the browser triggers it."""

from pathlib import Path

import pandas as pd
import pytest

from app.main import build_app
from capo_lab.service import LabService
from capo_lab.settings import Settings
from tests.app.ui_events import SKIP, by_id, component, run
from tests.cli.test_delete_cli import seed_run

ACCURACY, MARGIN = "lw > ll (the paper's)", "Δ = lw − ll (the same for every objective)"


@pytest.fixture
def service(lab_home: Path) -> LabService:
    return LabService(Settings())


@pytest.fixture
def demo(service: LabService):
    return build_app(service)


def is_empty(frame) -> bool:
    value = frame.get("value", frame) if isinstance(frame, dict) else getattr(frame, "value", frame)
    if isinstance(value, dict):  # a Dataframe update's value, as Gradio serialises it
        return not value.get("data")
    return isinstance(value, pd.DataFrame) and value.empty


def prop(update, name: str):
    """A property an output is given, whether as an update dict or as a component."""
    return update.get(name) if isinstance(update, dict) else getattr(update, name)


def test_opening_a_pair_of_an_unknown_run_says_why_under_the_button_and_clears_the_open_pair(demo):
    outputs, values = run(demo, "open-pair", "click", 99, 10, 1, None)
    shown = by_id(outputs, values)
    assert "no run 99" in shown["pair-status"]
    for elem_id in ("pair-numbers", "pair-regimes", "pair-view", "pair-translations", "compare-numbers"):
        assert shown[elem_id] == "", elem_id
    assert shown["pair-history"] is None and shown["regime-plane"] is None


def test_a_pair_table_that_fails_empties_the_table_and_says_why_above_it(demo):
    outputs, values = run(demo, "inspect-step", "change", 99, 4, "", [], None)
    shown = by_id(outputs, values)
    assert "no run 99" in shown["pairs-note"]
    assert is_empty(shown["pairs-table"])


def test_a_study_that_fails_says_why_and_clears_the_previous_pairs_columns(demo):
    outputs, values = run(demo, "study-pair-button", "click", 99, 7, "last")
    shown = by_id(outputs, values)
    assert "99" in shown["study-pair-note"] and shown["study-pair-view"] == ""
    assert prop(shown["study-pair-chart"], "visible") is False


def test_a_study_report_that_fails_says_why_in_the_summary_and_clears_the_tables_and_figures(demo):
    outputs, values = run(demo, "show-study-report", "click", 99, "best", "eval", "accuracies")
    shown = by_id(outputs, values)
    assert "99" in shown["study-summary"] and "⚠️" in shown["study-summary"]
    assert is_empty(shown["study-runs"]) and is_empty(shown["study-comparisons"])
    figures = [v for o, v in zip(outputs, values, strict=True) if str(o.elem_id).startswith("study-fig-")]
    assert figures and all(prop(f, "visible") is False for f in figures)


def test_evaluating_without_a_run_is_a_line_beside_the_button(demo):
    outputs, values = run(demo, "evaluate-translations", "click", [], "eval")
    shown = by_id(outputs, values)
    assert shown["evaluation-message"] == "⚠️ choose a run above first"
    assert shown["evaluation-jobs"] == SKIP and shown["chrf-chart"] == SKIP


def test_a_refused_delete_keeps_the_selection_says_why_and_unticks_the_confirmation(demo, service):
    running = seed_run(service.db, service.settings, "running")
    outputs, values = run(demo, "delete-runs", "click", [running], True)
    assert f"run {running} is running; cancel it first" in by_id(outputs, values)["delete-runs-message"]
    assert values[outputs.index(component(demo, "runs-select"))] == SKIP
    sure = next(v for o, v in zip(outputs, values, strict=True) if "I understand" in str(o.label))
    assert sure is False


def test_picking_a_run_that_is_gone_clears_the_charts_and_the_selection(demo, service):
    kept = seed_run(service.db, service.settings)
    outputs, values = run(demo, "runs-select", "input", [kept, 99], None, True, ACCURACY, MARGIN)
    shown = by_id(outputs, values)
    assert "no run 99" in shown["runs-status"]
    assert shown["loss-chart"] is None and shown["accuracy-summary"] == ""
    assert prop(shown["runs-select"], "value") == []  # nothing stale to be evaluated or deleted
    assert [value for _, value in prop(shown["runs-select"], "choices")] == [kept]


def test_a_failed_import_clears_the_previous_result_and_the_picked_files(demo, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("source,translation,postedit\n" + "a long enough source,mt,pe\n" * 3)
    args = [[str(path)], [], "source", "translation", "pe_text", "en-de", "d", 2, 0, 0, False, False, True]
    outputs, values = run(demo, "import-button", "click", *args)
    shown = by_id(outputs, values)
    assert "rows\\.csv: no column" in shown["import-status"]
    assert values[outputs.index(component(demo, "import-result"))] is None  # the previous import's, gone
    assert shown["upload-files"] is None  # a next click does not import them again
    assert prop(shown["data-files-pick"], "value") == []
    assert shown["datasets-table"] == SKIP and shown["dataset-choice"] == SKIP


def test_cancelling_an_evaluation_job_says_what_happened_beside_the_button(demo, service):
    from capo_lab.translations import queue_evaluation

    run_id = seed_run(service.db, service.settings)
    job = queue_evaluation(service.db, run_id, lambda _id: None, "last", "eval", True, 4)
    shown = by_id(*run(demo, "cancel-evaluation", "click", [run_id], "eval", job))
    assert shown["evaluation-message"] == f"Evaluation {job}: cancelled before it started."
    assert [e.status for e in service.evaluations(run_id) if e.id == job] == ["cancelled"]
    shown = by_id(*run(demo, "cancel-evaluation", "click", [run_id], "eval", job))  # already finished
    assert shown["evaluation-message"].startswith(f"⚠️ evaluation {job} is cancelled; only queued or running")
