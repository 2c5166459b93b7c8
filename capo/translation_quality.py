"""Translation quality of generations: chrF, BLEU, TER (sacrebleu), COMET, and a paired significance test.

References are the human post-edits. chrF against the raw MT is reported too, so a
reader sees whether training moved the model toward the post-edit or toward the MT.
BLEU is tokenised for the target language (``zh`` for Chinese, character level for
Japanese, Korean and Thai, ``13a`` otherwise); the ``all`` row pools every sentence,
with character-level BLEU when its directions need different tokenisers.

Significance, per direction and overall, is a two-sided paired approximate randomization
test (a sign-flip permutation test; Riezler & Maxwell 2005, sacrebleu's ``ar``) of "no
difference" between the trained and the base system, on sacrebleu's own sentence
statistics and corpus-level scores. Under the null the two systems' outputs of a sentence
are exchangeable, so each of R = 1000 trials (seed ``SACREBLEU_SEED``, 12345 by default)
swaps every sentence's pair of outputs with probability 1/2 and rescores; with observed
difference d = trained − base and trial differences d_r,

    p = (1 + #{r : |d_r| >= |d|}) / (R + 1).

Ties count as at least as extreme (``>=``, within ``TIE`` score points), so equal scores
(identical outputs, or both systems at 0) give p = 1, a single sentence gives p = 1, and p
is never below 1/1001. sacrebleu's own ``PairedTest`` is not used (issue 19): both its
tests count only trials strictly beyond d, so equal scores got its floor, p = 0.001; and
a paired bootstrap, even with ties counted, rejects a true null far too often on the few
sentences a direction has here (simulated, at 0.05: every time for 1 sentence, 18 % for 4,
10 % for 8), where this test holds its level (0 %, 0 %, 4 %).

COMET (``capo.comet_metric``) scores each sentence; a system's score is the mean over its
sentences, so the same randomization needs no rescoring: swapping a sentence's two outputs flips
the sign of its difference, and each trial's difference is the mean of the signed differences
(``paired_mean_randomization``; its level is checked by a seeded simulation in the tests).
Which metrics are computed is the caller's choice (``METRICS``, ``parse_metrics``).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sacrebleu.metrics import BLEU, CHRF, TER

from capo.errors import UserError

LEXICAL = ("chrf", "bleu", "ter")
METRICS = (*LEXICAL, "comet")
CHARACTER_LEVEL = frozenset({"ja", "ko", "th"})
ALL = "all"
TRIALS = 1000
TIE = 1e-9  # score points: differences this small are float noise, i.e. equal scores


@dataclass(frozen=True)
class TranslationRow:
    direction: str
    post_edit: str
    mt: str
    trained: str
    base: str | None = None
    source: str = ""  # the source sentence: COMET reads it


@dataclass(frozen=True)
class Scores:
    """A system's corpus scores; None: the metric was not asked for."""

    chrf: float | None
    bleu: float | None
    ter: float | None
    chrf_vs_mt: float | None
    comet: float | None = None


@dataclass(frozen=True)
class DirectionQuality:
    direction: str
    n: int
    bleu_tokenizer: str
    trained: Scores
    base: Scores | None
    p_chrf: float | None  # paired approximate randomization, trained vs base (two-sided)
    p_bleu: float | None
    p_ter: float | None
    p_comet: float | None = None


# COMET's scorer (``capo.comet_metric.CometScorer.scores``): (source, translation, reference) → scores
SegmentScorer = Callable[[list[tuple[str, str, str]]], list[float]]


