"""Prompt-shared, packed scoring: each pair is one block [prompt | chosen | rejected].

``capo/scoring.py`` runs every prompt twice (once before the chosen response, once
before the rejected one) and right-pads all 2B sequences to the longest. Here a
pair with prompt length P, chosen length C and rejected length R is one block of
P + C + R tokens, and several blocks share a row (padding only at a row's end):

    block index   0 … P−1  | P … P+C−1 | P+C … P+C+R−1
    position id   0 … P−1  | P … P+C−1 | P   … P+R−1      (rejected restarts after the prompt)

Query q may see key k iff both are in the same block, k ≤ q, and k is a prompt
token or in q's own segment: the rejected response sees the prompt and earlier
rejected tokens, never the chosen ones. On sliding-window layers (window W) also
pos(q) − pos(k) < W. Every token thus sees exactly the keys, at exactly the
positions, it has in its own padded sequence, so hidden states, log-probs and
gradients equal the padded scorer's up to rounding. Response token y_t is scored
from the hidden state of the token before it in its own sequence; for the first
rejected token that is the prompt's last token, not the chosen response's last.

This needs an attention implementation that takes a custom mask (SDPA takes a
boolean 4-D one, eager an additive one, FlexAttention a ``BlockMask``: capo/flex_mask.py);
``supports_packing`` says when a model cannot, and the trainer then keeps the padded
path (``scoring_layout`` decides, with a note).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
from torch import Tensor, nn

from capo.flex_mask import FLEX, flex_block_mask
from capo.scoring import (
    ResponseLogps,
    SequenceBatch,
    TokenizedPair,
    collate,
    response_logps,
    sequence_logps,
    split_by_sequence,
    split_token_logps,
)

PROMPT, CHOSEN, REJECTED, PAD = 0, 1, 2, 3
PACKABLE_ATTENTION = ("sdpa", "eager", FLEX)
FULL, SLIDING = "full_attention", "sliding_attention"
# transformers' decoders that mix layer kinds (Gemma 3, Qwen 2, …) take a ready {kind: mask} mapping, as
# ``generate`` passes, when their forward contains this test; a single 4-D tensor would be passed
# unchanged to every layer, sliding ones included (masking_utils returns a 4-D mask as it is).
MAPPING_CHECK = "isinstance(causal_mask_mapping := attention_mask, dict)"
UNPACKED = "scoring chosen and rejected as separate padded rows (the prompt runs twice)"


@dataclass(frozen=True)
class PackedBatch:
    """B pairs packed into R rows of T tokens; targets in ``collate``'s order (chosen …, rejected …)."""

    input_ids: Tensor  # [R, T]
    position_ids: Tensor  # [R, T]
    attention_mask: Tensor  # [R, 1, T, T] bool: True where query (dim 2) may see key (dim 3)
    blocks: Tensor  # [R, T] pair index of each token, −1 for padding
    segments: Tensor  # [R, T] PROMPT, CHOSEN, REJECTED or PAD
    target_rows: Tensor  # [K] row of each response token
    target_cols: Tensor  # [K] column of each response token
    source_cols: Tensor  # [K] column of the hidden state that predicts it
    sequence: Tensor  # [K] i for pair i's chosen response, B + i for its rejected one
    n_tokens: Tensor  # [2B] response tokens per sequence, chosen first

    @property
    def num_pairs(self) -> int:
        return self.n_tokens.shape[0] // 2

    def to(self, device: torch.device | str) -> PackedBatch:
        return PackedBatch(*(getattr(self, f.name).to(device) for f in fields(self)))


def pair_tokens(pair: TokenizedPair) -> int:
    """Tokens of a pair's block: P + C + R."""
    return len(pair.prompt_ids) + len(pair.chosen_ids) + len(pair.rejected_ids)


def first_fit_rows(lengths: Sequence[int], capacity: int, per_row: int | None = None) -> list[list[int]]:
    """Indices of ``lengths`` grouped into rows of at most ``capacity`` (and at most ``per_row`` items):
    first fit, longest first."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        fits = (
            r for r, free in enumerate(room) if free >= lengths[i] and len(rows[r]) < (per_row or capacity)
        )
        r = next(fits, len(rows))
        if r == len(rows):
            rows.append([])
            room.append(capacity)
        rows[r].append(i)
        room[r] -= lengths[i]
    return rows


def block_mask(blocks: Tensor, segments: Tensor) -> Tensor:
    """[R, 1, T, T]: same block ∧ k ≤ q ∧ (segment(k) = prompt ∨ segment(k) = segment(q)).

    Padding is one more block of its own segment, so its queries see earlier padding
    (no query row is empty, which would make softmax NaN) and no real token sees it.
    """
    t = blocks.shape[1]
    same_block = blocks[:, :, None] == blocks[:, None, :]
    causal = torch.ones(t, t, dtype=torch.bool, device=blocks.device).tril()
    visible = (segments[:, None, :] == PROMPT) | (segments[:, :, None] == segments[:, None, :])
    return (same_block & causal & visible).unsqueeze(1)


def _block(pair: TokenizedPair) -> tuple[Tensor, Tensor, Tensor]:
    """Token ids, position ids and segments of one pair's block [prompt | chosen | rejected]."""
    n_p, n_c, n_r = len(pair.prompt_ids), len(pair.chosen_ids), len(pair.rejected_ids)
    return (
        torch.tensor(pair.prompt_ids + pair.chosen_ids + pair.rejected_ids, dtype=torch.long),
        torch.tensor([*range(n_p + n_c), *range(n_p, n_p + n_r)], dtype=torch.long),
        torch.tensor([PROMPT] * n_p + [CHOSEN] * n_c + [REJECTED] * n_r, dtype=torch.long),
    )


