"""Charts a researcher can read (issue 23 item 7): whole-number step axes, every direction labelled,
upright bar labels with room above the bars, panel titles clear of the chart's title and of each other,
legend names from the configs cut off sensibly, the accuracy table and bars under the chosen accuracy,
and heat maps that join the byte tokens of one character."""

import math

import pytest

from app.charts import (
    FEW_STEPS,
    Point,
    RunLook,
    delta_distribution,
    join_partial_utf8,
    line_chart,
    step_axis,
    token_heatmap_html,
)
from app.charts_compare import LABEL_ROOM, PANEL_GAP, REGIME_PANELS, accuracy_bars, panel_chart, regime_chart
from app.runs_compare import MAX_NAME, accuracy_table_rows, run_names
from capo.models import byte_level_tokenizer
from capo_lab.comparisons import VARIANTS, AccuracyCell, DirectionAccuracy, decided
from storage.records import PairScoreRecord

DIRECTIONS = ["en-ar", "en-de", "en-it", "en-nl", "en-tr", "en-uk", "en-vi", "en-zh"]


def test_a_few_steps_tick_every_whole_step_and_many_keep_plotlys_whole_numbers() -> None:
    assert step_axis([0, 1, 2]) == {"title": "step", "tickformat": "d", "dtick": 1, "tick0": 0}
    assert step_axis(range(0, 1000, 10)) == {"title": "step", "tickformat": "d"}  # 1, 2, 5 × 10ⁿ ticks
    fig = line_chart([Point("#1", s, "loss", 1 / (s + 1)) for s in (0, 1, 2)], ["loss"], "Loss")
    assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.tickformat == "d"
    assert FEW_STEPS >= 2  # two steps (the 1.2, 1.4 between them) are within the ticked range


def test_small_multiples_share_whole_number_step_axes() -> None:
    points = [Point("#1", s, key, 0.5) for s in (1, 2) for _, key in REGIME_PANELS]
    fig = regime_chart(points, {"#1": RunLook("#1 capo", "#111111")})
    axes = [fig.layout[name] for name in fig.layout if name.startswith("xaxis")]
    assert len(axes) == 3 and all(a.tickformat == "d" and a.dtick == 1 for a in axes)


def test_the_panel_titles_sit_below_the_title_and_rows_are_apart() -> None:
    panels = [(d, f"eval_delta/{d}") for d in DIRECTIONS]
    points = [Point("#1", 1, key, 1.0) for _, key in panels]
    fig = panel_chart(points, panels, "Title<br><sub>a second line</sub>", {})
    assert fig.layout.title.yref == "container" and fig.layout.title.yanchor == "top"
    assert fig.layout.margin.t >= 2 * 30 + 20  # two title lines of ~30 px, then the panel titles
    plot_height = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    tops = sorted({fig.layout[f"yaxis{i or ''}"].domain for i in ["", 4, 7]}, reverse=True)
    gaps = [(upper[0] - lower[1]) * plot_height for upper, lower in zip(tops, tops[1:], strict=False)]
    assert len(gaps) == 2 and all(gap >= PANEL_GAP - 1 for gap in gaps)  # tick labels, then titles


def test_the_delta_boxes_label_all_eight_directions() -> None:
    deltas = {"#1 capo": [(d, -1.0 + i) for i, d in enumerate(DIRECTIONS)], "#2 dpo": [("en-zh", 0.5)]}
    fig = delta_distribution(deltas, "Δr")
    axis = fig.layout.xaxis
    assert list(axis.tickvals) == DIRECTIONS and list(axis.categoryarray) == DIRECTIONS


def cell(base: float, last: float) -> AccuracyCell:
    return AccuracyCell(4, base, last, 0, 10)


def rows_of(*values: tuple[float, float]) -> list[DirectionAccuracy]:
    found = zip(DIRECTIONS[: len(values)], values, strict=True)
    return [DirectionAccuracy(d, {1: cell(*v), 2: cell(*v)}, None, None) for d, v in found]


