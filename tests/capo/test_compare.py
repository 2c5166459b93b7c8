"""A study's comparisons on hand-made scores: accuracies, paired tests, Holm, the base arm, regimes."""

import numpy as np
import pytest

from capo.analysis.compare import (
    BASE,
    PER_DIRECTION,
    PRIMARY,
    ArmScores,
    ScoredPair,
    accuracy_table,
    base_arm,
    compare,
    compare_all,
    regime_accuracy,
    regime_table,
    shift_correlation,
)


def pair(pid, direction, lw, ll, tie=False):
    return ScoredPair(pid, direction, lw, ll, lw - 1, ll, 3, 4, tie)


# capo right on pairs 0-3 of en-de and 4 of en-zh; dpo right on 0 and 4-5
RIGHT, WRONG = (-1, -2), (-3, -2)
CAPO = [pair(i, "en-de", *RIGHT) for i in range(4)] + [pair(4, "en-zh", *RIGHT), pair(5, "en-zh", *WRONG)]
DPO = [pair(0, "en-de", *RIGHT)] + [pair(i, "en-de", *WRONG) for i in (1, 2, 3)]
DPO += [pair(4, "en-zh", *RIGHT), pair(5, "en-zh", *RIGHT)]
RUNS = [
    ArmScores("capo", 0, 1, 10, tuple(CAPO)),
    ArmScores("dpo", 0, 2, 10, tuple(DPO), "dpo", {"beta": 0.1}),
]


def test_a_tie_counts_as_wrong_whatever_its_float_noise():
    noisy_tie = ScoredPair(0, "en-de", -10.0, -10.0001, -10.0, -10.0, 5, 5, tie=True)
    assert noisy_tie.lw - noisy_tie.ll == pytest.approx(1e-4)
    assert not any(noisy_tie.correct(e) for e in ("accuracies", "accuracies_per_token", "accuracies_vs_base"))
    assert ScoredPair(0, "en-de", -10.0, -10.0001, -10.0, -10.0, 5, 5).correct()


def test_endpoints_by_hand():
    # lw −6 over 3 tokens = −2/token; ll −7 over 2 tokens = −3.5/token; base Δ₀ = −1 − (−2) = 1
    p = ScoredPair(0, "en-de", -6.0, -7.0, -1.0, -2.0, 3, 2)
    assert p.correct("accuracies")  # −6 > −7
    assert p.correct("accuracies_per_token")  # −2 > −3.5
    assert not p.correct("accuracies_vs_base")  # Δ − Δ₀ = 1 − 1 = 0, not > 0
    with pytest.raises(ValueError, match="unknown endpoint"):
        p.correct("bleu")


def test_accuracy_per_arm_and_direction():
    cells = {(c.arm, c.direction): c.interval for c in accuracy_table(RUNS)}
    assert cells[("capo", "en-de")].estimate == 1.0 and cells[("capo", "en-zh")].estimate == 0.5
    assert cells[("dpo", "en-de")].estimate == 0.25 and cells[("dpo", "all")].estimate == pytest.approx(3 / 6)
    assert cells[("capo", "all")].n == 6
    assert cells[("capo", "en-de")].high == 1.0 and cells[("capo", "en-de")].low < 1.0


def test_paired_comparison_counts_the_disagreements():
    rows = {r.direction: r for r in compare(RUNS, "capo", "dpo")}
    # en-de: capo alone right on 1, 2, 3 → only_a 3, only_b 0, p = 2·(½)³ = 0.25
    assert (rows["en-de"].only_a, rows["en-de"].only_b) == (3, 0)
    assert rows["en-de"].p_value == pytest.approx(0.25)
    assert rows["en-de"].difference.estimate == pytest.approx(0.75)
    # all: capo alone on 1, 2, 3; dpo alone on 5 → 3 vs 1, p = 2·(1 + 4)/16 = 0.625
    assert (rows["all"].only_a, rows["all"].only_b, rows["all"].p_value) == (3, 1, pytest.approx(0.625))
    assert rows["all"].family == PRIMARY and rows["en-de"].family == PER_DIRECTION
    assert 0 < rows["all"].mde <= 1


def test_seeds_are_matched_by_value_and_a_missing_one_is_named():
    runs = [*RUNS, ArmScores("capo", 1, 3, 10, tuple(CAPO))]
    row = {r.direction: r for r in compare(runs, "capo", "dpo")}["all"]
    assert row.seeds == (0,) and row.unmatched == ("capo seed 1",)
    assert row.p_value == pytest.approx(0.625)


