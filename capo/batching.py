"""Which pairs go into which batch: seeded epoch order and length-grouped batches (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

MEGABATCH_BATCHES = (
    50  # batches sorted together when grouping by length (as transformers' LengthGroupedSampler)
)


def _generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffled pair order of one epoch; a pure function of (seed, epoch) so resume can replay it."""
    return torch.randperm(n, generator=_generator(seed, epoch)).tolist()


def length_grouped_order(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[int]:
    """The epoch order rearranged so each batch holds pairs of similar length (less padding).

    The shuffled order is cut into megabatches of ``MEGABATCH_BATCHES`` batches, each sorted by
    length (longest first); the resulting full batches are shuffled, and a short last batch stays
    last so every batch but the last has ``batch_size`` pairs. Pure in (lengths, batch size, seed, epoch).
    """
    order = epoch_order(len(lengths), seed, epoch)
    mega = batch_size * MEGABATCH_BATCHES
    ranked = [
        i
        for start in range(0, len(order), mega)
        for i in sorted(order[start : start + mega], key=lambda i: -lengths[i])
    ]
    batches = [ranked[i : i + batch_size] for i in range(0, len(ranked), batch_size)]
    last = batches.pop() if batches and len(batches[-1]) < batch_size else None
    shuffle = torch.randperm(len(batches), generator=_generator(seed + 1, epoch)).tolist()
    return [i for b in shuffle for i in batches[b]] + (last or [])


def token_micro_batches(indices: Sequence[int], tokens: Sequence[int], budget: int) -> list[list[int]]:
    """``indices`` (one optimizer step's pairs, in order) cut into forward passes of at most ``budget``
    tokens, ``tokens[i]`` being pair i's; a pair longer than the budget goes alone. Order is kept, so
    the step's pairs and its loss are those of ``batch_size`` micro-batches: only memory changes."""
    passes: list[list[int]] = []
    used = budget + 1  # the first pair opens a pass
    for i in indices:
        if used + tokens[i] > budget:
            passes.append([])
            used = 0
        passes[-1].append(i)
        used += tokens[i]
    return passes