def _layout(pairs: Sequence[TokenizedPair], rows: list[list[int]], pad_id: int):
    """Row tensors (ids, positions, blocks, segments) and each pair's (row, start column)."""
    shape = (len(rows), max(sum(pair_tokens(pairs[i]) for i in row) for row in rows))
    ids = torch.full(shape, pad_id, dtype=torch.long)
    positions = torch.zeros(shape, dtype=torch.long)
    blocks = torch.full(shape, -1, dtype=torch.long)
    segments = torch.full(shape, PAD, dtype=torch.long)
    starts: dict[int, tuple[int, int]] = {}
    for r, row in enumerate(rows):
        start = 0
        for i in row:
            span = slice(start, start + pair_tokens(pairs[i]))
            ids[r, span], positions[r, span], segments[r, span] = _block(pairs[i])
            blocks[r, span] = i
            starts[i] = (r, start)
            start = span.stop
    return ids, positions, blocks, segments, starts


def _targets(pairs: Sequence[TokenizedPair], starts: dict[int, tuple[int, int]]) -> list[Tensor]:
    """[rows, cols, source cols, sequence] of every response token, and n_tokens, in collate's order."""
    rows, cols, sources, sequence, counts = [], [], [], [], []
    for side in (CHOSEN, REJECTED):
        for i, p in enumerate(pairs):
            r, start = starts[i]
            response = p.chosen_ids if side == CHOSEN else p.rejected_ids
            first = start + len(p.prompt_ids) + (len(p.chosen_ids) if side == REJECTED else 0)
            here = list(range(first, first + len(response)))
            rows += [r] * len(here)
            cols += here
            sources += [start + len(p.prompt_ids) - 1, *here[:-1]][: len(here)]  # prompt's last, then own
            sequence += [i + (len(pairs) if side == REJECTED else 0)] * len(here)
            counts.append(len(here))
    return [torch.tensor(v, dtype=torch.long) for v in (rows, cols, sources, sequence, counts)]


def pack_pairs(
    pairs: Sequence[TokenizedPair],
    pad_id: int,
    max_row_tokens: int | None = None,
    pairs_per_row: int | None = None,
) -> PackedBatch:
    """Whole pairs packed into rows of max(``max_row_tokens``, longest pair) tokens, first fit, at most
    ``pairs_per_row`` pairs a row (1: prompt sharing alone, one padded row per pair).

    Rows are cut to the fullest row; padding sits only at the end of a row.
    """
    if not pairs:
        raise ValueError("pack_pairs needs at least one pair")
    if any(not p.prompt_ids for p in pairs):
        raise ValueError("every pair needs a prompt token to predict its first response token from")
    lengths = [pair_tokens(p) for p in pairs]
    rows = first_fit_rows(lengths, max(max_row_tokens or 0, max(lengths)), pairs_per_row)
    ids, positions, blocks, segments, starts = _layout(pairs, rows, pad_id)
    mask = block_mask(blocks, segments)
    return PackedBatch(ids, positions, mask, blocks, segments, *_targets(pairs, starts))


def layer_kinds(config) -> set[str]:
    """The decoder's attention kinds: from ``layer_types``, else all sliding when a window is set."""
    types = getattr(config, "layer_types", None)
    if types:
        return set(types[: config.num_hidden_layers])
    windowed = getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True)
    return {SLIDING} if windowed else {FULL}


def accepts_mask_mapping(decoder: nn.Module) -> bool:
    """Whether the decoder's forward takes a ready {layer kind: mask} mapping (see ``MAPPING_CHECK``)."""
    try:
        return MAPPING_CHECK in inspect.getsource(type(decoder).forward)
    except (OSError, TypeError):  # no source to read: assume it does not
        return False