def test_bar_labels_stand_upright_above_their_bars_with_room_for_one() -> None:
    rows = rows_of(*[(0.25, 1.0)] * 8)
    looks = {1: RunLook("#1 capo α=2", "#111111"), 2: RunLook("#2 capo α=1", "#222222")}
    fig = accuracy_bars(rows, looks, True, "per token")
    assert all(bar.textangle == -90 and bar.textposition == "outside" for bar in fig.data)
    assert fig.data[0].text == ("0.25",) * 8 and fig.data[1].text == ("1.00",) * 8
    assert fig.layout.yaxis.range[1] == LABEL_ROOM > 1 and list(fig.layout.xaxis.tickvals) == DIRECTIONS
    assert "per token" in fig.layout.title.text


def test_legend_names_come_from_the_configs_and_are_cut_off() -> None:
    long_path = "/home/someone/models/" + "x" * 80
    configs = {
        run: {
            "name": "smoke",
            "model": {"name_or_path": long_path + str(run), "dtype": ["float32", "bfloat16"][run - 1]},
            "objective": {"name": "capo", "alpha": float(run), "beta": 0.1 * run},
            "lora": {"r": 8 * run},
            "train": {"seed": run},
        }
        for run in (1, 2)
    }
    names = run_names(configs)
    assert names[1].startswith("#1 capo α=1 β=0.1") and names[2].startswith("#2 capo α=2 β=0.2")
    assert all(len(n) <= MAX_NAME and n.endswith(" …") and "smoke" not in n for n in names.values())


def score(pair: int, lw: float, ll: float, n: tuple[int, int] = (1, 1), step: int = 0) -> PairScoreRecord:
    return PairScoreRecord(1, step, "eval", pair, "en-de", lw, ll, *n, None, None, 0.0, 0.0, 0.0, {}, {})


def test_each_accuracy_decides_a_pair_as_the_trainer_counts_it() -> None:
    base = score(1, -10.0, -9.0, (10, 2))  # lw < ll; per token -1.0 > -4.5
    later = score(1, -9.0, -9.5, (10, 2), step=5)  # lw > ll; shift (−9 + 10) − (−9.5 + 9) = 1.5 > 0
    assert [decided(base, base, v) for v in VARIANTS] == [False, True, False]  # vs base: 0 > 0 is false
    assert [decided(later, base, v) for v in VARIANTS] == [True, True, True]
    worse = score(1, -12.0, -8.0, (10, 2), step=5)  # shift (−12 + 10) − (−8 + 9) = −3
    assert decided(worse, base, "accuracies_vs_base") is False


def test_the_table_follows_the_chosen_accuracy_with_every_runs_column() -> None:
    paper = rows_of((0.5, 0.75))[0]
    per_token = rows_of((0.25, 1.0))[0]
    row = DirectionAccuracy(paper.direction, paper.runs, None, None, {"accuracies_per_token": per_token})
    names = {1: "#1 capo α=1", 2: "#2 capo α=2"}
    (shown,) = accuracy_table_rows([row.in_variant("accuracies_per_token")], names)
    assert shown["#1 capo α=1 (step 10)"] == shown["#2 capo α=2 (step 10)"] == f"1.00 (+{1.0 - 0.25:.2f})"
    (paper_shown,) = accuracy_table_rows([row.in_variant("accuracies")], names)
    assert paper_shown["base (step 0)"] == "0.50"


def byte_pieces(text: str) -> tuple[list[str], list[float]]:
    """The tiny byte-level BPE tokenizer's tokens of ``text`` decoded one by one, as
    ``capo.train.token_pieces`` stores them, and a log-prob per token."""
    tokenizer = byte_level_tokenizer()
    ids = tokenizer(text, add_special_tokens=False).input_ids
    return [tokenizer.decode([i]) for i in ids], [-0.5 * (i + 1) for i in range(len(ids))]


