import sacrebleu

from capo.data.stats import bleu_tokenizer, direction_stats
from capo.data.triples import PreferencePair


def pair(direction: str, chosen: str, rejected: str, hter: float | None = None) -> PreferencePair:
    return PreferencePair(direction, "train", "p", chosen, rejected, "source text", "t", hter)


def test_bleu_and_chrf_score_mt_against_post_edit() -> None:
    pairs = [
        pair("en-de", "Das ist ein Haus .", "Das ist ein Haus .", 0.0),
        pair("en-de", "Er geht nach Hause .", "Er läuft heim .", 0.5),
    ]
    (stats,) = direction_stats(pairs)
    expected = sacrebleu.corpus_bleu(
        ["Das ist ein Haus .", "Er läuft heim ."], [["Das ist ein Haus .", "Er geht nach Hause ."]]
    )
    assert stats.bleu == expected.score
    assert 0 < stats.chrf < 100
    assert stats.mean_hter == 0.25
    assert stats.mean_chosen_chars == (18 + 20) / 2


def test_chinese_uses_the_zh_tokenizer() -> None:
    assert bleu_tokenizer("en-zh") == "zh"
    assert bleu_tokenizer("en-de") == "13a"
    (stats,) = direction_stats([pair("en-zh", "我们今天去公园", "我们明天去公园")])
    assert stats.bleu == sacrebleu.corpus_bleu(["我们明天去公园"], [["我们今天去公园"]], tokenize="zh").score
    assert stats.bleu > 0


def test_tokens_per_character_uses_the_given_counter() -> None:
    (stats,) = direction_stats(
        [pair("en-de", "abcd", "x"), pair("en-de", "ef", "y")], count_tokens=lambda text: len(text) // 2
    )
    assert stats.tokens_per_char == (2 + 1) / 6


def test_directions_are_reported_separately_and_sorted() -> None:
    stats = direction_stats([pair("en-zh", "好", "好"), pair("en-de", "a", "b"), pair("en-de", "c", "d")])
    assert [(s.direction, s.pairs) for s in stats] == [("en-de", 2), ("en-zh", 1)]
    assert stats[0].mean_hter is None


def test_ties_count_post_edits_equal_to_the_mt_after_whitespace_normalisation() -> None:
    stats = direction_stats(
        [
            pair("en-de", "Das ist gut .", "Das  ist gut .\n"),  # a tie: only whitespace differs
            pair("en-de", "Das ist gut .", "Das ist gut"),  # not a tie: punctuation differs
            pair("en-de", "Er kommt .", "Er kommt ."),
            pair("en-zh", "好", "不好"),
        ]
    )
    assert [(s.direction, s.pairs, s.ties) for s in stats] == [("en-de", 3, 2), ("en-zh", 1, 0)]
    assert stats[0].as_dict()["ties"] == 2


def test_ties_are_counted_with_the_one_rule() -> None:
    # "Das  Haus ." and "Das Haus ." collapse to the same words; "das Haus ." differs in case.
    (stats,) = direction_stats(
        [pair("en-de", "Das  Haus .", "Das Haus ."), pair("en-de", "Das Haus .", "das Haus .")]
    )
    assert stats.ties == 1
