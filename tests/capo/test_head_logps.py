"""Chunked head log-probs (fused-gradient and checkpointed paths) equal autograd on full logits."""

import pytest
import torch
from torch import nn

from capo.head_logps import checkpointed_head_logps, frozen_head_logps, head_token_logps


def full_logits_logps(hidden, targets, weight, softcap):
    logits = hidden @ weight.t()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def make_inputs(seed: int = 0, k: int = 11, h: int = 6, v: int = 37):
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(k, h, generator=generator, dtype=torch.float64) * 3
    weight = torch.randn(v, h, generator=generator, dtype=torch.float64)
    targets = torch.randint(0, v, (k,), generator=generator)
    upstream = torch.randn(k, generator=generator, dtype=torch.float64)
    return hidden, weight, targets, upstream


@pytest.mark.parametrize("softcap", [None, 2.5])
@pytest.mark.parametrize("chunk", [1, 4, 64])
def test_frozen_head_values_and_gradients_match_autograd(softcap, chunk) -> None:
    hidden, weight, targets, upstream = make_inputs()
    got_h = hidden.clone().requires_grad_()
    got = frozen_head_logps(got_h, targets, weight, softcap, chunk)
    (got * upstream).sum().backward()
    want_h = hidden.clone().requires_grad_()
    want = full_logits_logps(want_h, targets, weight, softcap)
    (want * upstream).sum().backward()
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
    torch.testing.assert_close(got_h.grad, want_h.grad, rtol=0, atol=1e-10)


def test_checkpointed_head_gives_the_weight_its_gradient() -> None:
    hidden, weight, targets, upstream = make_inputs(1)
    head = nn.Linear(6, 37, bias=False, dtype=torch.float64)
    head.weight.data.copy_(weight)
    got = checkpointed_head_logps(hidden, targets, head, None, 3)
    (got * upstream).sum().backward()
    want_w = weight.clone().requires_grad_()
    (full_logits_logps(hidden, targets, want_w, None) * upstream).sum().backward()
    torch.testing.assert_close(head.weight.grad, want_w.grad, rtol=0, atol=1e-10)


def test_frozen_head_refuses_a_trainable_weight() -> None:
    hidden, weight, targets, _ = make_inputs()
    with pytest.raises(ValueError, match="frozen head"):
        frozen_head_logps(hidden, targets, weight.requires_grad_(), None, 4)


def test_dispatch_picks_the_fused_path_only_for_a_frozen_plain_linear(monkeypatch) -> None:
    hidden, weight, targets, _ = make_inputs()
    head = nn.Linear(6, 37, bias=False, dtype=torch.float64)
    calls = []
    monkeypatch.setattr("capo.head_logps.frozen_head_logps", lambda *a: calls.append("fused") or a[0][:, 0])
    monkeypatch.setattr(
        "capo.head_logps.checkpointed_head_logps", lambda *a: calls.append("checkpointed") or a[0][:, 0]
    )
    trainable_hidden = hidden.clone().requires_grad_()
    head_token_logps(trainable_hidden, targets, head, None, 4)
    head.weight.requires_grad_(False)
    head_token_logps(trainable_hidden, targets, head, None, 4)
    with torch.no_grad():
        no_grad = head_token_logps(trainable_hidden, targets, head, None, 4)
    assert calls == ["checkpointed", "fused"]
    torch.testing.assert_close(no_grad, full_logits_logps(hidden, targets, head.weight, None))


@pytest.mark.parametrize("trainable_head", [False, True])
def test_bf16_autocast_leaves_the_head_and_log_softmax_in_float32(trainable_head) -> None:
    hidden, weight, targets, upstream = (t.float() if t.is_floating_point() else t for t in make_inputs(2))
    head = nn.Linear(6, 37, bias=False)
    head.weight.data.copy_(weight)
    head.weight.requires_grad_(trainable_head)
    results = []
    for enabled in (False, True):
        h = hidden.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            got = head_token_logps(h, targets, head, 2.5, 4)
            with torch.no_grad():
                scored = head_token_logps(h, targets, head, 2.5, 4)
        (got * upstream).sum().backward()
        results.append((got.dtype, got.detach(), scored, h.grad))
    (dtype, *plain), (bf16_dtype, *autocast) = results
    assert dtype == bf16_dtype == torch.float32
    for a, b in zip(plain, autocast, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
