import plotly.graph_objects as go

from app.charts import (
    Point,
    bar_chart,
    delta_distribution,
    direction_keys,
    downsample,
    line_chart,
    sweep_chart,
    token_heatmap_html,
    word_diff_html,
)
from capo.analysis.sweep import SweepPoint


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
