"""ROUGE-L with per-language tokenisation; the arithmetic is written out."""

from __future__ import annotations

import pytest

from capo.benchmarks.rouge import lcs_length, rouge_l, tokenize


def test_lcs_of_one_pair_by_hand() -> None:
    # a = A B C B D A B, b = B D C A B A: one LCS is B C B A (a: 2,3,4,6; b: 1,3,5,6), length 4
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4
    assert lcs_length([], list("abc")) == 0


def test_english_words_split_on_spaces_and_punctuation() -> None:
    assert tokenize("Skype's new version, released today!", "en") == [
        "skype",
        "s",
        "new",
        "version",
        "released",
        "today",
    ]
    # candidate 6 tokens, reference 5: the cat sat on the mat / the cat was on mat
    # LCS = the cat on mat = 4; P = 4/6, R = 4/5, F = 2·(2/3)(4/5)/((2/3)+(4/5)) = (16/15)/(22/15) = 8/11
    score = rouge_l("The cat sat on the mat.", "the cat was on mat", "en")
    assert score.precision == pytest.approx(4 / 6)
    assert score.recall == pytest.approx(4 / 5)
    assert score.f1 == pytest.approx(8 / 11)


def test_chinese_is_scored_by_characters_not_zero() -> None:
    # tokens: 今 天 北 京 下 雨 (6) against 北 京 今 天 下 雨 了 (7); LCS 今天下雨 or 北京下雨 = 4
    assert tokenize("今天北京下雨。", "zh") == ["今", "天", "北", "京", "下", "雨"]
    score = rouge_l("今天北京下雨。", "北京今天下雨了", "zh")
    assert score.f1 > 0
    assert score.precision == pytest.approx(4 / 6) and score.recall == pytest.approx(4 / 7)
    # split on spaces only, each Chinese sentence is one token, and two different sentences share none
    assert tokenize("今天北京下雨。", "en") == ["今天北京下雨"]
    assert rouge_l("今天北京下雨。", "北京今天下雨了", "en").f1 == 0.0


def test_japanese_mixes_characters_and_latin_words() -> None:
    assert tokenize("東京でiPhone 15を買った。", "ja") == [
        "東",
        "京",
        "で",
        "iphone",
        "15",
        "を",
        "買",
        "っ",
        "た",
    ]


def test_cyrillic_arabic_and_vietnamese_are_words() -> None:
    assert tokenize("Київ, столиця України.", "uk") == ["київ", "столиця", "україни"]
    assert tokenize("القاهرة عاصمة مصر", "ar") == ["القاهرة", "عاصمة", "مصر"]
    assert tokenize("Hà Nội là thủ đô.", "vi") == ["hà", "nội", "là", "thủ", "đô"]
    assert rouge_l("Київ столиця", "Київ, столиця України", "uk").recall == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("candidate", "reference"),
    [
        (
            "The new version of Skype will conserve laptop battery life.",
            "Skype saves laptop battery by pausing.",
        ),
        (
            "Microsoft released a new Skype; it pauses in the background.",
            "A new Skype pauses when idle, Microsoft says.",
        ),
        ("Nothing in common", "entirely different words here"),
    ],
)
def test_english_matches_rouge_score_without_stemming(candidate: str, reference: str) -> None:
    """On plain ASCII English the word rule is rouge-score's own (lower case, [a-z0-9] runs)."""
    from rouge_score import rouge_scorer

    expected = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False).score(reference, candidate)["rougeL"]
    assert rouge_l(candidate, reference, "en").f1 == pytest.approx(expected.fmeasure)
