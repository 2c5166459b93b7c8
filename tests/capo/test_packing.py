"""Packed, prompt-shared scoring equals the padded scorer: log-probs, per-token log-probs, losses, gradients.

The reference is always today's scorer (``collate`` + ``response_logps``) under SDPA in float64.
transformers' eager attention cannot serve as the reference in float64: it adds the dtype's
minimum as mask and takes softmax in float32, where that minimum becomes −inf, so a padding
query whose whole sliding window is padding gets NaN, which then spreads to real tokens.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

from capo.config import LoraConfig
from capo.models import add_lora, tiny_random_llama
from capo.objectives import OBJECTIVES, PairLogps, compute_objective
from capo.packing import (
    SLIDING,
    PackedBatch,
    _kind_mask,
    batch_response_logps,
    make_batch,
    pack_pairs,
    packed_response_logps,
    split_packed_token_logps,
    supports_packing,
)
from capo.scoring import SequenceBatch, TokenizedPair, collate, response_logps, split_token_logps

PAD, BOS, VOCAB = 0, 1, 259  # the tiny Llama's byte-level vocabulary
ROW_TOKENS = 40  # rows of 40 tokens hold two or three of the pairs below
MODELS = [("llama", "sdpa"), ("llama", "eager"), ("gemma3", "sdpa"), ("gemma3", "eager")]


def _pairs() -> list[TokenizedPair]:
    """8 pairs of mixed prompt / chosen / rejected lengths; pair 3 is a tie (chosen == rejected)."""
    rng = random.Random(0)

    def ids(n: int) -> tuple[int, ...]:
        return tuple(rng.randrange(3, VOCAB) for _ in range(n))

    lengths = [(5, 4, 7), (9, 3, 3), (2, 8, 1), (6, 5, 5), (3, 1, 9), (7, 2, 2), (4, 6, 3), (11, 2, 6)]
    pairs = []
    for i, (p, c, r) in enumerate(lengths):
        chosen = ids(c)
        rejected = chosen if i == 3 else ids(r)
        pairs.append(TokenizedPair(i, "en-de", (BOS, *ids(p - 1)), chosen, rejected))
    return pairs


PAIRS = _pairs()


def tiny_gemma3() -> Gemma3ForCausalLM:
    """A 3-layer Gemma 3 (sliding, full, sliding; window 5) with a final-logit soft-cap, random weights."""
    config = Gemma3TextConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        query_pre_attn_scalar=16,
        sliding_window=5,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        final_logit_softcapping=5.0,
        max_position_embeddings=512,
        initializer_range=0.2,
        pad_token_id=PAD,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Gemma3ForCausalLM(config)


def lora_model(kind: str, impl: str):
    """float64 base model with LoRA (no dropout); B is drawn at random so A gets gradients too."""
    base = tiny_random_llama().model if kind == "llama" else tiny_gemma3()
    base.to(torch.float64).set_attn_implementation(impl)
    model = add_lora(base, LoraConfig(r=4, alpha=8, dropout=0.0))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return model


def reference(model, pairs=PAIRS, **kwargs):
    """Today's scorer under SDPA (see the module docstring), on the padded batch."""
    impl = model.config._attn_implementation
    model.set_attn_implementation("sdpa")
    try:
        batch = collate(pairs, PAD)
        return batch, response_logps(model, batch, **kwargs)
    finally:
        model.set_attn_implementation(impl)


def close(got, want) -> None:
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_mask_positions_and_targets_by_hand() -> None:
    a = TokenizedPair(0, "x", (BOS, 10), (11, 12), (13,))  # 5 tokens
    b = TokenizedPair(1, "x", (BOS,), (20,), (21,))  # 3 tokens
    d = TokenizedPair(2, "x", (BOS, 40, 41, 42), (43, 44), (45, 46, 47))  # 9 tokens: a row of its own
    batch = pack_pairs([a, b, d], PAD, max_row_tokens=9)
    assert batch.input_ids.tolist() == [
        [BOS, 40, 41, 42, 43, 44, 45, 46, 47],
        [BOS, 10, 11, 12, 13, BOS, 20, 21, PAD],
    ]
    assert batch.position_ids[1].tolist() == [0, 1, 2, 3, 2, 0, 1, 1, 0]  # rejected restarts after prompt
    assert batch.blocks[1].tolist() == [0, 0, 0, 0, 0, 1, 1, 1, -1]
    # query (row) may see key (column):  p0 p1 c0 c1 r0 | q0 d0 e0 | pad
    expected = [
        "100000000",  # p0 (a's prompt)
        "110000000",  # p1
        "111000000",  # c0 (a's chosen) sees the prompt
        "111100000",  # c1
        "110010000",  # r0 (a's rejected): the prompt and itself, not c0 / c1
        "000001000",  # q0 (b's prompt): nothing of a
        "000001100",  # d0 (b's chosen)
        "000001010",  # e0 (b's rejected): not d0
        "000000001",  # padding sees only padding
    ]
    assert ["".join(str(int(v)) for v in row) for row in batch.attention_mask[1, 0].tolist()] == expected
    # collate's order: chosen of a, b, d, then rejected of a, b, d
    assert batch.target_rows.tolist() == [1, 1, 1, 0, 0, 1, 1, 0, 0, 0]
    assert batch.target_cols.tolist() == [2, 3, 6, 4, 5, 4, 7, 6, 7, 8]
    assert batch.source_cols.tolist() == [1, 2, 5, 3, 4, 1, 5, 3, 6, 7]  # first rejected ← prompt's last
    assert batch.sequence.tolist() == [0, 0, 1, 2, 2, 3, 4, 5, 5, 5]
    assert batch.n_tokens.tolist() == [2, 1, 2, 1, 1, 3]


