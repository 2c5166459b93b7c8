"""The Inspect tab beside a compared run: its Δ column and the "runs disagree" filter, the step it is shown
at, the line above an empty table, each regime flag explained, and the pair on CAPO's (ll, lw) plane."""

from dataclasses import dataclass

import pytest
from markdown_it import MarkdownIt

from app.charts_pair import PairHistory, history_chart, plane_bounds, plane_or_why, regime_plane
from app.inspect_pairs import (
    DISAGREE,
    PAIR_COLUMNS,
    compare_step,
    compared_column,
    filter_rows,
    pair_columns,
    regime_lines,
    regimes_markdown,
    step_note,
    table_note,
    with_comparison,
)
from app.tab_inspect import pair_table_view
from capo.analysis.regimes import capo_regime
from capo_lab.records import MarginPoint, PairScoreRecord


def row(pair_id: int, delta: float, direction: str = "en-de") -> dict:
    return {"pair_id": pair_id, "direction": direction, "delta": delta, "flipped": delta < 0}


def test_the_compared_runs_delta_sits_beside_and_disagreement_is_a_sign_change() -> None:
    ours = [row(1, 2.0), row(2, -1.0), row(3, 0.5, "en-it"), row(4, 1.0)]
    theirs = [row(1, 0.1), row(2, 3.0), row(3, -0.5, "en-it")]
    rows = with_comparison(ours, theirs, 9)
    assert [r["delta (run #9)"] for r in rows] == [0.1, 3.0, -0.5, None]
    assert [r[DISAGREE] for r in rows] == [False, True, True, False]  # pair 4: not scored by run #9
    assert [r["pair_id"] for r in filter_rows(rows, "", [DISAGREE])] == [2, 3]
    assert [r["pair_id"] for r in filter_rows(rows, "en-it", [DISAGREE])] == [3]
    assert filter_rows(ours, "", [DISAGREE]) == []  # without a compared run, nothing disagrees
    columns = pair_columns(9)
    assert columns[columns.index("delta") + 1] == compared_column(9) == "delta (run #9)"
    assert columns[-1] == DISAGREE and pair_columns(None) == PAIR_COLUMNS


def test_the_compared_run_is_shown_at_the_same_step_or_its_nearest_said_so() -> None:
    assert compare_step(20, [0, 10, 20]) == 20 and step_note(4, 20, 20) == ""
    assert compare_step(20, [0, 16, 24]) == 24  # equally near: the later
    assert compare_step(20, [0, 10, 18]) == 18
    assert step_note(4, 20, 18) == "Run #4 has no eval scores at step 20: its step 18 is shown."
    assert compare_step(20, []) is None and "no eval pair scores yet" in step_note(4, 20, None)


def test_the_line_above_the_table_says_what_is_shown_or_why_nothing_is() -> None:
    assert table_note(3, 10, "", [], False) == "3 of 10 pairs shown; click a row to open the pair."
    empty = table_note(0, 10, "en-vi", ["flipped", DISAGREE], True)
    assert (
        empty
        == "No pair of the 10 matches: direction en-vi, flipped (Δ < 0), runs disagree (sign of Δ differs)."
    )
    assert "(choose a run to compare with)" in table_note(0, 10, "", [DISAGREE], False)
    assert table_note(0, 0, "", [], False) == "No eval pair scores at this step."


SCORE = PairScoreRecord(
    run_id=1,
    step=0,
    split="eval",
    pair_id=1,
    direction="en-de",
    logp_chosen=-30.0,
    logp_rejected=-12.0,
    n_tokens_chosen=10,
    n_tokens_rejected=10,
    ref_logp_chosen=None,
    ref_logp_rejected=None,
    rrm=2.5,
    loss=0.5,
    reward_margin=0.1,
    grad_chosen={"dpo": -0.03},
    grad_rejected={"dpo": 0.03},
)


def test_capo_flags_are_explained_with_the_pairs_numbers_and_thresholds() -> None:
    lines = regime_lines({"name": "capo", "alpha": 2.0, "beta": 0.1}, SCORE)
    assert capo_regime(-30.0, -12.0).toward_rejected and len(lines) == 3
    assert lines[0].startswith("post-edit pushed down") and "−α/β = -20.0 nats" in lines[0]
    assert lines[1].startswith("MT pushed up") and "ll² = 144.0 vs (α/β)·|lw| = 600.0" in lines[1]
    assert "toward the MT" in lines[2]


