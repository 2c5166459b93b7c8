"""QLoRA on a device with native bf16: the head and embeddings stay bf16 (peft would make them float32),
log-softmax and the loss stay float32, and the loss matches the float32 head's within bf16 rounding.
The head's chunk size is a token budget per device.

This CPU has no bf16 matrix unit, so ``native_bf16`` is patched to say it has: the 4-bit path
then does exactly what it does on a GPU with bf16 (CPU bf16 matmuls are emulated, not wrong).
"""

import math
from pathlib import Path

import bitsandbytes as bnb
import pytest
import torch

import capo.models as models
from capo.config import ModelConfig
from capo.head_logps import head_chunk_tokens
from capo.objectives import compute_objective
from capo.packing import batch_response_logps, make_batch
from capo.scoring import tokenize_pair
from tests.capo.test_train import PAIRS

CPU = torch.device("cpu")
QLORA_BF16 = ModelConfig(name_or_path="tiny-random-llama", dtype="bfloat16", load_in_4bit=True)
U = 2.0**-8  # bf16's unit roundoff: 8 significant bits, round to nearest


def load_4bit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: bool) -> torch.nn.Module:
    monkeypatch.setattr(models, "native_bf16", lambda device: native)
    return models.load_base_model(QLORA_BF16, tmp_path, CPU).model.eval()


def test_the_head_and_embeddings_stay_bf16_on_the_4bit_path(tmp_path, monkeypatch) -> None:
    model = load_4bit(tmp_path, monkeypatch, native=True)
    assert model.get_output_embeddings().weight.dtype == torch.bfloat16
    assert model.get_input_embeddings().weight.dtype == torch.bfloat16
    assert model.model.norm.weight.dtype == torch.float32  # norms stay as peft leaves them
    assert sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules()) == 14  # still QLoRA
    upcast = load_4bit(tmp_path, monkeypatch, native=False)  # no bf16 unit: peft's float32 head
    assert upcast.get_output_embeddings().weight.dtype == torch.float32


def scored(model: torch.nn.Module, tokenizer) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(chosen, rejected) summed log-probs of eight pairs under bf16 autocast, the largest |logit| and
    the response tokens per sequence."""
    pairs = [
        tokenize_pair(tokenizer, p.pair_id, p.direction, p.prompt, p.chosen, p.rejected, 64)
        for p in PAIRS[:8]
    ]
    batch = make_batch(pairs, tokenizer.pad_token_id, packed=True)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = batch_response_logps(model, batch, per_token=True)
        hidden = model.model(input_ids=batch.input_ids).last_hidden_state
        largest = model.get_output_embeddings()(hidden.to(model.lm_head.weight.dtype)).float().abs().max()
    return torch.stack([out.chosen, out.rejected], 1), largest, batch.n_tokens.view(2, -1).t()


def test_the_loss_with_a_bf16_head_matches_the_float32_heads_within_bf16_rounding(
    tmp_path, monkeypatch
) -> None:
    tokenizer = models.byte_level_tokenizer()
    bf16, largest, n_tokens = scored(load_4bit(tmp_path, monkeypatch, native=True), tokenizer)
    fp32, _, _ = scored(load_4bit(tmp_path, monkeypatch, native=False), tokenizer)
    assert bf16.dtype == fp32.dtype == torch.float32  # log-softmax and sums stay float32
    # Tolerance. The weights are the same numbers in both (bf16 values; peft's float32 copy is exact).
    # What differs is rounding to bf16: the hidden state entering the head and each logit z (the
    # bf16 matmul's output), each within a relative U, so a token's z_y and logsumexp(z) each move by
    # at most about 2·U·max|z|, and its log-prob by 4·U·max|z|. The embeddings' bf16 output also
    # rounds the residual stream once more per layer; one more U·max|z| per token covers it.
    # A sequence's sum of n tokens: n · 5·U·max|z|.
    per_token = 5 * U * float(largest)
    tolerance = n_tokens * per_token
    assert ((bf16 - fp32).abs() <= tolerance).all()
    assert (bf16 - fp32).abs().max() > 0  # the head did run in bf16: the test can tell the two apart
    # CAPO's loss −log σ(β(lw − ll) + α·lw/ll) moves by at most |∂L/∂lw|·Δlw + |∂L/∂ll|·Δll, with
    # |∂L/∂lw| ≤ β + α/|ll| and |∂L/∂ll| ≤ β + α·|lw|/ll² (σ ≤ 1).
    params = {"beta": 0.1, "alpha": 2.0}
    losses = [compute_objective("capo", _pair_logps(x, n_tokens), params).loss for x in (bf16, fp32)]
    lw, ll = fp32[:, 0].abs(), fp32[:, 1].abs()
    slope_w, slope_l = 0.1 + 2.0 / ll, 0.1 + 2.0 * lw / ll**2
    bound = slope_w * tolerance[:, 0] + slope_l * tolerance[:, 1]
    assert ((losses[0] - losses[1]).abs() <= bound).all()


def _pair_logps(logps: torch.Tensor, n_tokens: torch.Tensor):
    from capo.objectives import PairLogps

    return PairLogps(logps[:, 0], logps[:, 1], n_tokens[:, 0], n_tokens[:, 1])


def test_the_heads_chunk_is_a_token_budget_per_device() -> None:
    # CPU: 2^23 logits a chunk, as measured: 2^23 / 262,144 = 32 tokens of Gemma 3's vocabulary.
    assert head_chunk_tokens(262_144, "cpu") == 8_388_608 // 262_144 == 32
    assert head_chunk_tokens(128_256, "cpu") == 8_388_608 // 128_256 == 65
    # CUDA: 1,024 tokens (well past the ~150 where re-reading the head stops bounding its speed) …
    assert head_chunk_tokens(128_256, "cuda") == 1_024  # 1,024 · 128,256 · 4 B = 0.49 GiB of logits
    assert head_chunk_tokens(262_144, "cuda") == 1_024  # 1,024 · 262,144 = 2^28 logits, the cap
    # … capped at 2^28 logits (1 GiB of float32): a 1M-token vocabulary gets 2^28 / 2^20 = 256.
    assert head_chunk_tokens(1 << 20, "cuda") == 256
    assert head_chunk_tokens(1 << 30, "cpu") == head_chunk_tokens(1 << 30, "cuda") == 1  # never 0
    assert math.isclose(1_024 * 262_144 * 4 / 2**30, 1.0)
