"""The report's figures from a hand-built StudyReport: traces, titles, colours, and one note where an
item does not apply."""

from dataclasses import replace

import pytest

from capo.analysis.compare import ShiftCorrelation
from capo.analysis.stats import Correlation
from capo.analysis.sweep import SweepPoint
from capo_lab import report_figures as rf
from capo_lab.translations import DirectionChrf
from tests.capo_lab.report_sample import ACCURACY, DIRECTIONS, run_name, sample_report

ESCAPED_STUDY = "&lt;b&gt;cmp&lt;/b&gt;"


@pytest.fixture
def report():
    return sample_report()


def test_every_item_has_a_figure_with_a_title_or_else_a_note(report) -> None:
    items = rf.report_items(report)
    assert [i.key for i in items] == rf.ITEM_KEYS
    for item in items:
        assert (item.figure is None) != (item.note is None), item.key
        assert item.heading and item.about
        if item.figure is not None:
            assert len(item.figure.layout.title.text) > 15, item.key
    notes = {i.key: i.note for i in items if i.note}
    assert set(notes) == {"sweep", "translations"}
    assert notes["sweep"] == "the study does not vary objective.alpha"
    assert "no translations evaluated" in notes["translations"]


def test_accuracy_per_direction_has_one_bar_per_arm_with_its_interval(report) -> None:
    fig = rf.accuracy_figure(report)
    assert [t.name for t in fig.data] == ["capo", "dpo"]
    capo = fig.data[0]
    assert list(capo.x) == DIRECTIONS  # "all" has its own figure
    assert list(capo.y) == [ACCURACY[("capo", d)][0] for d in DIRECTIONS]
    assert list(capo.error_y.array) == [0.25, 0.25, 0.0]  # high − estimate
    assert list(capo.error_y.arrayminus) == [0.25, 0.25, 0.0]  # estimate − low
    assert list(fig.layout.yaxis.range) == [0, 1]
    assert "per direction" in fig.layout.title.text and "95 % CI" in fig.layout.title.text


def test_accuracy_over_all_directions_is_one_bar_per_arm(report) -> None:
    fig = rf.accuracy_all_figure(report)
    assert [(t.name, list(t.x), list(t.y)) for t in fig.data] == [
        ("capo", ["capo"], [0.75]),
        ("dpo", ["dpo"], [0.5]),
    ]
    assert list(fig.data[1].error_y.array) == pytest.approx([0.15])
    assert list(fig.layout.yaxis.range) == [0, 1] and "all directions" in fig.layout.title.text


def test_paired_differences_carry_raw_and_holm_p_and_the_discordant_counts(report) -> None:
    fig = rf.differences_figure(report)
    (trace,) = fig.data
    assert trace.name == "capo − dpo"
    assert list(trace.x) == [*DIRECTIONS, "all"]
    assert list(trace.y) == [0.5, 0.0, 0.25, 0.25]
    # en-de: raw 0.625, Holm ×3 in the per-direction family → 1; all: the primary family of one
    assert trace.text[0] == "p = 0.625 (Holm 1)<br>3 / 1"
    assert trace.text[3] == "p = 0.508 (Holm 0.508)<br>6 / 3"
    assert "Holm" in fig.layout.title.text
    assert rf.differences_figure(replace(report, comparisons=[])) == (
        "a paired difference needs two arms scored on the same pairs"
    )


def test_densities_are_small_multiples_with_one_colour_per_arm_across_figures(report) -> None:
    fig = rf.densities_figure(report)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["en-de", "en-it"]  # en-nl has no defined density
    assert [t.name for t in fig.data] == ["base", "capo", "dpo"] * 2
    assert [t.showlegend for t in fig.data] == [True] * 3 + [False] * 3
    colour = {t.name: t.line.color for t in fig.data}
    assert colour["base"] == rf.BASE_COLOUR
    bars = {t.name: t.marker.color for t in rf.accuracy_figure(report).data}
    assert colour["capo"] == bars["capo"] and colour["dpo"] == bars["dpo"] and bars["capo"] != bars["dpo"]
    assert fig.data[3].xaxis == "x2"  # en-it's subplot
    undefined = [replace(d, values=None) for d in report.densities]
    assert "no density is defined" in rf.densities_figure(replace(report, densities=undefined))


def test_bleu_shift_scatter_states_r_p_n_in_its_title(report) -> None:
    fig = rf.shift_figure(report)
    (trace,) = fig.data
    assert list(trace.x) == [30.0, 50.0, 70.0] and list(trace.y) == [0.5, 1.0, 2.0]
    assert list(trace.text) == DIRECTIONS
    assert "r = 0.98, p = 0.12, n = 3" in fig.layout.title.text
    assert "difference of the sample means" in rf.SHIFT_ABOUT and "symmetric kernel" in rf.SHIFT_ABOUT
    constant = replace(report.shift[0], correlation=Correlation(float("nan"), float("nan"), 3))
    assert "r undefined" in rf.shift_figure(replace(report, shift=[constant])).layout.title.text


def test_bleu_shift_needs_two_arms_and_three_directions(report) -> None:
    two = ShiftCorrelation("capo", "dpo", ("en-de", "en-it"), (30.0, 50.0), (0.5, 1.0), None)
    assert rf.shift_figure(replace(report, shift=[two])) == (
        "a correlation needs at least 3 directions with both arms scored and a BLEU"
    )
    assert rf.shift_figure(replace(report, shift=[])) == "the shift of one arm over another needs two arms"


