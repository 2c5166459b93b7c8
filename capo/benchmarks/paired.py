"""Two arms on the same benchmark items, per language and overall, with ``capo.analysis.stats``.

The item is the unit of inference, as the pair is for reward accuracy. An arm's scores are a mapping
(language, item id) → one score per seed; seeds are matched by position, and only items scored under
both arms are compared (the others are counted as ``missing``).

- **Scores in a range** (M-IFEval's 0/1 prompt-level verdicts; ROUGE-L in [0, 1]; MT-Bench's 1–10
  turn mean) are mapped to [0, 1] by (s − low)/(high − low). The difference of means gets
  ``paired_difference_interval`` (Tango's score interval; with fractional per-item differences it is
  conservative, see its docstring), reported back on the metric's own scale. The p-value is the exact
  sign test on which arm scored higher per item: ``sign_flip_test`` on the two indicator vectors
  (exact McNemar), which needs no distributional assumption about the scores.
- **Judge verdicts** (XLSum pairwise): A_i = 1 when arm a won item i, B_i = 1 when arm b won; ties
  are 0 for both and unjudged items are left out. The same two methods give (wins − losses)/judged and
  the exact sign test of wins against losses; ``proportion_interval`` gives the win rate's interval.

Per-language p-values are Holm-adjusted within each (suite, metric) family; "all" is its own family.
Every comparison also carries ``mde``: the smallest mean difference (on the metric's scale) a paired
test had 80 % power to detect at alpha 0.05, from n and the observed E[d²] of the per-item
differences (``capo.analysis.stats.minimum_detectable_effect``, as the study report gives it for
reward accuracy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from capo.analysis.stats import (
    Interval,
    holm,
    minimum_detectable_effect,
    paired_difference_interval,
    proportion_interval,
    sign_flip_test,
)

ALL = "all"
Key = tuple[str, str]  # (language, item id)


@dataclass(frozen=True)
class ArmComparison:
    suite: str
    metric: str
    language: str
    arm_a: str
    arm_b: str
    mean_a: float
    mean_b: float
    difference: Interval  # mean(A − B) on the metric's scale, with its 95 % interval
    only_a: int  # items where arm a scored higher
    only_b: int
    p_value: float
    p_holm: float
    missing: int = 0  # items scored under one arm only
    test: str = "exact sign test (sign_flip_test on per-item 'scored higher' indicators)"
    mde: float = 0.0  # smallest |mean difference| detectable, 80 % power at alpha 0.05, metric's scale


def detectable_difference(a: np.ndarray, b: np.ndarray) -> float:
    """``minimum_detectable_effect`` of the per-item seed-mean differences of two [seeds, items] tables."""
    differences = np.atleast_2d(a).mean(axis=0) - np.atleast_2d(b).mean(axis=0)
    return minimum_detectable_effect(len(differences), float(np.mean(differences**2)))


def _table(scores: Mapping[Key, Sequence[float]], keys: Sequence[Key], low: float, high: float) -> np.ndarray:
    """``[seeds, items]`` of (s − low)/(high − low)."""
    return (np.array([scores[k] for k in keys], dtype=float).T - low) / (high - low)


def _one(suite, metric, language, arms, a, b, keys, missing, low, high) -> ArmComparison:
    ta, tb = _table(a, keys, low, high), _table(b, keys, low, high)
    span = high - low
    d = paired_difference_interval(ta, tb)
    higher_a, higher_b = ta.mean(axis=0) > tb.mean(axis=0), tb.mean(axis=0) > ta.mean(axis=0)
    test = sign_flip_test(higher_a.astype(float), higher_b.astype(float))
    interval = Interval(d.estimate * span, d.low * span, d.high * span, d.n, d.seeds)
    mean_a, mean_b = float(ta.mean()) * span + low, float(tb.mean()) * span + low
    return ArmComparison(
        suite,
        metric,
        language,
        *arms,
        mean_a,
        mean_b,
        interval,
        test.only_a,
        test.only_b,
        test.p_value,
        1.0,
        missing,
        mde=detectable_difference(ta, tb) * span,
    )


def compare_scores(
    suite: str,
    metric: str,
    arms: tuple[str, str],
    a: Mapping[Key, Sequence[float]],
    b: Mapping[Key, Sequence[float]],
    low: float = 0.0,
    high: float = 1.0,
) -> list[ArmComparison]:
    """Arm a against arm b per language (Holm-adjusted together), then over all languages."""
    shared = sorted(set(a) & set(b))
    missing = len(set(a) ^ set(b))
    languages = sorted({language for language, _ in shared})
    rows = [
        _one(
            suite,
            metric,
            lang,
            arms,
            a,
            b,
            [k for k in shared if k[0] == lang],
            _missing(a, b, lang),
            low,
            high,
        )
        for lang in languages
    ]
    adjusted = holm([r.p_value for r in rows]) if rows else []
    rows = [replace(r, p_holm=p) for r, p in zip(rows, adjusted, strict=True)]
    if shared:
        overall = _one(suite, metric, ALL, arms, a, b, shared, missing, low, high)
        rows.append(replace(overall, p_holm=overall.p_value))
    return rows


def _missing(a: Mapping[Key, object], b: Mapping[Key, object], language: str) -> int:
    return len({k for k in set(a) ^ set(b) if k[0] == language})


@dataclass(frozen=True)
class WinComparison:
    """Judge verdicts of arm a against arm b: the win rate over judged items and wins vs losses."""

    language: str
    judged: int
    win_rate: Interval  # share of judged items arm a won, Clopper–Pearson
    net: Interval  # (wins − losses)/judged, Tango
    wins: int
    losses: int
    p_value: float
    p_holm: float = 1.0
    mde: float = 0.0  # smallest |net| (wins − losses)/judged detectable, 80 % power at alpha 0.05


def compare_verdicts(outcomes: Mapping[Key, str]) -> list[WinComparison]:
    """Per language (Holm-adjusted) then overall, from outcomes ``a``/``b``/``tie``/``unjudged``."""
    judged = {k: o for k, o in outcomes.items() if o in ("a", "b", "tie")}
    languages = sorted({language for language, _ in judged})
    rows = [_wins(lang, [o for k, o in judged.items() if k[0] == lang]) for lang in languages]
    adjusted = holm([r.p_value for r in rows]) if rows else []
    rows = [replace(r, p_holm=p) for r, p in zip(rows, adjusted, strict=True)]
    if judged:
        overall = _wins(ALL, list(judged.values()))
        rows.append(replace(overall, p_holm=overall.p_value))
    return rows


def _wins(language: str, outcomes: Sequence[str]) -> WinComparison:
    won = np.array([o == "a" for o in outcomes], dtype=float)
    lost = np.array([o == "b" for o in outcomes], dtype=float)
    test = sign_flip_test(won, lost)
    rate, net = proportion_interval(won), paired_difference_interval(won, lost)
    return WinComparison(
        language,
        len(outcomes),
        rate,
        net,
        test.only_a,
        test.only_b,
        test.p_value,
        mde=detectable_difference(won, lost),
    )
