"""The Inspect tab shows a pair's generated translations with chrF and a word diff, every text escaped."""

from app.tab_inspect import NO_TRANSLATIONS_HTML, translations_html
from capo_lab.translations import PairTranslations

IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = "<script>window.__xss=2</script>"


def found(trained: str | None = "Das ist der Satz", base: str | None = "Dies Satz") -> PairTranslations:
    pe, mt = "Das ist der Satz .", "Das ist Satz falsch ."
    return PairTranslations(7, 40, "eval", pe, mt, trained, base, 81.25, 12.5 if base else None, 55.0)


def test_each_translation_has_its_chrf_and_a_word_diff_to_the_post_edit():
    page = translations_html(found())
    assert "adapter at step 40" in page and "eval split" in page
    for name, score in (("MT", "55.0"), ("base model", "12.5"), ("trained adapter", "81.2")):
        row = page.split(f"<tr><td>{name}</td>", 1)[1].split("</tr>", 1)[0]
        assert f"<td>{score}</td>" in row, row
    trained = page.split("<tr><td>trained adapter</td>", 1)[1]
    assert (
        "<td>Das ist der Satz</td>" in trained
        and '<div class="diff">Das ist der Satz <ins>.</ins>' in trained
    )
    base = page.split("<tr><td>base model</td>", 1)[1]
    assert "<del>Dies</del> <ins>Das ist der</ins> Satz <ins>.</ins>" in base
    reference = page.split("<tr><td>post-edit (reference)</td>", 1)[1].split("</tr>", 1)[0]
    assert "diff" not in reference  # the reference is not diffed against itself


def test_a_model_that_was_not_run_says_so():
    page = translations_html(found(base=None))
    assert "<tr><td>base model</td><td colspan=3><em>not generated</em></td></tr>" in page


def test_generated_and_dataset_texts_are_escaped():
    hostile = PairTranslations(
        1, 2, "eval", f"pe {SCRIPT}", f"mt {IMG}", f"<b>x</b> {IMG}", SCRIPT, 1.0, 2.0, 3.0
    )
    page = translations_html(hostile)
    for tag in ("<script", "<img", "<b>"):
        assert tag not in page, page
    assert "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;" in page


def test_without_translations_one_line_says_how_to_get_them():
    assert translations_html(None) == NO_TRANSLATIONS_HTML
    assert "Evaluate translations" in NO_TRANSLATIONS_HTML and "Runs tab" in NO_TRANSLATIONS_HTML
    assert "\n" not in NO_TRANSLATIONS_HTML