def parse_metrics(text: str) -> tuple[str, ...]:
    """``"chrf,bleu,ter,comet"`` → the metrics in ``METRICS`` order; one line for an unknown name."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        given = ", ".join(unknown) or "(none given)"
        raise UserError(f"unknown metric {given}: choose from {', '.join(METRICS)}")
    return tuple(m for m in METRICS if m in names)


def bleu_tokenizer(directions: Sequence[str]) -> str:
    """The sacrebleu tokeniser that suits the target language(s) of ``directions``."""
    targets = {d.split("-")[-1] for d in directions}
    kinds = {"zh" if t == "zh" else "char" if t in CHARACTER_LEVEL else "13a" for t in targets}
    return kinds.pop() if len(kinds) == 1 else "char"


def _metrics(tokenizer: str, metrics: Sequence[str] = LEXICAL) -> dict[str, BLEU | CHRF | TER]:
    found = {"bleu": BLEU(tokenize=tokenizer), "chrf": CHRF(), "ter": TER()}
    return {name: metric for name, metric in found.items() if name in metrics}


def _scores(hyps, refs, mts, tokenizer: str, metrics: Sequence[str], comet: np.ndarray | None) -> Scores:
    corpus = {name: m.corpus_score(hyps, [refs]).score for name, m in _metrics(tokenizer, metrics).items()}
    return Scores(
        chrf=corpus.get("chrf"),
        bleu=corpus.get("bleu"),
        ter=corpus.get("ter"),
        chrf_vs_mt=CHRF().corpus_score(hyps, [mts]).score if "chrf" in metrics else None,
        comet=float(comet.mean()) if comet is not None else None,
    )


def _seed() -> int | None:
    seed = os.environ.get("SACREBLEU_SEED", "12345")
    return None if seed.lower() == "none" else int(seed)


def paired_randomization(
    base: Sequence[str],
    trained: Sequence[str],
    refs: Sequence[str],
    tokenizer: str = "13a",
    trials: int = TRIALS,
    seed: int | None = None,
    metrics: Sequence[str] = LEXICAL,
) -> dict[str, float]:
    """Two-sided p-values of "no difference", trained vs base, for those of ``bleu``, ``chrf`` and
    ``ter`` in ``metrics``.

    The method is the module docstring's. Issue 19 (the test was wrong, not the printing): sacrebleu 2.6.0's
    paired bootstrap gave p = 0.001 to equal scores (identical outputs, chrF 59.03 → 59.03; different
    outputs both at chrF 0 and BLEU 0), counting only resamples strictly beyond the observed difference.
    """
    chosen = _metrics(tokenizer, metrics)
    if list(base) == list(trained):
        return {name: 1.0 for name in chosen}
    rng = np.random.default_rng(_seed() if seed is None else seed)
    swaps = rng.integers(0, 2, size=(trials, len(refs)), dtype=np.int8)  # 1: the sentence's outputs swapped
    return {name: _p_value(m, base, trained, refs, swaps) for name, m in chosen.items()}


def paired_mean_randomization(
    base: Sequence[float], trained: Sequence[float], trials: int = TRIALS, seed: int | None = None
) -> float:
    """Two-sided p-value of "no difference" in the mean of per-sentence scores (COMET): the module
    docstring's test, where a swap flips the sign of that sentence's difference d_i = trained − base."""
    diff = np.asarray(trained, float) - np.asarray(base, float)
    if diff.shape != np.asarray(base).shape or not diff.size:
        raise ValueError("both systems must be scored on the same sentences")
    if np.all(np.abs(diff) <= TIE):
        return 1.0
    rng = np.random.default_rng(_seed() if seed is None else seed)
    signs = 1 - 2 * rng.integers(0, 2, size=(trials, diff.size), dtype=np.int8)
    trial = (signs * diff).mean(axis=1)
    extreme = np.abs(trial) >= abs(diff.mean()) - TIE
    return (int(extreme.sum()) + 1) / (trials + 1)


def _p_value(metric, base, trained, refs, swaps: np.ndarray) -> float:
    # sacrebleu's sentence statistics and its score from summed statistics, as its own PairedTest uses them
    bl, sy = (np.asarray(metric._extract_corpus_statistics(h, [list(refs)]), float) for h in (base, trained))
    if np.array_equal(bl, sy):
        return 1.0  # every trial's difference is exactly 0

    def score(stats: np.ndarray) -> float:
        return metric._compute_score_from_stats(stats).score

    observed = score(sy.sum(0)) - score(bl.sum(0))
    # per trial, the statistics the swaps move from the base side to the trained side (100 trials at a time)
    chunks = np.split(swaps, range(100, len(swaps), 100))
    moved = np.concatenate([chunk.astype(float) @ (bl - sy) for chunk in chunks])
    trial = np.array([score(sy.sum(0) + m) - score(bl.sum(0) - m) for m in moved])
    extreme = np.abs(trial) >= abs(observed) - TIE  # ties count; |d| <= TIE: every trial does, p = 1
    return (int(extreme.sum()) + 1) / (len(swaps) + 1)


@dataclass(frozen=True)
class _CometSegments:
    trained: np.ndarray
    base: np.ndarray | None

    def take(self, index: list[int]) -> _CometSegments:
        return _CometSegments(self.trained[index], None if self.base is None else self.base[index])


def _comet_segments(rows: Sequence[TranslationRow], scorer: SegmentScorer, has_base: bool) -> _CometSegments:
    """Every row's COMET score, the trained system's and the base's, in one call to the scorer."""
    systems = [[r.trained for r in rows]] + ([[r.base for r in rows]] if has_base else [])
    segments = [
        (r.source, text, r.post_edit) for texts in systems for r, text in zip(rows, texts, strict=True)
    ]
    scores = np.asarray(scorer(segments), float)
    if scores.shape != (len(segments),):
        raise ValueError(f"the COMET scorer returned {scores.shape} scores for {len(segments)} segments")
    return _CometSegments(scores[: len(rows)], scores[len(rows) :] if has_base else None)


def _quality(direction, rows, metrics, comet: _CometSegments | None) -> DirectionQuality:
    tokenizer = bleu_tokenizer([r.direction for r in rows])
    refs, mts = [r.post_edit for r in rows], [r.mt for r in rows]
    trained = [r.trained for r in rows]
    base = [r.base for r in rows] if all(r.base is not None for r in rows) else None
    p = paired_randomization(base, trained, refs, tokenizer, metrics=metrics) if base is not None else {}
    if comet is not None and comet.base is not None:
        p["comet"] = paired_mean_randomization(comet.base, comet.trained)
    return DirectionQuality(
        direction=direction,
        n=len(rows),
        bleu_tokenizer=tokenizer,
        trained=_scores(trained, refs, mts, tokenizer, metrics, comet and comet.trained),
        base=_scores(base, refs, mts, tokenizer, metrics, comet and comet.base) if base is not None else None,
        p_chrf=p.get("chrf"),
        p_bleu=p.get("bleu"),
        p_ter=p.get("ter"),
        p_comet=p.get("comet"),
    )


def translation_quality(
    rows: Sequence[TranslationRow], metrics: Sequence[str] = LEXICAL, comet: SegmentScorer | None = None
) -> list[DirectionQuality]:
    """One entry per direction (sorted), then ``all``; raises on no rows. ``comet`` scores the
    segments when ``metrics`` asks for COMET."""
    if not rows:
        raise ValueError("no translations to score")
    if ("comet" in metrics) != (comet is not None):
        raise ValueError("a COMET scorer is given exactly when metrics asks for comet")
    has_base = all(r.base is not None for r in rows)
    segments = _comet_segments(rows, comet, has_base) if comet is not None else None
    by_direction: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_direction[row.direction].append(i)
    groups = [*sorted(by_direction.items()), (ALL, list(range(len(rows))))]
    return [
        _quality(d, [rows[i] for i in index], metrics, segments and segments.take(index))
        for d, index in groups
    ]
