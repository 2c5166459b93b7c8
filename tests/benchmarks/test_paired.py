"""Two arms on the same items through capo.analysis.stats; the arithmetic is written out."""

from __future__ import annotations

import pytest

from capo.benchmarks.paired import ALL, compare_scores, compare_verdicts


def scores(language: str, values: list[float]) -> dict[tuple[str, str], list[float]]:
    return {(language, str(i)): [v] for i, v in enumerate(values, 1)}


def test_mifeval_prompt_level_verdicts() -> None:
    # 10 prompts: arm a follows 1-7, arm b 1-4 -> d = 0.3; 3 discordant, all for a
    a = scores("en", [1] * 7 + [0] * 3)
    b = scores("en", [1] * 4 + [0] * 6)
    en, overall = compare_scores("m-ifeval", "prompt_strict", ("capo", "dpo"), a, b)
    assert (en.language, overall.language) == ("en", ALL)
    assert (en.mean_a, en.mean_b) == (pytest.approx(0.7), pytest.approx(0.4))
    assert en.difference.estimate == pytest.approx(0.3) and en.difference.n == 10
    assert (en.only_a, en.only_b) == (3, 0)
    assert en.p_value == pytest.approx(2 * 0.5**3)  # exact McNemar: both all-a and all-b of 3 signs
    # Tango's statistic at delta 0 is 3/sqrt(3) = 1.73 < 1.96: 0 stays inside the interval
    assert en.difference.low < 0 < 0.3 < en.difference.high <= 1


def test_rouge_scores_and_missing_items() -> None:
    a = {("zh", "1"): [0.5], ("zh", "2"): [0.4], ("zh", "3"): [0.9], ("zh", "4"): [0.1]}
    b = {("zh", "1"): [0.3], ("zh", "2"): [0.4], ("zh", "3"): [0.2]}
    zh = compare_scores("xlsum", "rouge_l", ("capo", "base"), a, b)[0]
    # item 4 has no score under b; d = 0.2, 0, 0.7 -> mean 0.9/3 = 0.3; a higher on 2 items, b on none
    assert zh.missing == 1 and zh.difference.n == 3
    assert zh.difference.estimate == pytest.approx(0.3)
    assert (zh.only_a, zh.only_b, zh.p_value) == (2, 0, pytest.approx(2 * 0.5**2))


def test_mt_bench_points_stay_on_the_1_to_10_scale() -> None:
    a, b = scores("de", [8, 6]), scores("de", [5, 6])
    de = compare_scores("mt-bench", "score", ("capo", "dpo"), a, b, low=1, high=10)[0]
    # means 7 and 5.5; on [0, 1] the differences are 3/9 and 0, mean 1/6, which is 1.5 points
    assert (de.mean_a, de.mean_b) == (pytest.approx(7.0), pytest.approx(5.5))
    assert de.difference.estimate == pytest.approx(1.5)
    assert -9 <= de.difference.low < 1.5 < de.difference.high <= 9


def test_holm_across_languages() -> None:
    a = scores("en", [1, 1, 1]) | scores("fr", [1, 1, 0])
    b = scores("en", [0, 0, 0]) | scores("fr", [0, 0, 0])
    en, fr, _ = compare_scores("m-ifeval", "prompt_loose", ("a", "b"), a, b)
    # raw p: en 3 discordant -> 0.25, fr 2 -> 0.5; Holm: 2 x 0.25 = 0.5, then max(0.5, 1 x 0.5) = 0.5
    assert (en.p_value, fr.p_value) == (pytest.approx(0.25), pytest.approx(0.5))
    assert (en.p_holm, fr.p_holm) == (pytest.approx(0.5), pytest.approx(0.5))


def test_judge_verdicts_win_rate_and_sign_test() -> None:
    outcomes = {("es", str(i)): o for i, o in enumerate(["a"] * 6 + ["b"] + ["tie"] * 3 + ["unjudged"] * 2)}
    es, overall = compare_verdicts(outcomes)
    # 10 judged (2 unjudged left out): win rate 6/10, net (6 - 1)/10 = 0.5
    assert (es.judged, es.wins, es.losses) == (10, 6, 1)
    assert es.win_rate.estimate == pytest.approx(0.6) and es.net.estimate == pytest.approx(0.5)
    # 7 discordant items, 6 vs 1: P(X >= 6 or X <= 1), X ~ Bin(7, 1/2) = 2 x (1 + 7)/128
    assert es.p_value == pytest.approx(16 / 128)
    assert overall.language == ALL and overall.judged == 10


def test_an_always_answer_a_judge_gives_no_winner() -> None:
    es = compare_verdicts({("es", str(i)): "tie" for i in range(5)})[0]
    assert (es.wins, es.losses, es.win_rate.estimate, es.net.estimate, es.p_value) == (0, 0, 0.0, 0.0, 1.0)
