"""Comparing runs: names that say what differs, one colour per run id, the per-direction accuracy table
and bars, small multiples per direction, the margin and the regime shares."""

from app.charts import Point, RunLook
from app.charts_compare import (
    LABEL_ROOM,
    MARGIN_MEANINGS,
    NO_SCORES,
    REGIME_PANELS,
    accuracy_bars,
    difference_points,
    direction_panels,
    margin_chart,
    panel_chart,
    regime_chart,
    renamed,
)
from app.runs_compare import (
    DISAGREE,
    PALETTE,
    accuracy_columns,
    accuracy_summary,
    accuracy_table_rows,
    differing_settings,
    flatten,
    run_colour,
    run_looks,
    run_names,
    shared_base,
)
from capo_lab.records import AccuracyCell, DirectionAccuracy


def config(objective: dict, lr: float = 1e-6, seed: int = 0, name: str = "demo-cpu") -> dict:
    return {"name": name, "objective": objective, "optim": {"lr": lr}, "train": {"seed": seed, "bf16": False}}


CAPO = {"name": "capo", "beta": 0.1, "alpha": 2.0}
DPO = {"name": "dpo", "beta": 0.1}


def test_names_give_the_objective_and_only_the_settings_that_differ() -> None:
    assert run_names({3: config(CAPO), 4: config(DPO)}) == {3: "#3 capo α=2", 4: "#4 dpo"}
    swept = {1: config(CAPO), 2: config({**CAPO, "alpha": 0.5}, seed=1)}
    assert run_names(swept) == {1: "#1 capo α=2 seed=0", 2: "#2 capo α=0.5 seed=1"}
    assert run_names({7: config(CAPO)}) == {7: "#7 capo"}  # alone, nothing differs
    lr = {1: config(DPO, lr=1e-6), 2: config(DPO, lr=5e-7)}
    assert run_names(lr) == {1: "#1 dpo lr=1e-06", 2: "#2 dpo lr=5e-07"}


def test_the_run_name_is_never_a_difference_and_long_differences_are_cut() -> None:
    assert differing_settings({1: config(CAPO, name="a"), 2: config(CAPO, name="b")}) == []
    many = {1: config(CAPO, lr=1.0, seed=1), 2: config({**CAPO, "alpha": 1.0, "beta": 0.2}, lr=2.0, seed=2)}
    assert differing_settings(many) == ["objective.alpha", "objective.beta", "optim.lr", "train.seed"]
    assert run_names(many)[2] == "#2 capo α=1 β=0.2 lr=2 …"
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}}) == {"a.b": 1, "a.c.d": [1, 2]}


def test_each_run_keeps_its_colour_whatever_else_is_selected() -> None:
    assert run_colour(3) == PALETTE[2] and run_colour(1) != run_colour(2)
    alone = run_looks({3: config(CAPO)})["#3"]
    beside = run_looks({1: config(DPO), 3: config(CAPO)})["#3"]
    assert alone.colour == beside.colour == run_colour(3)
    assert beside.name == "#3 capo α=2" and alone.name == "#3 capo"


def cell(base: float, last: float, n: int = 4, last_step: int = 40) -> AccuracyCell:
    return AccuracyCell(n, base, last, 0, last_step)


ROWS = [
    DirectionAccuracy("en-de", {3: cell(0.5, 0.75), 4: cell(0.5, 0.5, last_step=38)}, disagree=1, shared=4),
    DirectionAccuracy("all", {3: cell(0.5, 0.75, 8), 4: cell(0.5, 0.5, 8, 38)}, disagree=3, shared=8),
]
NAMES = {3: "#3 capo α=2", 4: "#4 dpo"}


def test_the_accuracy_table_puts_base_then_each_runs_last_and_the_disagreements() -> None:
    columns = accuracy_columns(ROWS, NAMES)
    assert columns == [
        "direction",
        "n pairs",
        "base (step 0)",
        "#3 capo α=2 (step 40)",
        "#4 dpo (step 38)",
        DISAGREE,
    ]
    rows = accuracy_table_rows(ROWS, NAMES)
    assert rows[0] == {
        "direction": "en-de", "n pairs": "4", "base (step 0)": "0.50",
        "#3 capo α=2 (step 40)": "0.75 (+0.25)", "#4 dpo (step 38)": "0.50 (+0.00)", DISAGREE: "1 of 4",
    }  # fmt: skip
    assert "#3 capo α=2 and #4 dpo decide 3 of 8 shared pairs differently" in accuracy_summary(ROWS, NAMES)


def test_runs_with_different_bases_or_counts_show_each() -> None:
    rows = [DirectionAccuracy("all", {3: cell(0.5, 0.75), 5: cell(0.25, 0.5, n=6)}, None, None)]
    names = {3: "#3 capo", 5: "#5 capo"}
    assert not shared_base(rows) and shared_base(ROWS)
    assert accuracy_columns(rows, names)[2:4] == ["#3 capo base", "#5 capo base"]
    (row,) = accuracy_table_rows(rows, names)
    assert row["n pairs"] == "4 / 6" and DISAGREE not in row and row["#5 capo (step 40)"] == "0.50 (+0.25)"
    assert "decide" not in accuracy_summary(rows, names)
    assert "No eval pair scores yet" in accuracy_summary([], {})


