import re
import unicodedata

import plotly.graph_objects as go

from app.charts import (
    HEATMAP_SCALE,
    NO_TRANSLATIONS,
    Point,
    RunLook,
    attach_combining_marks,
    bar_chart,
    chrf_chart,
    delta_distribution,
    difference_text,
    direction_keys,
    downsample,
    line_chart,
    significance_label,
    significance_mark,
    sweep_chart,
    sweep_or_why,
    token_heatmap_html,
    word_diff_html,
)
from capo.analysis.sweep import SweepPoint
from capo_lab.translations import DirectionChrf


def test_downsample_keeps_ends_and_bounds_the_size() -> None:
    points = [(i, float(i)) for i in range(100_001)]
    kept = downsample(points, max_points=2000)
    assert len(kept) <= 2000
    assert kept[0] == (0, 0.0) and kept[-1] == (100_000, 100_000.0)
    assert downsample(points[:10], 2000) == points[:10]


def test_line_chart_has_one_downsampled_trace_per_run_and_key() -> None:
    points = [Point("#1", s, "loss", 1 / (s + 1)) for s in range(150_000)]
    points += [Point("#2", s, "loss", 0.5) for s in range(10)] + [Point("#1", 3, "other", 9.0)]
    points.append(Point("#2", 11, "loss", float("nan")))
    fig = line_chart(points, ["loss"], "Loss")
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["#1", "#2"]
    assert len(fig.data[0].x) <= 2000 and list(fig.data[1].y) == [0.5] * 10


def test_direction_keys_and_delta_boxes() -> None:
    points = [
        Point("r", 1, "eval_rewards/margins/en-de", 0.1),
        Point("r", 1, "eval_rewards/margins/en-zh", 0.2),
        Point("r", 1, "eval_rewards/margins", 0.15),
    ]
    assert direction_keys(points, "eval_rewards/margins") == [
        "eval_rewards/margins/en-de",
        "eval_rewards/margins/en-zh",
    ]
    fig = delta_distribution({"dpo": [("en-de", -1.0), ("en-zh", 2.0)], "capo": [("en-de", 3.0)]}, "Δr")
    assert [t.name for t in fig.data] == ["dpo", "capo"] and list(fig.data[1].y) == [3.0]


def test_sweep_chart_draws_best_and_final_accuracy_sorted_by_the_swept_value() -> None:
    fig = sweep_chart(
        [SweepPoint(2.0, "validation", 0.7, 4, 0.6, 0.3), SweepPoint(0.5, "validation", 0.65, 2, 0.65, 0.4)],
        "alpha",
    )
    assert [t.name for t in fig.data] == [
        "validation accuracy, best", "validation accuracy, final", "train loss, final",
    ]  # fmt: skip
    assert list(fig.data[0].x) == [0.5, 2.0] and list(fig.data[0].y) == [0.65, 0.7]
    assert list(fig.data[1].y) == [0.65, 0.6] and list(fig.data[2].y) == [0.4, 0.3]


def test_bar_chart_groups_series() -> None:
    fig = bar_chart(["en-de", "en-zh"], {"BLEU": [50.0, 40.0], "chrF": [70.0, 35.0]}, "t")
    assert [t.name for t in fig.data] == ["BLEU", "chrF"]


def test_heatmap_escapes_tokens_and_shades_by_logprob() -> None:
    html = token_heatmap_html(["<b>", "ok"], [-10.0, 0.0])
    assert "&lt;b&gt;" in html and "rgba(220, 38, 38, 1.00)" in html and "rgba(220, 38, 38, 0.00)" in html
    assert 'title="-10.000"' in html


def test_word_diff_marks_deletions_and_insertions() -> None:
    html = word_diff_html("Er läuft heim .", "Er geht nach Hause .")
    assert html == '<div class="diff">Er <del>läuft heim</del> <ins>geht nach Hause</ins> .</div>'


def test_significance_marks_follow_the_p_value() -> None:
    assert [significance_mark(p) for p in (0.001, 0.0099, 0.01, 0.049, 0.05, 0.5, None)] == [
        "**", "**", "*", "*", "", "", "",
    ]  # fmt: skip
    assert significance_mark(0.001, difference=0.0) == "" and significance_mark(0.001, 0.003) == "**"


def test_differences_below_two_decimals_still_show_their_size() -> None:
    texts = [difference_text(d) for d in (4.531, -1.0, 0.003, -0.0004, 0.0)]
    assert texts == ["Δ +4.53", "Δ -1.00", "Δ +0.003", "Δ -0.0004", "Δ 0"]


def test_two_bars_at_zero_get_no_stars_whatever_the_stored_p_value() -> None:
    """Issue 19: ``**`` was drawn over two bars at chrF 0.00 (sacrebleu's bootstrap said p = 0.001)."""
    assert significance_label(DirectionChrf("en-ar", 0.0, 0.0, 0.001)) == "Δ 0"
    assert significance_label(DirectionChrf("en-ar", 5.0, 5.0 + 1e-12, 0.001)) == "Δ 0"  # float noise
    assert significance_label(DirectionChrf("en-ar", 0.001, 0.004, 0.004)) == "Δ +0.003 **"
    assert significance_label(DirectionChrf("all", None, 30.0, None)) == ""
    fig = chrf_chart([DirectionChrf("en-ar", 0.0, 0.0, 0.001), DirectionChrf("all", 0.0, 0.0, 1.0)])
    assert list(fig.data[-1].text) == ["Δ 0", "Δ 0"] and "*" not in "".join(fig.data[-1].text)