def test_alpha_sweep_shows_best_and_final_accuracy_and_the_final_loss(report) -> None:
    points = [SweepPoint(4.0, "eval", 0.8, 2, 0.7, 0.3), SweepPoint(1.0, "eval", 0.6, 1, 0.5, 0.4)]
    swept = replace(report, factors={**report.factors, "objective.alpha": [1.0, 4.0]}, sweep=points)
    fig = rf.sweep_figure(swept)
    assert [t.name for t in fig.data] == [
        "eval accuracy, best during training", "eval accuracy, final", "train loss, final",
    ]  # fmt: skip
    assert list(fig.data[0].x) == [1.0, 4.0] and list(fig.data[0].y) == [0.6, 0.8]
    assert list(fig.data[2].y) == [0.4, 0.3] and fig.data[2].yaxis == "y2"
    assert list(fig.layout.yaxis.range) == [0, 1] and "α" in fig.layout.title.text
    assert rf.sweep_figure(replace(swept, sweep=[])) == "no finished run of the α sweep"


def test_loss_curves_one_per_run_coloured_by_arm_with_escaped_names(report) -> None:
    fig = rf.loss_figure(report)
    assert [t.name for t in fig.data] == [f"{ESCAPED_STUDY}[capo, seed=0]", f"{ESCAPED_STUDY}[capo, seed=1]",
                                          f"{ESCAPED_STUDY}[dpo, seed=0]"]  # fmt: skip
    colours = rf.colours(report.arms)
    assert [t.line.color for t in fig.data] == [colours["capo"], colours["capo"], colours["dpo"]]
    assert fig.data[0].line.dash != fig.data[1].line.dash  # the seeds
    assert rf.loss_figure(replace(report, loss_curves=[])) == "no finished run logged a training loss"


def test_translation_chrf_base_vs_trained_per_evaluated_run(report) -> None:
    bars = [DirectionChrf("en-de", 40.0, 45.0, 0.01), DirectionChrf("all", 41.0, 44.0, None)]
    fig = rf.translations_figure(
        replace(report, translations={run_name("capo", 0): bars, run_name("dpo", 0): []})
    )
    assert [a.text for a in fig.layout.annotations] == [f"{ESCAPED_STUDY}[capo, seed=0]"]
    assert [(t.name, list(t.y)) for t in fig.data] == [("base", [40.0, 41.0]), ("capo", [45.0, 44.0])]
    assert fig.data[0].marker.color == rf.BASE_COLOUR


def test_regimes_per_direction_at_base_and_trained_per_arm(report) -> None:
    fig = rf.regimes_figure(report)
    assert [a.text for a in fig.layout.annotations] == list(rf.REGIMES.values())
    assert len(fig.data) == 2 * 2 * 3  # arms × (base, trained) × regimes
    capo_base_down = fig.data[0]
    assert capo_base_down.name == "capo · base" and list(capo_base_down.x) == [*DIRECTIONS, "all"]
    assert list(capo_base_down.y) == [0.5] * 4
    dpo_trained_toward = fig.data[-1]
    assert dpo_trained_toward.name == "dpo · trained" and list(dpo_trained_toward.y) == [0.0] * 4
    assert dpo_trained_toward.xaxis == "x3"


def test_accuracy_change_within_each_starting_regime(report) -> None:
    fig = rf.regime_accuracy_figure(report)
    assert [a.text for a in fig.layout.annotations] == [*DIRECTIONS, "all"]
    capo = [t for t in fig.data if t.name == "capo"]
    dpo = [t for t in fig.data if t.name == "dpo"]
    assert {t.y[0] for t in capo} == {0.5} and {t.y[0] for t in dpo} == {-0.25}
    assert {t.x[0] for t in capo} == {"chosen_down", "none"} and capo[0].text == ("n = 2",)
    assert sum(t.showlegend for t in fig.data) == 2
    assert "starting gradient regime" in fig.layout.title.text


def test_ambiguity_table_keeps_the_top_50(report) -> None:
    fig = rf.ambiguity_figure(report)
    (table,) = fig.data
    assert list(table.header.values) == [
        "pair", "direction", "chrF(MT, post-edit)", "HTER", "base Δr", "Δr change, capo", "Δr change, dpo",
    ]  # fmt: skip
    columns = table.cells.values
    assert len(columns[0]) == 50 and list(columns[0][:2]) == [0, 1]
    assert list(columns[3][:2]) == ["", "0.100"] and columns[5][0] == "0.50"
    assert "top 50 of 60" in fig.layout.title.text
    assert rf.ambiguity_figure(replace(report, ambiguity=[])) == "no pair was scored at the base model"


def test_user_text_reaches_plotly_escaped(report) -> None:
    hostile = '<img src=x onerror="alert(1)">'
    directions = [hostile if d == "en-de" else d for d in report.directions]
    accuracy = [replace(c, direction=hostile) if c.direction == "en-de" else c for c in report.accuracy]
    fig = rf.accuracy_figure(replace(report, directions=directions, accuracy=accuracy))
    assert fig.data[0].x[0] == '&lt;img src=x onerror="alert(1)"&gt;'
