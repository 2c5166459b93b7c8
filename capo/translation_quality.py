"""Translation quality of generations with sacrebleu: chrF, BLEU, TER, and a paired bootstrap test.

References are the human post-edits. chrF against the raw MT is reported too, so a
reader sees whether training moved the model toward the post-edit or toward the MT.
BLEU is tokenised for the target language (``zh`` for Chinese, character level for
Japanese, Korean and Thai, ``13a`` otherwise); the ``all`` row pools every sentence,
with character-level BLEU when its directions need different tokenisers. Significance
is sacrebleu's paired bootstrap resampling (``PairedTest``, test type ``bs``, 1000
resamples, seed ``SACREBLEU_SEED`` = 12345 by default), per direction and overall. Its
p-value is two-sided (it tests the absolute difference; read the direction from the
scores) and never below 1/1001. sacrebleu returns that floor even for two identical
outputs (the observed difference, 0, is never exceeded), so identical systems get p = 1.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.significance import PairedTest

CHARACTER_LEVEL = frozenset({"ja", "ko", "th"})
ALL = "all"


@dataclass(frozen=True)
class TranslationRow:
    direction: str
    post_edit: str
    mt: str
    trained: str
    base: str | None = None


@dataclass(frozen=True)
class Scores:
    chrf: float
    bleu: float
    ter: float
    chrf_vs_mt: float


@dataclass(frozen=True)
class DirectionQuality:
    direction: str
    n: int
    bleu_tokenizer: str
    trained: Scores
    base: Scores | None
    p_chrf: float | None  # paired bootstrap, trained vs base
    p_bleu: float | None
    p_ter: float | None


def bleu_tokenizer(directions: Sequence[str]) -> str:
    """The sacrebleu tokeniser that suits the target language(s) of ``directions``."""
    targets = {d.split("-")[-1] for d in directions}
    kinds = {"zh" if t == "zh" else "char" if t in CHARACTER_LEVEL else "13a" for t in targets}
    return kinds.pop() if len(kinds) == 1 else "char"


def _metrics(tokenizer: str) -> dict[str, object]:
    return {"BLEU": BLEU(tokenize=tokenizer), "chrF": CHRF(), "TER": TER()}


def _scores(hyps: list[str], refs: list[str], mts: list[str], tokenizer: str) -> Scores:
    return Scores(
        chrf=CHRF().corpus_score(hyps, [refs]).score,
        bleu=BLEU(tokenize=tokenizer).corpus_score(hyps, [refs]).score,
        ter=TER().corpus_score(hyps, [refs]).score,
        chrf_vs_mt=CHRF().corpus_score(hyps, [mts]).score,
    )


def _p_values(base: list[str], trained: list[str], refs: list[str], tokenizer: str) -> dict[str, float]:
    if base == trained:
        return {"bleu": 1.0, "chrf": 1.0, "ter": 1.0}
    test = PairedTest([("base", base), ("trained", trained)], _metrics(tokenizer), [refs], "bs", 1000)
    _, scores = test()
    names = {"BLEU": "bleu", "chrF2": "chrf", "TER": "ter"}
    return {names[k]: v[1].p_value for k, v in scores.items() if k in names}


def _quality(direction: str, rows: Sequence[TranslationRow]) -> DirectionQuality:
    tokenizer = bleu_tokenizer([r.direction for r in rows])
    refs, mts = [r.post_edit for r in rows], [r.mt for r in rows]
    trained = [r.trained for r in rows]
    base = [r.base for r in rows] if all(r.base is not None for r in rows) else None
    p = _p_values(base, trained, refs, tokenizer) if base is not None else {}  # type: ignore[arg-type]
    return DirectionQuality(
        direction=direction,
        n=len(rows),
        bleu_tokenizer=tokenizer,
        trained=_scores(trained, refs, mts, tokenizer),
        base=_scores(base, refs, mts, tokenizer) if base is not None else None,  # type: ignore[arg-type]
        p_chrf=p.get("chrf"),
        p_bleu=p.get("bleu"),
        p_ter=p.get("ter"),
    )


def translation_quality(rows: Sequence[TranslationRow]) -> list[DirectionQuality]:
    """One entry per direction (sorted), then ``all``; raises on no rows."""
    if not rows:
        raise ValueError("no translations to score")
    by_direction: dict[str, list[TranslationRow]] = defaultdict(list)
    for row in rows:
        by_direction[row.direction].append(row)
    return [_quality(d, group) for d, group in sorted(by_direction.items())] + [_quality(ALL, list(rows))]
