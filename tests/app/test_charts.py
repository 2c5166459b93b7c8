import plotly.graph_objects as go

from app.charts import (
    NO_TRANSLATIONS,
    Point,
    bar_chart,
    chrf_chart,
    delta_distribution,
    direction_keys,
    downsample,
    line_chart,
    significance_mark,
    sweep_chart,
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


def test_chrf_chart_draws_base_beside_trained_with_marks_over_the_trained_bars() -> None:
    bars = [
        DirectionChrf("en-de", 40.0, 45.0, 0.004),
        DirectionChrf("en-it", 50.0, 49.0, 0.3),
        DirectionChrf("all", 45.0, 47.0, 0.03),
    ]
    fig = chrf_chart(bars, "chrF · #1 smoke")
    base, trained = fig.data
    assert (base.name, trained.name) == ("base", "trained")
    assert list(base.x) == ["en-de", "en-it", "all"] and list(base.y) == [40.0, 50.0, 45.0]
    assert list(trained.y) == [45.0, 49.0, 47.0] and list(trained.text) == ["**", "", "*"]
    assert list(trained.hovertext) == ["p = 0.0040", "p = 0.3000", "p = 0.0300"]
    assert fig.layout.title.text == "chrF · #1 smoke"
    note = fig.layout.annotations[0].text
    assert "* p < 0.05" in note and "** p < 0.01" in note
    assert "sacrebleu's paired bootstrap" in note


def test_chrf_chart_without_base_draws_the_trained_bars_only() -> None:
    fig = chrf_chart([DirectionChrf("all", None, 30.0, None)])
    assert [t.name for t in fig.data] == ["trained"] and list(fig.data[0].text) == [""]


def test_chrf_chart_with_nothing_evaluated_says_how_to_get_it() -> None:
    fig = chrf_chart([])
    assert fig.data == () and fig.layout.title.text == NO_TRANSLATIONS
    assert "Evaluate translations" in NO_TRANSLATIONS and fig.layout.xaxis.visible is False