def supports_packing(model: nn.Module) -> tuple[bool, str]:
    """(whether ``model`` can score packed pairs exactly, a sentence to note saying why or why not)."""
    decoder = model.get_decoder()
    config = decoder.config
    impl = getattr(config, "_attn_implementation", None)
    kinds = layer_kinds(config)
    if impl not in PACKABLE_ATTENTION:
        return False, f"attention implementation {impl!r} takes no custom 4-D mask: {UNPACKED}"
    if impl == FLEX and model.device.type == "cpu" and torch.is_grad_enabled():
        return False, f"FlexAttention has no backward on CPU (torch {torch.__version__}): {UNPACKED}"
    if "position_ids" not in inspect.signature(decoder.forward).parameters:
        return False, f"{type(decoder).__name__} takes no position ids: {UNPACKED}"
    if getattr(config, "use_bidirectional_attention", False):
        return False, f"{type(decoder).__name__} uses bidirectional attention: {UNPACKED}"
    if kinds - {FULL, SLIDING}:
        return False, f"no packed mask for layer kinds {sorted(kinds - {FULL, SLIDING})}: {UNPACKED}"
    if len(kinds) > 1 and not accepts_mask_mapping(decoder):
        return False, f"{type(decoder).__name__} mixes layer kinds but takes one mask: {UNPACKED}"
    return True, f"packed scoring ({impl}): each prompt runs once, chosen and rejected share it"


def _kind_mask(batch: PackedBatch, kind: str, window: int | None) -> Tensor:
    """The boolean mask of one layer kind: sliding layers also need pos(q) − pos(k) < window."""
    if kind != SLIDING:
        return batch.attention_mask
    pos = batch.position_ids
    return batch.attention_mask & ((pos[:, :, None] - pos[:, None, :]) < window).unsqueeze(1)


def model_attention_mask(model: nn.Module, batch: PackedBatch) -> Tensor | dict[str, Tensor]:
    """The mask as the decoder takes it: one tensor, or {kind: mask} when layer kinds differ.

    Boolean for SDPA; additive for eager (0 where visible, the dtype's minimum elsewhere),
    since eager adds the mask to the attention scores.
    """
    config = model.get_decoder().config
    window = getattr(config, "sliding_window", None)
    if config._attn_implementation == FLEX:
        masks = {
            k: flex_block_mask(
                batch.blocks, batch.segments, batch.position_ids, window if k == SLIDING else None
            )
            for k in layer_kinds(config)
        }
        return next(iter(masks.values())) if len(masks) == 1 else masks
    masks = {k: _kind_mask(batch, k, window) for k in layer_kinds(config)}
    if config._attn_implementation == "eager":
        dtype = model.get_input_embeddings().weight.dtype
        low = torch.finfo(dtype).min
        masks = {
            k: torch.zeros(m.shape, dtype=dtype, device=m.device).masked_fill_(~m, low)
            for k, m in masks.items()
        }
    return next(iter(masks.values())) if len(masks) == 1 else masks


def packed_response_logps(
    model: nn.Module, batch: PackedBatch, chunk_tokens: int | None = None, per_token: bool = False
) -> ResponseLogps:
    """Summed response log-probs in pair order, as ``response_logps`` gives for ``collate`` of the same pairs.

    ``token_logps`` (when ``per_token``) is in collate's token order: aligned with its ``target_rows``.
    """
    hidden = model.get_decoder()(
        input_ids=batch.input_ids,
        position_ids=batch.position_ids,
        attention_mask=model_attention_mask(model, batch),
        use_cache=False,
    ).last_hidden_state
    states = hidden[batch.target_rows, batch.source_cols]
    targets = batch.input_ids[batch.target_rows, batch.target_cols]
    return sequence_logps(model, states, targets, batch.sequence, batch.n_tokens, chunk_tokens, per_token)


def split_packed_token_logps(batch: PackedBatch, token_logps: Tensor) -> list[list[float]]:
    """Per-sequence lists of per-token log-probs (2B lists, chosen first), as ``split_token_logps``."""
    return split_by_sequence(batch.sequence, batch.n_tokens.shape[0], token_logps)


def scoring_layout(scoring: str, model: nn.Module) -> tuple[bool, str | None]:
    """Whether a run's batches are packed blocks (``train.scoring`` packed or prompt_shared, where the
    model's attention takes the block mask), and the note to log when it cannot."""
    if scoring == "padded":
        return False, None
    packable, reason = supports_packing(model)
    return packable, None if packable else f"train.scoring {scoring}: {reason}"


def make_batch(
    pairs: Sequence[TokenizedPair],
    pad_id: int,
    packed: bool,
    max_row_tokens: int | None = None,
    pairs_per_row: int | None = None,
) -> SequenceBatch | PackedBatch:
    """``pack_pairs`` when ``packed`` (from ``supports_packing``), else today's padded ``collate``."""
    return pack_pairs(pairs, pad_id, max_row_tokens, pairs_per_row) if packed else collate(pairs, pad_id)


def batch_response_logps(
    model: nn.Module,
    batch: SequenceBatch | PackedBatch,
    chunk_tokens: int | None = None,
    per_token: bool = False,
) -> ResponseLogps:
    """``packed_response_logps`` or ``response_logps``, by the batch's kind."""
    score = packed_response_logps if isinstance(batch, PackedBatch) else response_logps
    return score(model, batch, chunk_tokens, per_token)


def batch_token_logps(batch: SequenceBatch | PackedBatch, token_logps: Tensor) -> list[list[float]]:
    """``split_packed_token_logps`` or ``split_token_logps``, by the batch's kind."""
    if isinstance(batch, PackedBatch):
        return split_packed_token_logps(batch, token_logps)
    return split_token_logps(batch, token_logps)
