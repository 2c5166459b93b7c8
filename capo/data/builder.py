"""Turn MTPE triples into balanced, source-disjoint preference-pair splits (paper §3.3).

Rules, each a parameter of ``BuildOptions``:
  * prompt = the paper's template with full language names;
    chosen = post-edit (y_w), rejected = raw MT (y_l);
  * keep sources longer than ``min_source_chars`` characters (paper: 50);
  * drop ties, pairs whose post-edit equals the MT (no preference; ``is_tie``) unless
    ``keep_ties``; a kept tie carries ``PreferencePair.tie``;
  * drop exact duplicates (direction, source, MT, post-edit);
  * per direction, ``per_direction`` pairs in each of train / eval / validation,
    split by source sentence so that no source appears in two splits.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from capo.data.triples import SPLITS, DataError, MTPETriple, PreferencePair, is_tie
from capo.languages import language_name, parse_direction

PAPER_TEMPLATE = "Translate this text from {src_lang} to {tgt_lang}:\n{src_lang}: {src}\n{tgt_lang}:"


@dataclass(frozen=True)
class BuildOptions:
    per_direction: int = 100
    min_source_chars: int = 50
    seed: int = 0
    keep_ties: bool = False
    strict: bool = False
    prompt_template: str = PAPER_TEMPLATE

    def __post_init__(self) -> None:
        if self.per_direction < 1:
            raise ValueError("per_direction must be at least 1")
        if self.min_source_chars < 0:
            raise ValueError("min_source_chars must be >= 0")


@dataclass
class BuildReport:
    """What the builder kept and dropped, per direction."""

    per_direction: int
    usable: Counter[str] = field(default_factory=Counter)
    dropped: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def shortfalls(self) -> list[str]:
        """One line per direction with fewer pairs than asked in some split."""
        lines = []
        for direction, per_split in sorted(self.counts.items()):
            if any(per_split[s] < self.per_direction for s in SPLITS):
                got = ", ".join(f"{s} {per_split[s]}" for s in SPLITS)
                lines.append(
                    f"{direction}: asked {self.per_direction} per split, got {got} "
                    f"({self.usable[direction]} usable pairs)"
                )
        return lines


def format_prompt(source: str, direction: str, template: str = PAPER_TEMPLATE) -> str:
    src, tgt = parse_direction(direction)
    return template.format(src_lang=language_name(src), tgt_lang=language_name(tgt), src=source)


def build_pairs(triples: list[MTPETriple], options: BuildOptions) -> tuple[list[PreferencePair], BuildReport]:
    """Filter, de-duplicate, balance and split; raises ``DataError`` on a strict shortfall."""
    report = BuildReport(per_direction=options.per_direction)
    kept = _filter(triples, options, report)
    pairs: list[PreferencePair] = []
    for direction, group in kept.items():
        report.usable[direction] = len(group)
        splits = _split_by_source(group, options.per_direction, f"{options.seed}:{direction}")
        report.counts[direction] = {s: len(splits[s]) for s in SPLITS}
        for split in SPLITS:
            pairs.extend(_to_pair(t, split, options.prompt_template) for t in splits[split])
    if options.strict and report.shortfalls:
        raise DataError("dataset", "too few pairs (strict): " + "; ".join(report.shortfalls))
    return pairs, report


def _filter(
    triples: list[MTPETriple], options: BuildOptions, report: BuildReport
) -> dict[str, list[MTPETriple]]:
    seen: set[tuple[str, str, str, str]] = set()
    kept: dict[str, list[MTPETriple]] = defaultdict(list)
    for t in triples:
        reason = _drop_reason(t, options, seen)
        if reason:
            report.dropped[t.direction][reason] += 1
            continue
        seen.add((t.direction, t.source, t.mt, t.post_edit))
        kept[t.direction].append(t)
    return kept


def _drop_reason(t: MTPETriple, options: BuildOptions, seen: set) -> str | None:
    if not (t.source and t.mt and t.post_edit):
        return "empty text"
    if len(t.source) <= options.min_source_chars:
        return f"source of {options.min_source_chars} characters or fewer"
    if not options.keep_ties and is_tie(t.post_edit, t.mt):
        return "post-edit equals MT"
    if (t.direction, t.source, t.mt, t.post_edit) in seen:
        return "duplicate"
    return None


def _split_by_source(triples: list[MTPETriple], per_split: int, seed: str) -> dict[str, list[MTPETriple]]:
    """Whole source groups go to the split that lacks most; each split stops at ``per_split``.

    Groups are sorted before the seeded shuffle, so the result does not depend on input order.
    """
    rng = random.Random(seed)
    by_source: dict[str, list[MTPETriple]] = defaultdict(list)
    for t in triples:
        by_source[t.source].append(t)
    groups = [sorted(g, key=lambda t: (t.mt, t.post_edit)) for _, g in sorted(by_source.items())]
    rng.shuffle(groups)
    splits: dict[str, list[MTPETriple]] = {s: [] for s in SPLITS}
    for group in groups:
        split = max(SPLITS, key=lambda s: per_split - len(splits[s]))
        room = per_split - len(splits[split])
        if room <= 0:
            break
        rng.shuffle(group)
        splits[split].extend(group[:room])
    return splits


def _to_pair(t: MTPETriple, split: str, template: str) -> PreferencePair:
    prompt = t.prompt if t.prompt is not None else format_prompt(t.source, t.direction, template)
    return PreferencePair(
        direction=t.direction,
        split=split,
        prompt=prompt,
        chosen=t.post_edit,
        rejected=t.mt,
        source_text=t.source,
        origin=t.origin,
        hter=t.hter,
    )
