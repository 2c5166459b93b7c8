"""The Studies tab: study choices and the report's items from the service's two study methods, markup in
names shown literally, and a user error on the page instead of a crash."""

import functools
from datetime import datetime

import gradio as gr
import pytest

from app import tab_studies
from app.tab_studies import (
    NO_STUDY,
    RUN_COLUMNS,
    delete_view,
    report_view,
    report_viewer,
    study_choices,
    summary_markdown,
)
from capo_lab.errors import LabError
from capo_lab.report_figures import ITEM_KEYS
from capo_lab.runs import run_dir
from capo_lab.service import LabService
from capo_lab.settings import Settings
from storage import writes
from storage.records import StudyRecord
from tests.capo_lab.report_sample import run_name, sample_report
from tests.cli.test_delete_cli import rows_of, seed_run


class FakeService:
    def __init__(self) -> None:
        self.asked: list[tuple] = []

    def studies(self) -> list[StudyRecord]:
        return [StudyRecord(1, "<b>cmp</b>", {"train.seed": [0, 1]}, datetime(2025, 1, 1), (1, 2, 3, 4))]

    def study_report(self, study_id: int, step: str = "best", split: str = "eval", endpoint="accuracies"):
        self.asked.append((study_id, step, split, endpoint))
        if step == "7":
            raise LabError("run 1 has no eval scores at step 7; it has 0, 4")
        return sample_report()


def test_choices_name_each_study_with_its_run_count() -> None:
    assert study_choices(FakeService()) == [("#1 <b>cmp</b> · 4 runs", 1)]


def test_view_has_the_summary_the_runs_and_every_item_in_order() -> None:
    service = FakeService()
    out = report_view(service, 1, " last ", "validation", "accuracies_per_token")
    assert service.asked == [(1, "last", "validation", "accuracies_per_token")]
    assert len(out) == 3 + 2 * len(ITEM_KEYS)
    summary, runs, comparisons = out[:3]
    assert "**Method.** endpoint: rewards/accuracies" in summary and "unit: the pair" in summary
    assert list(comparisons["direction"])[0] == "all"  # the primary endpoint first
    assert list(comparisons["p (Holm)"])[0] == 0.508
    assert all(v.startswith("not significant: could not detect") for v in comparisons["verdict"])
    assert "&lt;b&gt;cmp&lt;/b&gt;" in summary and "<b>" not in summary
    assert list(runs.columns) == RUN_COLUMNS and list(runs["status"]) == ["succeeded"] * 3 + ["running"]
    assert runs["run"][0] == run_name("capo", 0)  # the Dataframe shows its cells as text
    items = dict(zip(ITEM_KEYS, zip(out[3::2], out[4::2], strict=True), strict=True))
    heading, plot = items["accuracy"]
    assert heading.startswith("#### Reward accuracy per direction") and plot["visible"] is True
    assert plot["value"].data[0].name == "capo"
    heading, plot = items["sweep"]
    assert "No figure: the study does not vary objective\\.alpha" in heading
    assert plot["visible"] is False and plot["value"] is None


def test_missing_runs_are_named() -> None:
    text = summary_markdown(sample_report())
    assert "Not finished (left out of the figures):** &lt;b&gt;cmp&lt;/b&gt;\\[dpo, seed=1\\]" in text


def test_no_study_picked_shows_the_hint_and_hides_every_plot() -> None:
    service = FakeService()
    out = report_view(service, None, "best", "eval")
    assert out[0] == NO_STUDY and service.asked == []
    assert all(p["visible"] is False for p in out[4::2])


def test_a_bad_step_is_a_line_in_the_summary_and_clears_the_report() -> None:
    *shown, summary = report_viewer(FakeService())(1, "7", "eval", "accuracies")
    assert summary.startswith("⚠️") and "no eval scores at step 7" in summary
    runs, comparisons, *items = shown
    assert runs.empty and comparisons.empty and all(p["visible"] is False for p in items[1::2])


def test_the_tab_builds_with_its_plots() -> None:
    with gr.Blocks() as demo:
        tab_studies.build(FakeService())
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"study-select", "study-runs", "delete-study", *(f"study-fig-{key}" for key in ITEM_KEYS)} <= ids


def test_deleting_a_study_needs_the_confirmation_and_takes_its_runs_and_folders(lab_home) -> None:
    """Through ``LabService.delete_study``: refused while a run is queued, then the study, its runs, their
    rows and folders go; another study stays."""
    service = LabService(Settings())
    with service.db.write() as session:
        study, other = writes.add_study(session, "<i>s</i>", {}), writes.add_study(session, "t", {})
    runs = [seed_run(service.db, service.settings, status, study) for status in ("succeeded", "queued")]
    delete = functools.partial(delete_view, service)
    with pytest.raises(LabError, match="pick a study"):
        delete(None, True)
    with pytest.raises(LabError, match="tick “I understand”"):
        delete(study, False)
    with pytest.raises(LabError, match=f"run {runs[1]} is queued; cancel it first"):
        delete(study, True)
    with service.db.write() as session:
        writes.update_run(session, runs[1], status="cancelled")
    message, choices, sure = delete(study, True)
    assert message.startswith("Deleted study &lt;i&gt;s&lt;/i&gt; and 2 run(s)") and sure is False
    assert choices["choices"] == [(f"#{other} t · 0 runs", other)] and choices["value"] is None
    for run_id in runs:
        assert set(rows_of(service.db, run_id).values()) == {0}
        assert not run_dir(service.settings, run_id).exists()