def test_sliding_window_counts_positions_not_columns() -> None:
    a = TokenizedPair(0, "x", (BOS, 10), (11, 12), (13,))
    window = _kind_mask(pack_pairs([a], PAD), SLIDING, 2)[0, 0]  # pos(q) − pos(k) < 2
    assert window[3].tolist() == [False, False, True, True, False]  # c1 at position 3: c0 and itself
    assert window[4].tolist() == [False, True, False, False, True]  # r0 at position 2: p1 and itself


def test_rows_hold_several_pairs_with_padding_only_at_the_end() -> None:
    batch = pack_pairs(PAIRS, PAD, max_row_tokens=ROW_TOKENS)
    # first fit, longest first, into 40: [19, 16] [16, 15] [13, 13, 11] [11]; cut to the fullest, 37
    assert batch.input_ids.shape == (4, 37)
    for blocks in batch.blocks.tolist():
        used = sum(b >= 0 for b in blocks)
        assert all(b >= 0 for b in blocks[:used]) and all(b == -1 for b in blocks[used:])
    assert sorted(set(batch.blocks.flatten().tolist()) - {-1}) == list(range(len(PAIRS)))
    block_sizes = [int((batch.blocks == i).sum()) for i in range(len(PAIRS))]
    assert block_sizes == [len(p.prompt_ids) + len(p.chosen_ids) + len(p.rejected_ids) for p in PAIRS]


def test_one_pair_per_row_shares_the_prompt_without_packing() -> None:
    batch = pack_pairs(PAIRS, PAD, pairs_per_row=1)
    longest = max(len(p.prompt_ids) + len(p.chosen_ids) + len(p.rejected_ids) for p in PAIRS)
    assert batch.input_ids.shape == (len(PAIRS), longest)  # one block a row, padded to the longest
    assert [len(set(row) - {-1}) for row in batch.blocks.tolist()] == [1] * len(PAIRS)
    model = lora_model("llama", "sdpa")
    with torch.no_grad():
        got = packed_response_logps(model, batch)
        _, want = reference(model)
    close(got.chosen, want.chosen)
    close(got.rejected, want.rejected)


@pytest.mark.parametrize("kind,impl", MODELS)
def test_packed_logps_and_per_token_logps_equal_padded(kind, impl) -> None:
    model = lora_model(kind, impl)
    assert supports_packing(model)[0]
    packed = pack_pairs(PAIRS, PAD, max_row_tokens=ROW_TOKENS)
    with torch.no_grad():
        got = packed_response_logps(model, packed, chunk_tokens=3, per_token=True)
        batch, want = reference(model, per_token=True)
    for field in ("chosen", "rejected", "token_logps"):
        close(getattr(got, field), getattr(want, field))
    assert torch.equal(got.chosen_tokens, want.chosen_tokens)
    assert torch.equal(got.rejected_tokens, want.rejected_tokens)
    assert got.chosen[3].item() == pytest.approx(got.rejected[3].item(), abs=1e-5)  # the tie
    got_lists = split_packed_token_logps(packed, got.token_logps)
    want_lists = split_token_logps(batch, want.token_logps)
    assert [len(x) for x in got_lists] == [len(x) for x in want_lists]
    for g, w in zip(got_lists, want_lists, strict=True):
        assert g == pytest.approx(w, abs=1e-5)


