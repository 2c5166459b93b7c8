"""The HTML report as text: plotly.js once, a div per figure, a note per item without one, text escaped."""

from html.parser import HTMLParser

from plotly.offline import get_plotlyjs

from capo_lab.report_figures import report_items
from capo_lab.report_html import render
from tests.capo_lab.report_sample import run_name, sample_report


class Tags(HTMLParser):
    """Every start tag with its id, and the text of the page outside scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs).get("id")))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if not self._in_script:
            self.text.append(data)


def parse(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    return tags


def test_page_has_plotly_once_a_div_per_figure_and_a_note_per_missing_item() -> None:
    report = sample_report()
    page = render(report)
    plotly = get_plotlyjs()
    assert page.count(plotly[:300]) == 1
    assert 'src="http' not in page and "cdn" not in page.replace(plotly, "")  # opens offline
    ids = {i for _, i in parse(page).tags if i}
    for item in report_items(report):
        expected = f"fig-{item.key}" if item.figure is not None else f"note-{item.key}"
        assert expected in ids, item.key
    assert {"fig-accuracy", "fig-densities", "note-sweep", "note-translations"} <= ids
    assert "fig-sweep" not in ids


def test_user_text_is_escaped_and_shown_literally() -> None:
    report = sample_report()
    page = render(report)
    outside_plotly = page.replace(get_plotlyjs(), "")
    assert "<b>" not in outside_plotly  # figure JSON escapes "<" as \u003c
    tags = parse(page)
    assert ("b", None) not in tags.tags
    text = "".join(tags.text)
    assert "Study report: <b>cmp</b>" in text
    assert run_name("capo", 0) in text
    assert f"Not finished (left out of the figures): {run_name('dpo', 1)}" in text
    assert "No figure: the study does not vary objective.alpha." in text


def test_page_states_the_method_and_each_comparison_with_its_detectable_difference() -> None:
    from capo_lab.report_text import comparison_line, render_text

    report = sample_report()
    text = "".join(parse(render(report)).text)
    assert "unit: the pair" in text and "correction: Holm" in text and "selection: best" in text
    assert "endpoint: rewards/accuracies (a tie, post-edit = MT, counts as wrong)" in text
    # the sample's rows: none significant after Holm, each says what it could not detect (mde 0.3)
    assert text.count("could not detect differences smaller than 0.300") == len(report.comparisons)
    all_row = next(c for c in report.comparisons if c.direction == "all")
    line = comparison_line(all_row)
    assert line.startswith("capo − dpo, all directions: +0.250 [+0.000, +0.500], n = 8 pairs (seeds 0, 1)")
    assert "p = 0.508, Holm 0.508 (primary)" in line
    plain = render_text(report)
    assert plain.index("Primary comparisons") < plain.index(line) < plain.index("Per-direction comparisons")


def test_an_interval_prints_with_its_n_unit_and_seeds() -> None:
    from types import SimpleNamespace

    from capo_lab.report_text import _estimate

    interval = SimpleNamespace(estimate=10 / 16, low=0.41, high=0.8, n=16, seeds=2)
    assert _estimate(interval, "pairs") == "0.625 [0.410, 0.800]  n = 16 pairs × 2 seed(s)"
