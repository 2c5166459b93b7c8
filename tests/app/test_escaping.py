"""Text from a dataset or a user reaches gr.HTML, gr.Markdown and gr.Error only escaped."""

import gradio as gr
import pytest
from markdown_it import MarkdownIt

from app.charts import token_heatmap_html, word_diff_html
from app.common import markdown_text, shows_errors
from app.tab_inspect import numbers_markdown, pair_html
from capo_lab.errors import LabError
from capo_lab.records import PairDetail, PairScoreRecord, PairTokens

IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = "<script>window.__xss=2</script>"
HOSTILE = f"The <b>weather</b> {IMG} is fine {SCRIPT} today."


def detail(text: str, direction: str = "en-de", tokens: bool = True) -> PairDetail:
    score = PairScoreRecord(
        run_id=1,
        step=4,
        split="eval",
        pair_id=7,
        direction=direction,
        logp_chosen=-3.0,
        logp_rejected=-4.0,
        n_tokens_chosen=3,
        n_tokens_rejected=4,
        ref_logp_chosen=None,
        ref_logp_rejected=None,
        rrm=0.75,
        loss=0.5,
        reward_margin=0.1,
        grad_chosen={"dpo": -0.1},
        grad_rejected={"dpo": 0.1},
    )
    found = PairTokens((SCRIPT, "ok"), (-1.0, -2.0), (IMG,), (-3.0,))
    return PairDetail(
        run_id=1,
        step=4,
        pair_id=7,
        direction=direction,
        source=text,
        prompt=text,
        chosen=text + " <i>edited</i>",
        rejected=text,
        score=score,
        history=(),
        tokens=found if tokens else None,
    )


def assert_no_markup(page: str) -> None:
    for tag in ("<script", "<img", "<b>", "<i>"):
        assert tag not in page, page


def test_pair_html_escapes_the_source_the_diff_and_the_tokens() -> None:
    page = pair_html(detail(HOSTILE))
    assert_no_markup(page)
    assert "&lt;script&gt;window.__xss=2&lt;/script&gt;" in page
    assert "<p>The &lt;b&gt;weather&lt;/b&gt; &lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;" in page
    assert "&lt;i&gt;edited&lt;/i&gt;" in page and page.count("<h4>") == 4


def test_word_diff_and_heatmap_escape_markup() -> None:
    assert_no_markup(word_diff_html(HOSTILE, HOSTILE.replace("fine", "<b>grand</b>")))
    assert_no_markup(token_heatmap_html([IMG, SCRIPT], [-1.0, -2.0]))


@pytest.mark.parametrize("text", [IMG, SCRIPT, "**bold** | `code` [link](javascript:x) _em_ #h", "a\n\n# b"])
def test_markdown_text_renders_as_the_literal_text(text: str) -> None:
    rendered = MarkdownIt("commonmark").enable("table").render(markdown_text(text))
    assert rendered == f"<p>{escape_like_markdown_it(' '.join(text.split()))}</p>\n"


def escape_like_markdown_it(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def test_numbers_markdown_shows_a_hostile_direction_literally_and_keeps_the_table() -> None:
    source = numbers_markdown(detail("x", direction=f"{IMG} | **en-de**"))
    rendered = MarkdownIt("commonmark").enable("table").render(source)
    assert_no_markup(rendered)
    assert rendered.count("<strong>") == 2  # "Pair 7" and "total" only
    assert "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt; | **en-de**" in rendered
    assert rendered.count("<table>") == 2


def test_errors_shown_on_the_page_are_escaped() -> None:
    @shows_errors
    def fails() -> None:
        raise LabError(f"no dataset named {IMG}")

    with pytest.raises(gr.Error) as caught:
        fails()
    assert caught.value.message == "no dataset named &lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;"
