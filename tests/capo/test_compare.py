"""A study's comparisons on hand-made scores: accuracies, paired tests, regimes, the BLEU-shift r."""

import numpy as np
import pytest

from capo.analysis.compare import (
    ArmScores,
    ScoredPair,
    accuracy_table,
    compare,
    regime_table,
    shift_correlation,
)


def pair(pid, direction, lw, ll, dlw=-0.1, dll=0.1):
    return ScoredPair(pid, direction, lw, ll, lw - 1, ll, dlw, dll)


# capo right on pairs 0-3 of en-de and 4 of en-zh; dpo right on 0 and 4-5
RIGHT, WRONG = (-1, -2), (-3, -2)
CAPO = [pair(i, "en-de", *RIGHT) for i in range(4)]
CAPO += [pair(4, "en-zh", *RIGHT), pair(5, "en-zh", *WRONG, dlw=0.2, dll=-0.1)]
DPO = [pair(0, "en-de", *RIGHT)] + [pair(i, "en-de", *WRONG) for i in (1, 2, 3)]
DPO += [pair(4, "en-zh", *RIGHT), pair(5, "en-zh", *RIGHT)]
RUNS = [ArmScores("capo", 0, 1, 10, tuple(CAPO)), ArmScores("dpo", 0, 2, 10, tuple(DPO))]


def test_accuracy_per_arm_and_direction():
    cells = {(c.arm, c.direction): c.interval for c in accuracy_table(RUNS, resamples=500)}
    assert cells[("capo", "en-de")].estimate == 1.0 and cells[("capo", "en-zh")].estimate == 0.5
    assert cells[("dpo", "en-de")].estimate == 0.25 and cells[("dpo", "all")].estimate == pytest.approx(3 / 6)
    assert cells[("capo", "all")].n == 6


def test_paired_comparison_counts_the_disagreements():
    rows = {r.direction: r for r in compare(RUNS, "capo", "dpo", resamples=500)}
    # en-de: capo alone right on 1, 2, 3 → only_a 3, only_b 0, p = 2·(½)³ = 0.25
    assert (rows["en-de"].only_a, rows["en-de"].only_b) == (3, 0)
    assert rows["en-de"].p_value == pytest.approx(0.25)
    assert rows["en-de"].difference.estimate == pytest.approx(0.75)
    # all: capo alone on 1, 2, 3; dpo alone on 5 → 3 vs 1, p = 2·(1 + 4)/16 = 0.625
    assert (rows["all"].only_a, rows["all"].only_b, rows["all"].p_value) == (3, 1, pytest.approx(0.625))


def test_regime_shares_before_and_after():
    rows = {(r.arm, r.direction, r.at): r for r in regime_table(RUNS, RUNS)}
    zh = rows[("capo", "en-zh", "trained")]
    assert (zh.chosen_down, zh.rejected_up, zh.toward_rejected, zh.n) == (0.5, 0.5, 0.5, 2)
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
    from capo.analysis.compare import regime_accuracy

    toward = pair(0, "en-de", *WRONG, dlw=0.2, dll=-0.1)
    start = ArmScores("capo", 0, 1, 0, (toward, pair(1, "en-de", *WRONG)))
    end = ArmScores("capo", 0, 1, 9, (pair(0, "en-de", *WRONG), pair(1, "en-de", *RIGHT)))
    rows = {(r.direction, r.regime): r for r in regime_accuracy([start], [end])}
    toward = rows[("en-de", "toward_rejected")]
    assert (toward.n, toward.accuracy_base, toward.accuracy_trained) == (1, 0.0, 0.0)
    assert (rows[("all", "none")].n, rows[("all", "none")].accuracy_trained) == (1, 1.0)