def test_chrf_chart_draws_base_beside_trained_with_the_difference_and_marks_over_the_trained_bars() -> None:
    bars = [
        DirectionChrf("en-de", 40.0, 45.0, 0.004),
        DirectionChrf("en-it", 50.0, 49.0, 0.3),
        DirectionChrf("all", 45.0, 47.0, 0.03),
    ]
    fig = chrf_chart(bars, "chrF · #1 smoke")
    base, trained = fig.data
    assert (base.name, trained.name) == ("base", "trained")
    assert list(base.x) == ["en-de", "en-it", "all"] and list(base.y) == [40.0, 50.0, 45.0]
    assert list(trained.y) == [45.0, 49.0, 47.0]
    assert list(trained.text) == ["Δ +5.00 **", "Δ -1.00", "Δ +2.00 *"]
    assert list(trained.hovertext) == ["Δ = +5, p = 0.0040", "Δ = -1, p = 0.3000", "Δ = +2, p = 0.0300"]
    assert fig.layout.title.text == "chrF · #1 smoke"
    note = fig.layout.annotations[0].text
    assert "* p < 0.05" in note and "** p < 0.01" in note and "Δ trained − base" in note
    assert "paired approximate randomization" in note and "no stars when Δ is 0" in note


def test_chrf_chart_without_base_draws_the_trained_bars_only() -> None:
    fig = chrf_chart([DirectionChrf("all", None, 30.0, None)])
    assert [t.name for t in fig.data] == ["trained"] and list(fig.data[0].text) == [""]


def test_chrf_chart_with_nothing_evaluated_says_how_to_get_it() -> None:
    fig = chrf_chart([])
    assert fig.data == () and fig.layout.title.text == NO_TRANSLATIONS
    assert "Evaluate translations" in NO_TRANSLATIONS and fig.layout.xaxis.visible is False


def spans(page: str) -> list[str]:
    return re.findall(r'<span class="tok"[^>]*>([^<]*)</span>', page)


def test_vietnamese_tone_marks_stay_on_their_letters() -> None:
    text = unicodedata.normalize("NFD", "Tiếng Việt")  # the tokenizer sees decomposed marks
    assert text == "Tie\u0302\u0301ng Vie\u0323\u0302t"
    tokens = ["Tie", "\u0302\u0301ng", " Vie", "\u0323\u0302", "t"]
    assert "".join(tokens) == text
    page = token_heatmap_html(tokens, [-1.0, -2.0, -3.0, -4.0, -5.0])
    assert spans(page) == ["Tiế", "ng", " Việ", "t"]
    assert not any(unicodedata.combining(s[0]) for s in spans(page))
    assert 'title="-3.000 + -4.000"' in page  # the marks-only token's value stays on hover
    assert 'title="-2.000"' in page and "".join(spans(page)) == "Tiếng Việt"


def test_a_leading_mark_with_nothing_before_it_stays_where_it_is() -> None:
    assert attach_combining_marks(["\u0301a", "b"], [-1.0, -2.0]) == [("\u0301a", [-1.0]), ("b", [-2.0])]
    assert attach_combining_marks(["ab", "c"], [0.0, -1.0]) == [("ab", [0.0]), ("c", [-1.0])]


def test_the_heatmap_scale_runs_from_white_at_zero_to_red_at_minus_ten() -> None:
    assert "0 nats" in HEATMAP_SCALE and "≤ −10 nats" in HEATMAP_SCALE
    assert "rgba(220, 38, 38, 0), rgba(220, 38, 38, 1)" in HEATMAP_SCALE


def test_line_chart_colours_and_names_runs_dashes_keys_and_fixes_the_range() -> None:
    points = [Point("#3", 1, "a", 0.5), Point("#3", 1, "b", 0.6), Point("#4", 1, "a", 0.7)]
    looks = {"#3": RunLook("#3 capo α=2", "#111111"), "#4": RunLook("#4 <b>dpo</b>", "#222222")}
    fig = line_chart(points, ["a", "b"], "Accuracy", looks=looks, y_range=(0, 1))
    assert [t.name for t in fig.data] == [
        "#3 capo α=2 · a",
        "#3 capo α=2 · b",
        "#4 &lt;b&gt;dpo&lt;/b&gt; · a",
    ]
    assert [t.line.color for t in fig.data] == ["#111111", "#111111", "#222222"]
    assert [t.line.dash for t in fig.data] == ["solid", "dash", "solid"]
    assert fig.layout.yaxis.range == (0, 1)


def test_a_chart_without_data_says_so_in_its_title() -> None:
    fig = line_chart([Point("#1", 1, "other", 1.0)], ["loss"], "Loss")
    assert fig.data == () and fig.layout.title.text == "Loss: nothing logged yet"
    assert fig.layout.xaxis.visible is False
    assert "no eval pair scores yet" in delta_distribution({}, "Δr").layout.title.text


def test_delta_boxes_take_each_runs_colour() -> None:
    fig = delta_distribution({"#1 capo": [("en-de", 1.0)]}, "Δr", {"#1 capo": "#123456"})
    assert fig.data[0].marker.color == "#123456"


def test_the_sweep_chart_needs_two_values_and_says_why_otherwise() -> None:
    one = SweepPoint(2.0, "eval", 0.7, 4, 0.6, 0.3)
    fig = sweep_or_why([one], "alpha", 1)
    title = fig.layout.title.text.replace("<br>", " ")
    assert fig.data == () and "Sweep over α: not drawn" in title and "1 selected, 1 with α = 2" in title
    assert "0 with α" in sweep_or_why([], "alpha", 2).layout.title.text.replace("<br>", " ")
    two = sweep_or_why([one, SweepPoint(0.5, "eval", 0.65, 2, 0.65, 0.4)], "alpha", 2)
    assert len(two.data) == 3 and two.layout.yaxis.range == (0, 1)
