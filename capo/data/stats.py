"""Per-direction statistics of preference pairs (feeds the paper's Fig. 7 analysis).

A tie is a pair whose chosen response (post-edit) equals the rejected one (MT) once runs of
whitespace are collapsed: ``capo.data.triples.is_tie``, the one rule the builder, the stored
``pairs.tie`` and the trainer use too.

BLEU and chrF score the rejected response (raw MT) against the chosen one
(post-edit) with sacrebleu; BLEU tokenises Chinese with sacrebleu's ``zh``
tokenizer and Japanese, Korean and Thai by character, everything else ``13a``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from statistics import fmean
from typing import Protocol

from capo.data.triples import is_tie
from capo.languages import parse_direction

_BLEU_TOKENIZERS = {"zh": "zh", "ja": "char", "ko": "char", "th": "char"}


class PairText(Protocol):
    direction: str
    prompt: str
    chosen: str
    rejected: str
    source_text: str
    hter: float | None


@dataclass(frozen=True)
class DirectionStats:
    direction: str
    pairs: int
    ties: int
    mean_source_chars: float
    mean_chosen_chars: float
    mean_rejected_chars: float
    mean_hter: float | None
    bleu: float
    chrf: float
    tokens_per_char: float | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def bleu_tokenizer(direction: str) -> str:
    """sacrebleu tokenizer name for the target language of ``direction``."""
    return _BLEU_TOKENIZERS.get(parse_direction(direction)[1], "13a")


def direction_stats(
    pairs: Iterable[PairText], count_tokens: Callable[[str], int] | None = None
) -> list[DirectionStats]:
    """One ``DirectionStats`` per direction, sorted by direction.

    ``tokens_per_char`` = Σ tokens(chosen) / Σ chars(chosen) under ``count_tokens``.
    """
    by_direction: dict[str, list[PairText]] = defaultdict(list)
    for pair in pairs:
        by_direction[pair.direction].append(pair)
    return [_one(d, group, count_tokens) for d, group in sorted(by_direction.items())]


def _one(
    direction: str, pairs: Sequence[PairText], count_tokens: Callable[[str], int] | None
) -> DirectionStats:
    chosen = [p.chosen for p in pairs]
    rejected = [p.rejected for p in pairs]
    hters = [p.hter for p in pairs if p.hter is not None]
    import sacrebleu

    bleu = sacrebleu.corpus_bleu(rejected, [chosen], tokenize=bleu_tokenizer(direction))
    chrf = sacrebleu.corpus_chrf(rejected, [chosen])
    tokens_per_char = None
    if count_tokens is not None:
        chars = sum(len(c) for c in chosen)
        tokens_per_char = sum(count_tokens(c) for c in chosen) / chars if chars else 0.0
    return DirectionStats(
        direction=direction,
        pairs=len(pairs),
        ties=sum(is_tie(c, r) for c, r in zip(chosen, rejected, strict=True)),
        mean_source_chars=fmean(len(p.source_text) for p in pairs),
        mean_chosen_chars=fmean(len(c) for c in chosen),
        mean_rejected_chars=fmean(len(r) for r in rejected),
        mean_hter=fmean(hters) if hters else None,
        bleu=bleu.score,
        chrf=chrf.score,
        tokens_per_char=tokens_per_char,
    )
