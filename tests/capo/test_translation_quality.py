"""Translation metrics equal sacrebleu on the same strings; tokeniser by target language; p-values."""

import pytest
from sacrebleu.metrics import BLEU, CHRF, TER

from capo.translation_quality import TranslationRow, bleu_tokenizer, translation_quality

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


def test_paired_bootstrap_p_values_are_well_formed():
    for q in translation_quality(ROWS):
        for p in (q.p_chrf, q.p_bleu, q.p_ter):
            assert 0.0 < p <= 1.0
    # the trained system is better on every sentence: the test finds it (p at its floor, 1/1001)
    assert translation_quality(ROWS)[-1].p_chrf == pytest.approx(1 / 1001)
    same = [TranslationRow(r.direction, r.post_edit, r.mt, r.trained, r.trained) for r in ROWS]
    assert translation_quality(same)[-1].p_chrf == pytest.approx(1.0)  # identical systems: no evidence


def test_no_base_no_test_and_no_rows_refused():
    alone = [TranslationRow(r.direction, r.post_edit, r.mt, r.trained) for r in ROWS]
    q = translation_quality(alone)[0]
    assert q.base is None and q.p_chrf is None
    with pytest.raises(ValueError, match="no translations"):
        translation_quality([])