@pytest.mark.parametrize(
    ("objective", "on_lw"), [("dpo", "s·β <"), ("simpo", "s·β/|y_w| <"), ("dpo_nll", "s·β − w/|y_w| <")]
)
def test_other_objectives_say_why_the_flags_cannot_occur(objective: str, on_lw: str) -> None:
    down, up = regime_lines({"name": objective, "beta": 0.1}, SCORE)
    assert f"cannot occur under {objective}" in down and on_lw in down and "dL/dlw = -0.03000" in down
    assert f"cannot occur under {objective}" in up and "dL/dll = +0.03000" in up


def test_the_regime_lines_render_as_a_literal_markdown_list() -> None:
    rendered = MarkdownIt("commonmark").render(regimes_markdown({"name": "simpo", "beta": 2.0}, SCORE))
    assert rendered.count("<li>") == 2 and "<em>" not in rendered and "|y_w|" in rendered


def test_the_plane_shades_both_regions_for_the_runs_alpha_and_beta_with_the_pair_as_a_marker() -> None:
    fig = regime_plane(-30.0, -12.0, 2.0, 0.1)
    down, up, diagonal, pair = fig.data
    assert "post-edit pushed down" in down.name and min(down.x) == -20.0 and max(down.x) == 0
    assert "MT pushed up" in up.name and (list(pair.x), list(pair.y)) == ([-12.0], [-30.0])
    x_min, y_min = plane_bounds(-30.0, -12.0, 20.0)
    assert (x_min, y_min) == (-30.0, -50.0) and list(fig.layout.xaxis.range) == [x_min, 0]
    # the MT region's edge is lw = −ll²/(α/β), clipped to the plot
    edge = list(zip(up.x[:81], up.y[:81], strict=True))
    assert all(y == pytest.approx(max(-x * x / 20.0, y_min)) for x, y in edge)
    assert edge[0] == (-30.0, -45.0) and edge[-1] == (0.0, 0.0)
    wide = regime_plane(-30.0, -60.0, 2.0, 0.1).data[1]
    assert wide.y[0] == plane_bounds(-30.0, -60.0, 20.0)[1]  # clipped at the bottom of the plot
    assert "α = 2, β = 0.1" in fig.layout.title.text


def test_the_plane_for_another_objective_says_why_it_is_absent() -> None:
    fig = plane_or_why({"name": "dpo", "beta": 0.1}, -30.0, -12.0)
    assert fig.data == () and "never pushes" in fig.layout.title.text.replace("<br>", " ")
    assert len(plane_or_why({"name": "capo", "alpha": 1.0, "beta": 0.1}, -3.0, -2.0).data) == 4


def test_the_history_draws_each_run_in_its_colour_with_a_ring_at_the_step_shown() -> None:
    ours = PairHistory(
        "#3 capo", "#111111", [MarginPoint(0, 1.0, 0.7, 0.0), MarginPoint(10, 2.0, 0.6, 0.1)], 10
    )
    theirs = PairHistory(
        "#4 <b>dpo</b>", "#222222", [MarginPoint(0, 1.0, 0.7, 0.0), MarginPoint(8, -1.0, 0.8, -0.1)], 8
    )
    fig = history_chart([ours, theirs])
    lines = [t for t in fig.data if t.showlegend is not False]
    assert [t.name for t in lines] == ["#3 capo", "#4 &lt;b&gt;dpo&lt;/b&gt;"]
    rings = [t for t in fig.data if t.showlegend is False]
    assert [(list(t.x), list(t.y)) for t in rings] == [([10], [2.0]), ([8], [-1.0])]
    assert rings[1].marker.color == "#222222"


class PairsService:
    """Run 1 scored at steps 0 and 4, run 2 at steps 0 and 6; run 2 ranks pair 2 the other way."""

    steps = {1: [0, 4], 2: [0, 6]}

    def score_steps(self, run_id, split="eval"):
        return self.steps[run_id]

    def pair_table(self, run_id, step):
        deltas = {1: [2.0, 1.0], 2: [3.0, -1.0]}[run_id]
        return [PairRow(i + 1, "en-de", d) for i, d in enumerate(deltas)]


@dataclass(frozen=True)
class PairRow:
    pair_id: int
    direction: str
    delta: float
    flipped: bool = False


def test_the_pair_table_beside_a_compared_run_and_an_empty_filter_as_a_line() -> None:
    shown, note = pair_table_view(PairsService(), 1, 4, "", [], 2)
    assert shown.visible is True and compared_column(2) in shown.value["headers"]
    assert "2 of 2 pairs shown" in note and "its step 6 is shown" in note
    shown, note = pair_table_view(PairsService(), 1, 4, "", [DISAGREE], 2)
    assert shown.visible is True and [r[0] for r in shown.value["data"]] == [2]
    shown, note = pair_table_view(PairsService(), 1, 4, " en-it ", [], None)
    assert shown.visible is False and note == "No pair of the 2 matches: direction en\\-it\\."
