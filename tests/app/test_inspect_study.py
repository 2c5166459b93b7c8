"""The Inspect tab's "Across a study" section on a fake service: one column per run with Δ beside the base
model's, lw, ll, loss and both heat maps, a bar of Δ per run with the base Δ as the reference line, the runs
without the pair named with why, one line when no run has it, and every text from the dataset shown
literally."""

from dataclasses import replace
from datetime import datetime

from markdown_it import MarkdownIt

from app.charts_pair import study_delta_chart
from app.inspect_pairs import NO_TOKENS, study_column_html, study_pair_html, study_pair_note
from app.tab_inspect import STUDY_HINT, study_dropdown, study_pair_view
from capo_lab import studies
from storage.records import StudyRecord

MARKUP = '<b>bold</b> <img src=x onerror="alert(1)"> <script>x()</script>'


def scored(run_id: int, name: str, delta: float, base: float | None = 0.25) -> studies.StudyPairRun:
    return studies.StudyPairRun(
        run_id, name, "capo" if run_id % 2 else "dpo", 0, 12, -10.0, -10.0 - delta, delta, 0.6931, base,
        ("Das", " <b>ist</b>"), (-0.5, -12.0), ("Es", "*ist*", "_"), (-1.0, -2.0, -3.0),
    )  # fmt: skip


def missing(run_id: int, name: str, reason: str) -> studies.MissingRun:
    return studies.MissingRun(run_id, name, reason)


def study_pair(runs, gone) -> studies.StudyPair:
    return studies.StudyPair(
        1, "<b>cmp</b>", 7, "eval", "en-de", f"Source {MARKUP}", f"PE {MARKUP}", f"MT {MARKUP}", runs, gone
    )


class FakeService:
    def __init__(self, found: studies.StudyPair) -> None:
        self.found, self.asked = found, []

    def studies(self) -> list[StudyRecord]:
        return [StudyRecord(i, f"s{i}", {}, datetime(2025, 1, 1), (1, 2)) for i in (1, 2)]

    def study_pair(self, study_id: int, pair_id: int, step: str = "last", split: str = "eval"):
        self.asked.append((study_id, pair_id, step))
        return self.found


TWO_OF_THREE = study_pair(
    (scored(1, "cmp[capo, seed=0]", 1.5), scored(2, f"cmp[{MARKUP}]", -0.5)),
    (missing(3, "cmp[dpo, seed=1]", "not finished (running)"),),
)


def test_one_column_per_run_in_order_with_its_numbers_and_both_heat_maps() -> None:
    service = FakeService(TWO_OF_THREE)
    note, view, chart = study_pair_view(service, 1, 7.0, " 12 ")
    assert service.asked == [(1, 7, "12")]
    assert view.count('class="study-run"') == 2 and view.index("#1 cmp") < view.index("#2 cmp")
    assert "<b>Δ = 1.500</b> (base Δ 0.250)" in view and "<b>Δ = -0.500</b>" in view
    assert "lw = -10.000 · ll = -11.500 · loss = 0.6931" in view and "capo · seed 0 · step 12" in view
    assert view.count('class="tok"') == 2 * 5 and 'title="-12.000"' in view
    assert chart.visible is True
    assert note == (
        "Pair 7 · en\\-de · study \\#1 &lt;b&gt;cmp&lt;/b&gt;, eval split, step 12: 2 of 3 runs; "
        "without it: \\#3 cmp\\[dpo, seed=1\\]: not finished \\(running\\)\\."
    )


def test_every_text_from_the_dataset_and_the_run_names_is_escaped() -> None:
    view = study_pair_html(TWO_OF_THREE)
    assert "<script>" not in view and "<img" not in view and "<b>bold</b>" not in view
    assert "Source &lt;b&gt;bold&lt;/b&gt;" in view and "PE &lt;b&gt;" in view and "MT &lt;b&gt;" in view
    assert "#2 cmp[&lt;b&gt;bold&lt;/b&gt;" in view and "&lt;b&gt;ist&lt;/b&gt;" in view  # a token, too
    rendered = MarkdownIt("commonmark").enable("table").render(study_pair_note(TWO_OF_THREE, "last"))
    assert rendered.count("<p>") == 1 and "<b>" not in rendered and "<em>" not in rendered
    chart = study_delta_chart(TWO_OF_THREE.runs)
    assert list(chart.data[0].x)[1].startswith("#2 cmp[&lt;b&gt;bold&lt;/b&gt;")


def test_a_study_without_the_pair_says_so_in_one_line_and_hides_the_chart() -> None:
    none = study_pair((), (missing(1, "a", "no eval score for pair 7 at step 12"), missing(2, "b", "failed")))
    note, view, chart = study_pair_view(FakeService(none), 1, 7, "")
    assert note.startswith("No run of study \\#1 &lt;b&gt;cmp&lt;/b&gt;, eval split, step last has scores")
    assert "\n" not in note and "\\#1 a: no eval score for pair 7 at step 12; \\#2 b: failed" in note
    assert view == "" and chart.visible is False


def test_nothing_is_asked_before_a_study_and_a_pair_are_picked() -> None:
    service = FakeService(TWO_OF_THREE)
    for study_id, pair_id in ((None, 7), (1, None), (1, 0)):  # the pair id box starts at 0
        note, view, chart = study_pair_view(service, study_id, pair_id, "last")
        assert (note, view, chart.visible) == (STUDY_HINT, "", False)
    assert service.asked == []


def test_the_bars_are_each_runs_delta_with_the_shared_base_delta_as_one_dashed_line() -> None:
    fig = study_delta_chart(TWO_OF_THREE.runs)
    (bars,) = fig.data
    assert list(bars.y) == [1.5, -0.5] and list(bars.x)[0] == "#1 cmp[capo, seed=0]"
    assert bars.marker.color[0] != bars.marker.color[1]
    base, zero = fig.layout.shapes
    assert (base.y0, base.line.dash) == (0.25, "dash") and zero.y0 == 0
    assert fig.layout.annotations[0].text == "base Δ = 0.250"


def test_different_base_deltas_get_a_dash_over_each_bar_and_none_without_reference_scores() -> None:
    runs = (scored(1, "a", 1.0, base=0.25), scored(2, "b", 2.0, base=None), scored(3, "c", 3.0, base=-1.0))
    bars, dashes = study_delta_chart(runs).data
    assert dashes.name == "base Δ" and list(dashes.y) == [0.25, None, -1.0]
    no_base = study_delta_chart([scored(1, "a", 1.0, base=None)])
    assert len(no_base.data) == 1 and len(no_base.layout.shapes) == 1  # only the zero line


def test_a_run_without_stored_token_log_probs_says_so_instead_of_a_heat_map() -> None:
    bare = replace(TWO_OF_THREE.runs[0], chosen_tokens=(), chosen_logps=(), base_delta=None)
    column = study_column_html(bare)
    assert column.count(NO_TOKENS) == 1 and column.count('class="tok"') == 3 and "(base Δ —)" in column


def test_refreshing_the_study_choices_keeps_the_picked_study_and_never_picks_one_itself() -> None:
    service = FakeService(TWO_OF_THREE)
    assert study_dropdown(service, 2).value == 2
    assert study_dropdown(service, None).value is None  # not the first choice, as Gradio would pick
    assert study_dropdown(service, 9).value is None  # a study no longer listed
    assert [c[1] for c in study_dropdown(service).choices] == [1, 2]