def test_holm_within_each_family():
    runs = [*RUNS, *base_arm(RUNS)]
    rows = compare_all(runs)
    assert [(r.arm_a, r.arm_b) for r in rows if r.direction == "all"] == [
        ("capo", "dpo"), ("capo", BASE), ("dpo", BASE)
    ]  # fmt: skip
    for family in (PRIMARY, PER_DIRECTION):
        members = [r for r in rows if r.family == family]
        raw = sorted(r.p_value for r in members)
        smallest = min(members, key=lambda r: r.p_value)
        assert smallest.p_holm == pytest.approx(min(1.0, len(members) * raw[0]))
        assert all(r.p_holm >= r.p_value for r in members)


def test_the_base_arm_is_compared_like_any_other():
    base = base_arm([ArmScores("capo", 0, 1, 0, tuple(DPO))])  # step 0 looked like dpo's last step
    assert base[0].arm == BASE and base[0].seed is None
    two_seeds = [*RUNS, ArmScores("capo", 1, 3, 10, tuple(CAPO))]
    row = {r.direction: r for r in compare([*two_seeds, *base], "capo", BASE)}["all"]
    assert (row.only_a, row.only_b, row.seeds) == (3, 1, (0, 1))  # base matched to each capo seed
    cells = {(c.arm, c.direction): c.interval.estimate for c in accuracy_table([*RUNS, *base])}
    assert cells[(BASE, "all")] == pytest.approx(0.5)


def test_regimes_come_from_the_closed_form():
    saturated = ScoredPair(0, "en-de", -40.0, -2.0, -40.0, -2.0)  # z = 36.2, float gradients 0
    quiet = ScoredPair(1, "en-de", -5.0, -40.0, -5.0, -40.0)
    runs = [
        ArmScores("capo", 0, 1, 10, (saturated, quiet)),
        ArmScores("dpo", 0, 2, 10, (saturated,), "dpo", {}),
    ]
    rows = {(r.arm, r.direction, r.at): r for r in regime_table(runs, runs)}
    de = rows[("capo", "en-de", "trained")]
    assert (de.chosen_down, de.rejected_up, de.toward_rejected, de.n) == (0.5, 0.5, 0.5, 2)
    assert rows[("dpo", "all", "base")].chosen_down == 0.0


def test_shift_correlation_equals_numpy_on_its_own_values():
    runs = []
    for arm, offset in (("capo", 0.0), ("dpo", 1.0)):
        directions = enumerate(["a-b", "a-c", "a-d", "a-e"])
        pairs = [pair(k * 10 + j, d, -1.0 - offset * k, -2.0 - j) for k, d in directions for j in range(3)]
        runs.append(ArmScores(arm, 0, 1, 1, tuple(pairs)))
    bleu = {"a-b": 10.0, "a-c": 25.0, "a-d": 40.0, "a-e": 30.0}
    result = shift_correlation(runs, "capo", "dpo", bleu)
    assert result.directions == ("a-b", "a-c", "a-d", "a-e")
    assert result.shift == pytest.approx((0.0, 1.0, 2.0, 3.0))  # capo's mean Δr minus dpo's
    assert result.correlation.r == pytest.approx(np.corrcoef(result.bleu, result.shift)[0, 1])
    assert result.correlation.n == 4


def test_accuracy_change_within_each_starting_regime():
    toward = ScoredPair(0, "en-de", -30.0, -5.0, -30.0, -5.0)  # ll −5 > −20 and 25 < 20·30: both flags
    start = ArmScores("capo", 0, 1, 0, (toward, ScoredPair(1, "en-de", -5.0, -40.0, None, None)))
    end = ArmScores("capo", 0, 1, 9, (ScoredPair(0, "en-de", -30.0, -6.0, None, None),
                                      ScoredPair(1, "en-de", -5.0, -41.0, None, None)))  # fmt: skip
    rows = {(r.direction, r.regime): r for r in regime_accuracy([start], [end])}
    toward_row = rows[("en-de", "toward_rejected")]
    assert (toward_row.n, toward_row.accuracy_base, toward_row.accuracy_trained) == (1, 0.0, 0.0)
    assert (rows[("all", "none")].n, rows[("all", "none")].accuracy_trained) == (1, 1.0)