def _lora_params(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def _loss_and_grads(model, name, out, ref):
    logps = PairLogps(out.chosen, out.rejected, out.chosen_tokens, out.rejected_tokens, *ref)
    loss = compute_objective(name, logps, {}).loss.mean()
    return loss.detach(), torch.autograd.grad(loss, _lora_params(model))


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
@pytest.mark.parametrize("kind,impl", MODELS)
def test_losses_and_lora_gradients_equal_padded(kind, impl, objective) -> None:
    model = lora_model(kind, impl)
    ref = (None, None)
    if OBJECTIVES[objective].needs_reference:
        with torch.no_grad(), model.disable_adapter():
            base = reference(model)[1]
        ref = (base.chosen, base.rejected)
    packed = packed_response_logps(model, pack_pairs(PAIRS, PAD, max_row_tokens=ROW_TOKENS))
    got_loss, got_grads = _loss_and_grads(model, objective, packed, ref)
    want_loss, want_grads = _loss_and_grads(model, objective, reference(model)[1], ref)
    close(got_loss, want_loss)
    assert any(g.abs().max() > 1e-3 for g in want_grads)  # the comparison is not between zeros
    for got, want in zip(got_grads, want_grads, strict=True):
        close(got, want)


def test_the_comparison_sees_a_leaking_mask_and_a_missing_window() -> None:
    """Letting rejected tokens see the chosen ones, or dropping Gemma's window, changes the scores."""
    model = lora_model("gemma3", "sdpa")
    packed = pack_pairs(PAIRS, PAD, max_row_tokens=ROW_TOKENS)
    with torch.no_grad():
        want = reference(model)[1]
        same_block = packed.blocks[:, :, None] == packed.blocks[:, None, :]
        leaky = same_block.tril().unsqueeze(1)  # plain causal inside each block
        leaking = packed_response_logps(model, dataclasses.replace(packed, attention_mask=leaky))
        model.config.sliding_window = 1000
        unwindowed = packed_response_logps(model, packed)
    assert (leaking.rejected - want.rejected).abs().max() > 1e-3
    close(leaking.chosen, want.chosen)  # chosen tokens saw nothing new
    assert (unwindowed.chosen - want.chosen).abs().max() > 1e-3


def test_packing_is_declined_where_the_mask_cannot_go() -> None:
    ok, reason = supports_packing(lora_model("gemma3", "sdpa"))  # mixed kinds, a {kind: mask} mapping
    assert ok and "sdpa" in reason
    flash = tiny_random_llama().model
    flash.config._attn_implementation = "flash_attention_2"
    ok, reason = supports_packing(flash)
    assert not ok and "flash_attention_2" in reason and "padded" in reason
    mixed = tiny_random_llama().model  # LlamaModel builds one mask for all layers: no window per layer
    mixed.config.layer_types = ["sliding_attention", "full_attention"]
    mixed.config.sliding_window = 4
    ok, reason = supports_packing(mixed)
    assert not ok and "mixes layer kinds" in reason
    assert isinstance(make_batch(PAIRS, PAD, packed=ok), SequenceBatch)
    assert isinstance(make_batch(PAIRS, PAD, packed=True), PackedBatch)


class _Scores(torch.nn.Module):
    """The policy's log-probs as a module for DDP (as train.py's _PolicyLogps), either batch kind."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch):
        out = batch_response_logps(self.model, batch)
        return out.chosen, out.rejected


def _capo_grads(scores, model, batch) -> list[torch.Tensor]:
    chosen, rejected = scores(batch)
    b = batch.num_pairs
    logps = PairLogps(chosen, rejected, batch.n_tokens[:b], batch.n_tokens[b:])
    compute_objective("capo", logps, {}).loss.mean().backward()
    grads = [p.grad.clone() for p in _lora_params(model)]
    model.zero_grad(set_to_none=True)
    return grads


def _ddp_worker(rank: int, world: int, folder: str) -> None:
    torch.set_num_threads(1)
    init = f"file://{folder}/rendezvous"
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        model = lora_model("llama", "sdpa")
        scores = _Scores(model)
        frozen = [f"model.{n}" for n, p in model.named_parameters() if not p.requires_grad]
        buffers = [f"model.{n}" for n, _ in model.named_buffers()]
        DDP._set_params_and_buffers_to_ignore_for_model(scores, frozen + buffers)
        ddp = DDP(scores, broadcast_buffers=False)
        share = PAIRS[rank::world]
        grads = {
            packed: _capo_grads(ddp, model, make_batch(share, PAD, packed, ROW_TOKENS))
            for packed in (True, False)
        }
        torch.save(grads, Path(folder) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_ddp_gradients_equal(tmp_path) -> None:
    """Each of 2 gloo ranks scores 4 of the 8 pairs; DDP averages: mean of the two 4-pair means
    = the 8-pair mean, so every rank's all-reduced gradient equals one process's on all pairs."""
    mp.spawn(_ddp_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    model = lora_model("llama", "sdpa")
    single = _capo_grads(_Scores(model), model, collate(PAIRS, PAD))
    assert any(g.abs().max() > 1e-3 for g in single)
    for rank in range(2):
        grads = torch.load(tmp_path / f"rank{rank}.pt")
        for packed, unpacked, want in zip(grads[True], grads[False], single, strict=True):
            close(packed, unpacked)
            close(packed, want)