def test_byte_tokens_of_one_character_are_one_span_with_the_character() -> None:
    tokens, logps = byte_pieces(" eğitim")
    assert tokens[:4] == [" ", "e", "\ufffd", "\ufffd"]  # "ğ" is two bytes, each decoded alone as U+FFFD
    pieces = join_partial_utf8(tokens, logps, "eğitim")
    assert [text for text, _ in pieces] == [" ", "e", "ğ", "i", "t", "i", "m"]
    assert pieces[2][1] == [logps[2], logps[3]]
    page = token_heatmap_html(tokens, logps, "eğitim")
    assert "\ufffd" not in page and ">ğ</span>" in page
    strength = min(1.0, -(logps[2] + logps[3]) / 10)  # the character's log-prob: its bytes' sum
    assert f"rgba(220, 38, 38, {strength:.2f})" in page


def test_characters_of_three_and_four_bytes_and_text_that_does_not_line_up() -> None:
    tokens, logps = byte_pieces(" 𝔘nicode 中文")
    pieces = join_partial_utf8(tokens, logps, "𝔘nicode 中文")
    assert "".join(text for text, _ in pieces) == " 𝔘nicode 中文"
    assert sum(len(values) for _, values in pieces) == len(tokens)
    unread = join_partial_utf8(tokens, logps, "something else")
    assert "".join(text for text, _ in unread) == "".join(tokens)  # kept as they are, never made up
    assert not math.isnan(sum(v for _, values in unread for v in values))


@pytest.mark.parametrize("text", [None, ""])
def test_without_the_text_the_bytes_still_join(text) -> None:
    tokens, logps = byte_pieces(" eğitim")
    assert [t for t, _ in join_partial_utf8(tokens, logps, text)][2] == "\ufffd\ufffd"


def stored(pair: int, direction: str, step: int, lw: float, ll: float, tokens: tuple[int, int]) -> dict:
    """A pair score row as the trainer stores it."""
    return {
        "step": step, "split": "eval", "pair_id": pair, "direction": direction, "logp_chosen": lw,
        "logp_rejected": ll, "n_tokens_chosen": tokens[0], "n_tokens_rejected": tokens[1],
        "ref_logp_chosen": None, "ref_logp_rejected": None, "rrm": lw / ll, "loss": 0.0,
        "reward_margin": 0.0, "grad_chosen": {}, "grad_rejected": {},
    }  # fmt: skip


def test_the_service_gives_every_accuracy_from_one_read_of_each_runs_scores(lab_home) -> None:
    from capo_lab.service import LabService
    from capo_lab.settings import Settings
    from storage import writes

    service = LabService(Settings())
    with service.db.write() as session:
        run = writes.add_run(session, "r", {"objective": {"name": "capo"}}, None, "succeeded")
        writes.add_pair_scores(
            session,
            run,
            [
                stored(1, "en-de", 0, -10.0, -9.0, (10, 2)),  # lw < ll; per token −1 > −4.5
                stored(2, "en-tr", 0, -5.0, -8.0, (1, 8)),  # lw > ll; per token −5 < −1
                stored(1, "en-de", 5, -9.0, -9.5, (10, 2)),  # lw > ll; shift (−9 + 10) − (−9.5 + 9) > 0
                stored(2, "en-tr", 5, -7.0, -8.0, (1, 8)),  # lw > ll; shift (−7 + 5) − (−8 + 8) < 0
            ],
        )
    from sqlalchemy import event

    statements: list[str] = []
    event.listen(service.db.engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql))
    rows = {r.direction: r for r in service.direction_accuracy([run])}
    assert sum("FROM pair_scores" in sql for sql in statements) == 3  # steps, first, last; not 3 × 3
    total = rows["all"]
    assert (total.runs[run].base, total.runs[run].last) == (1 / 2, 2 / 2)
    per_token = total.in_variant("accuracies_per_token").runs[run]
    assert (per_token.base, per_token.last) == (1 / 2, 1 / 2)  # pair 1 both times, pair 2 never
    vs_base = rows["en-de"].in_variant("accuracies_vs_base").runs[run]
    assert (vs_base.base, vs_base.last) == (0.0, 1.0) and total.in_variant("accuracies_vs_base").runs[
        run
    ].last == 1 / 2
