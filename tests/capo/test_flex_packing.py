"""FlexAttention scores packed, prompt-shared rows exactly as the padded scorer does.

The reference is the padded scorer (``collate`` + ``response_logps``) under SDPA, both in float32,
compared to 1e-5. torch's FlexAttention runs forward on CPU but has no backward there: the forward
test runs everywhere, the gradient test only on CUDA (skipped on CPU with that reason).
"""

from __future__ import annotations

import pytest
import torch

from capo.objectives import OBJECTIVES, PairLogps, compute_objective
from capo.packing import pack_pairs, packed_response_logps, supports_packing
from capo.scoring import collate, response_logps
from tests.capo.test_packing import PAD, PAIRS, ROW_TOKENS, lora_model

NO_CPU_BACKWARD = (
    f"FlexAttention has no backward on CPU (torch {torch.__version__}): the gradient test needs CUDA"
)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def flex_model(kind: str):
    model = lora_model(kind, "sdpa").to(device=DEVICE, dtype=torch.float32)
    model.set_attn_implementation("flex_attention")
    return model


def reference(model, **kwargs):
    """The padded scorer under SDPA on the model's device; the model's kernel is restored after."""
    model.set_attn_implementation("sdpa")
    try:
        return response_logps(model, collate(PAIRS, PAD).to(DEVICE), **kwargs)
    finally:
        model.set_attn_implementation("flex_attention")


def close(got, want) -> None:
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["llama", "gemma3"])  # gemma3: sliding and full layers, a mask each
def test_flex_packed_logps_equal_padded(kind) -> None:
    model = flex_model(kind)
    packed = pack_pairs(PAIRS, PAD, max_row_tokens=ROW_TOKENS).to(DEVICE)
    with torch.no_grad():
        assert supports_packing(model)[0]
        got = packed_response_logps(model, packed, per_token=True)
        want = reference(model, per_token=True)
        for field in ("chosen", "rejected", "token_logps"):
            close(getattr(got, field).cpu(), getattr(want, field).cpu())
        if kind == "gemma3":  # the comparison can fail: without the window the scores move
            model.config.sliding_window = 1000
            unwindowed = packed_response_logps(model, packed)
            assert (unwindowed.chosen - got.chosen).abs().max() > 1e-3


@pytest.mark.skipif(DEVICE == "cpu", reason="on CUDA packing with flex trains; see the next test for CPU")
def test_flex_packs_for_training_on_cuda() -> None:
    assert supports_packing(flex_model("llama"))[0]


@pytest.mark.skipif(DEVICE != "cpu", reason="the CPU refusal")
def test_flex_training_on_cpu_falls_back_to_padded_rows() -> None:
    ok, reason = supports_packing(flex_model("llama"))
    assert not ok and "no backward on CPU" in reason and "padded" in reason


@pytest.mark.skipif(DEVICE == "cpu", reason=NO_CPU_BACKWARD)
@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
@pytest.mark.parametrize("kind", ["llama", "gemma3"])
def test_flex_losses_and_lora_gradients_equal_padded(kind, objective) -> None:
    model = flex_model(kind)
    params = [p for p in model.parameters() if p.requires_grad]
    ref = (None, None)
    if OBJECTIVES[objective].needs_reference:
        with torch.no_grad(), model.disable_adapter():
            base = reference(model)
        ref = (base.chosen, base.rejected)

    def loss_and_grads(out):
        logps = PairLogps(out.chosen, out.rejected, out.chosen_tokens, out.rejected_tokens, *ref)
        loss = compute_objective(objective, logps, {}).loss.mean()
        return loss.detach(), torch.autograd.grad(loss, params)

    packed = pack_pairs(PAIRS, PAD, max_row_tokens=ROW_TOKENS).to(DEVICE)
    got_loss, got_grads = loss_and_grads(packed_response_logps(model, packed))
    want_loss, want_grads = loss_and_grads(reference(model))
    close(got_loss, want_loss)
    assert any(g.abs().max() > 1e-3 for g in want_grads)
    for got, want in zip(got_grads, want_grads, strict=True):
        close(got, want)


@pytest.mark.skipif(DEVICE != "cpu", reason="the CPU switch")
def test_a_cpu_run_asking_for_flex_trains_with_sdpa_and_says_so(tmp_path) -> None:
    from capo.flex_mask import train_without_flex_on_cpu

    model = flex_model("llama")
    note = train_without_flex_on_cpu(model)
    assert model.config._attn_implementation == "sdpa"
    assert "no backward on CPU" in note
    assert train_without_flex_on_cpu(model) is None  # nothing to switch the second time
