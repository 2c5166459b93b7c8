"""The packed block mask as FlexAttention's ``BlockMask`` (``model.attn_implementation: flex_attention``).

The rule is ``capo.packing.block_mask``'s, written as a ``mask_mod`` over the row's block, segment
and position ids instead of a dense [R, 1, T, T] boolean tensor: query q sees key k iff

    block(q) = block(k) ∧ k ≤ q ∧ (segment(k) = prompt ∨ segment(k) = segment(q))
    [∧ pos(q) − pos(k) < window on sliding-window layers]

``create_block_mask`` evaluates it per 128×128 tile and skips tiles that are all masked, so keys in
other blocks cost nothing: the fast path for prompt-shared packed rows (frankxwang/dpo-prefix-sharing
measured 1.07–1.42× samples/s over FlashAttention-3 without packing). transformers passes a ready
``BlockMask`` (or a {layer kind: BlockMask} mapping) to its flex kernel unchanged.

torch 2.13's FlexAttention runs forward on CPU but has no backward there, so the trainer only packs
for flex on CUDA (``capo.packing.supports_packing``); scoring without gradients may use it anywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

if TYPE_CHECKING:
    from torch.nn.attention.flex_attention import BlockMask

FLEX = "flex_attention"
PROMPT = 0  # capo.packing.PROMPT (not imported: packing imports this module)


def flex_block_mask(
    blocks: Tensor, segments: Tensor, positions: Tensor, window: int | None = None
) -> BlockMask:
    """The [R, 1, T, T] block mask of packed rows (``PackedBatch.blocks/segments/position_ids``)."""
    from torch.nn.attention.flex_attention import create_block_mask

    def visible(b: Tensor, h: Tensor, q: Tensor, k: Tensor) -> Tensor:
        seen = (blocks[b, q] == blocks[b, k]) & (k <= q)
        seen = seen & ((segments[b, k] == PROMPT) | (segments[b, k] == segments[b, q]))
        if window is not None:
            seen = seen & (positions[b, q] - positions[b, k] < window)
        return seen

    rows, length = blocks.shape
    return create_block_mask(visible, rows, None, length, length, device=blocks.device)


def train_without_flex_on_cpu(model) -> str | None:
    """Where FlexAttention cannot train (CPU: no backward), switch ``model`` to SDPA and say so."""
    if model.config._attn_implementation != FLEX or model.device.type != "cpu":
        return None
    model.set_attn_implementation("sdpa")
    return "model.attn_implementation flex_attention has no backward on CPU: training with sdpa"