def test_accuracy_bars_share_the_base_and_use_each_runs_colour_on_a_fixed_axis() -> None:
    looks = {3: RunLook("#3 capo α=2", "#111111"), 4: RunLook("#4 dpo", "#222222")}
    fig = accuracy_bars(ROWS, looks, shared_base(ROWS))
    assert [t.name for t in fig.data] == ["base (step 0)", "#3 capo α=2 (step 40)", "#4 dpo (step 38)"]
    assert [t.marker.color for t in fig.data][1:] == ["#111111", "#222222"]
    assert list(fig.data[1].y) == [0.75, 0.75] and list(fig.data[1].x) == ["en-de", "all"]
    assert fig.layout.yaxis.range == (0, LABEL_ROOM) and fig.layout.yaxis.tickvals[-1] == 1
    apart = accuracy_bars(ROWS, looks, False)
    assert [t.name for t in apart.data][:2] == ["#3 capo α=2 base", "#4 dpo base"]
    assert apart.data[0].marker.pattern.shape == "/" and apart.data[0].marker.color == "#111111"
    assert accuracy_bars([], looks, True).layout.title.text.replace("<br>", " ") == NO_SCORES


def points() -> list[Point]:
    rows = []
    for run, shift in (("#3", 0.0), ("#4", 1.0)):
        for step in (0, 10):
            for suffix, chosen, rejected in (
                ("", -10.0, -12.0),
                ("/en-de", -9.0, -13.0),
                ("/en-it", -11, -10),
            ):
                rows.append(Point(run, step, "eval_logps/chosen" + suffix, chosen + shift + step))
                rows.append(Point(run, step, "eval_logps/rejected" + suffix, rejected))
                rows.append(Point(run, step, "eval_rewards/margins" + suffix, 0.1 * step))
            rows.append(Point(run, step, "eval_regime/chosen_down", 0.25 if run == "#3" else 0.0))
    return rows + [Point("#3", 20, "eval_logps/chosen", -1.0)]  # its rejected mean is not logged yet


def test_delta_is_chosen_minus_rejected_where_both_are_logged() -> None:
    deltas = difference_points(points(), "eval_logps/chosen", "eval_logps/rejected", "eval_delta")
    by_key = {(p.run, p.step, p.key): p.value for p in deltas}
    assert by_key[("#3", 0, "eval_delta")] == 2.0 and by_key[("#4", 10, "eval_delta/en-it")] == 10.0
    assert ("#3", 20, "eval_delta") not in by_key and len(deltas) == 12
    assert direction_panels(deltas, "eval_delta") == [
        ("all", "eval_delta"), ("en-de", "eval_delta/en-de"), ("en-it", "eval_delta/en-it"),
    ]  # fmt: skip
    assert renamed([Point("#1", 1, "loss", 2.0), Point("#1", 1, "x", 1.0)], {"loss": "train"}) == [
        Point("#1", 1, "train", 2.0)
    ]


def test_small_multiples_have_a_panel_per_direction_and_one_legend_entry_per_run() -> None:
    looks = {"#3": RunLook("#3 capo α=2", "#111111"), "#4": RunLook("#4 dpo", "#222222")}
    fig = margin_chart(points(), looks, {"#3": "capo", "#4": "dpo"}, objective_margin=False)
    assert [a.text for a in fig.layout.annotations] == ["all", "en-de", "en-it"]
    assert len(fig.data) == 6 and [t.name for t in fig.data if t.showlegend] == ["#3 capo α=2", "#4 dpo"]
    assert {t.marker.color for t in fig.data if t.name == "#4 dpo"} == {"#222222"}
    assert "Δ = lw − ll" in fig.layout.title.text and "every objective" in fig.layout.title.text


def test_the_objectives_margin_is_labelled_with_what_each_objective_means() -> None:
    looks = {"#3": RunLook("#3 capo", "#111111"), "#4": RunLook("#4 dpo", "#222222")}
    fig = margin_chart(points(), looks, {"#3": "capo", "#4": "dpo"}, objective_margin=True)
    title = fig.layout.title.text
    assert "capo: β(lw − ll)" in title and "dpo: β[(lw − rw) − (ll − rl)], relative to the base" in title
    assert "γ" in MARGIN_MEANINGS["simpo"] and len(fig.data) == 6


def test_regime_shares_get_three_panels_on_a_zero_to_one_axis() -> None:
    fig = regime_chart(points(), {"#3": RunLook("#3 capo", "#111111")})
    assert [a.text for a in fig.layout.annotations] == [t for t, _ in REGIME_PANELS]
    assert "pushes the post-edit down / the MT up / toward the MT" in fig.layout.title.text
    low, high = fig.layout.yaxis.range  # a little beyond 0 and 1, so that lines at 0 or 1 show
    assert -0.1 < low < 0 and 1 < high < 1.1 and fig.layout.yaxis3.range == (low, high)
    assert list(fig.data[0].y) == [0.25, 0.25] and fig.data[0].name == "#3 capo"


def test_small_multiples_without_data_say_nothing_is_logged_yet() -> None:
    fig = panel_chart([Point("#1", 1, "loss", 1.0)], REGIME_PANELS, "Shares<br><sub>x</sub>", {})
    assert fig.data == () and fig.layout.title.text == "Shares: nothing logged yet"
