"""Translation metrics equal sacrebleu on the same strings; tokeniser by target language; p-values."""

import pytest
from sacrebleu.metrics import BLEU, CHRF, TER

from capo.translation_quality import TranslationRow, bleu_tokenizer, paired_randomization, translation_quality
from capo_lab.translations import TranslationReport, _bars, metric_rows

DE_1 = ("Die Katze sitzt auf der Matte.", "Die Katze sass auf Matte.", "Die Katze sitzt auf der Matte.")
ROWS = [
    TranslationRow("en-de", *DE_1, base="Katze Matte."),
    TranslationRow("en-de", "Ein Hund bellt laut.", "Hund bellt.", "Ein Hund bellt.", "Der Hund."),
    TranslationRow("en-zh", "猫坐在垫子上。", "猫坐垫子。", "猫坐在垫子上。", "猫。"),
]


def test_tokeniser_suits_the_target_language():
    assert [bleu_tokenizer([d]) for d in ("en-de", "en-zh", "en-ja", "en-vi")] == ["13a", "zh", "char", "13a"]
    assert bleu_tokenizer(["en-de", "en-zh"]) == "char" and bleu_tokenizer(["en-de", "en-it"]) == "13a"


def test_scores_equal_sacrebleu_on_the_same_strings():
    de, zh, everything = translation_quality(ROWS)
    assert [q.direction for q in (de, zh, everything)] == ["en-de", "en-zh", "all"]
    hyps, refs, mts = [r.trained for r in ROWS[:2]], [r.post_edit for r in ROWS[:2]], [r.mt for r in ROWS[:2]]
    assert de.trained.chrf == pytest.approx(CHRF().corpus_score(hyps, [refs]).score)
    assert de.trained.bleu == pytest.approx(BLEU(tokenize="13a").corpus_score(hyps, [refs]).score)
    assert de.trained.ter == pytest.approx(TER().corpus_score(hyps, [refs]).score)
    assert de.trained.chrf_vs_mt == pytest.approx(CHRF().corpus_score(hyps, [mts]).score)
    assert zh.base.bleu == pytest.approx(
        BLEU(tokenize="zh").corpus_score(["猫。"], [["猫坐在垫子上。"]]).score
    )
    assert everything.n == 3 and everything.bleu_tokenizer == "char"


def test_p_values_are_well_formed_and_one_or_two_sentences_are_no_evidence():
    for q in translation_quality(ROWS):
        for p in (q.p_chrf, q.p_bleu, q.p_ter):
            assert 0.0 < p <= 1.0
    de, zh, _ = translation_quality(ROWS)
    # better on every sentence, but one or two sentences cannot show it (sacrebleu's bootstrap said 0.001)
    assert zh.n == 1 and zh.p_chrf == 1.0 and de.n == 2 and de.p_chrf > 0.05


REFS = ["Die Katze sitzt auf der Matte.", "Ein Hund bellt laut.", "Das Haus ist gross und alt."] * 10
WORSE = ["Die Katze sitzt auf Matte.", "Hund bellt.", "Das Haus ist alt."] * 10
AR_REFS = ["القطة تجلس على الحصيرة", "الكلب ينبح بصوت عال", "البيت كبير وقديم"] * 10


def test_identical_translations_give_p_one():
    assert paired_randomization(WORSE, list(WORSE), REFS) == {"bleu": 1.0, "chrf": 1.0, "ter": 1.0}
    spaced = [w.replace(" ", "  ") for w in WORSE]  # other strings, the same statistics and scores
    assert paired_randomization(WORSE, spaced, REFS) == {"bleu": 1.0, "chrf": 1.0, "ter": 1.0}
    rows = [TranslationRow("en-de", r, r, w, w) for r, w in zip(REFS, WORSE, strict=True)]
    for q in translation_quality(rows):
        assert (q.p_chrf, q.p_bleu, q.p_ter) == (1.0, 1.0, 1.0)


def test_two_systems_scoring_zero_give_p_one():
    """Issue 19: different outputs, neither sharing a character with the reference; sacrebleu's paired
    bootstrap gave chrF 0.00 → 0.00 and BLEU 0.00 → 0.00 p = 0.001."""
    base, trained = ["<|assistant|> <|assistant|>"] * 30, ["<|translator|> The cat sat"] * 30
    rows = [TranslationRow("en-ar", r, r, t, b) for r, t, b in zip(AR_REFS, trained, base, strict=True)]
    q = translation_quality(rows)[0]
    assert q.base.chrf == q.trained.chrf == 0.0 and q.base.bleu == q.trained.bleu == 0.0
    assert (q.p_chrf, q.p_bleu) == (1.0, 1.0)
    assert q.trained.ter != q.base.ter and q.p_ter < 0.01  # TER did move (longer outputs): still found


def test_a_difference_in_one_sentence_of_thirty_is_no_evidence():
    base = ["<|assistant|>"] * 30
    trained = ["<|assistant|> ة", *base[1:]]  # one reference character more: chrF 0 → 0.02
    p = paired_randomization(base, trained, AR_REFS)["chrf"]
    assert p == 1.0  # either side of the swap differs by exactly as much as observed: a tie, counted


def test_a_clear_difference_is_found():
    p = paired_randomization(WORSE, REFS, REFS)
    assert all(v < 0.05 for v in p.values()), p
    assert p == paired_randomization(REFS, WORSE, REFS)  # two-sided: the same either way round


def test_a_stored_report_with_equal_scores_reads_back_p_one_and_no_difference():
    rows = [TranslationRow("en-de", r, r, w, w) for r, w in zip(REFS, WORSE, strict=True)]
    report = TranslationReport(
        1, 4, "eval", len(rows), {"adapter": 0, "base": 0}, 0.1, translation_quality(rows)
    )
    values = {k.removeprefix("eval_translation/"): v for k, v in metric_rows(report)}
    bars = _bars(values, ["en-de"])
    assert [(b.direction, b.p_value, b.difference) for b in bars] == [("en-de", 1.0, 0.0), ("all", 1.0, 0.0)]
    # a report stored before the fix, with sacrebleu's p = 0.001 for equal scores, reads back p = 1
    stale = {"chrf": 0.0, "base_chrf": 0.0, "p_chrf": 1 / 1001, "chrf/en-ar": 3.0, "base_chrf/en-ar": 1.0,
             "p_chrf/en-ar": 1 / 1001}  # fmt: skip
    assert [b.p_value for b in _bars(stale, ["en-ar"])] == [1 / 1001, 1.0]


def test_no_base_no_test_and_no_rows_refused():
    alone = [TranslationRow(r.direction, r.post_edit, r.mt, r.trained) for r in ROWS]
    q = translation_quality(alone)[0]
    assert q.base is None and q.p_chrf is None
    with pytest.raises(ValueError, match="no translations"):
        translation_quality([])
