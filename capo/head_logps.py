"""Per-token log-probs through the output head, chunk by chunk, never holding tokens × vocabulary.

For hidden state h_t (row of ``hidden``, [K, H]), head weight W ([V, H]), optional
soft-cap c and target y_t:

    z_t = W h_t,  s_t = c·tanh(z_t / c) (or z_t),  log p_t = s_t[y_t] − logsumexp(s_t)   (nats)

Two ways to get gradients without storing [K, V] logits:

* ``frozen_head_logps`` — when W is frozen (LoRA never trains the head), the
  gradient is computed during the forward pass, chunk by chunk:
  ∂log p_t/∂h_t = Wᵀ[(e_{y_t} − softmax(s_t)) ⊙ ∂s_t/∂z_t], a [K, H] tensor. Backward
  then only scales it by the upstream gradient: no recomputation of the head,
  one logits buffer per chunk.
* ``checkpointed_head_logps`` — when W needs a gradient too, each chunk runs
  under activation checkpointing and is recomputed in backward.

Precision: the head runs outside any autocast, in its weight's dtype (hidden states are
cast to it), and log-softmax in float32 (float64 for a float64 model). Under bf16
autocast the decoder computes in bf16 while logits stay float32: autocast would round
every logit to bf16 (±0.06 at |z| ≈ 16) and, a frozen float32 weight never being cached,
re-cast the whole [V, H] weight for every chunk (measured on CPU: 3× the head's time).
A model loaded in bf16 (``model.dtype: bfloat16``, as paper-cpu does) has a bf16 head: its
logits are then bf16 products, and only the log-softmax is float32. Under QLoRA on a device with
native bf16, capo/models.py keeps the head bf16 too (peft's ``prepare_model_for_kbit_training``
would make it float32, off the tensor cores).

Chunk size (``head_chunk_tokens``), a budget per device. Each chunk re-reads the whole head
weight (V·H values) to do 2·n·V·H multiply-adds for its forward logits and 2·n·V·H more for
the gradient, so its arithmetic intensity over the weight is about 2n FLOP per byte of bf16
weight. An H100/H200 does about 990 TFLOP/s of dense bf16 against 3.35–4.8 TB/s: the ridge is
200–300 FLOP/byte, so n must be well above 150 tokens for the head to be compute-bound. CUDA
takes 1,024 tokens, capped at 2²⁸ logits (1 GiB of float32; 0.5 GB at Llama 3's 128k vocabulary,
1 GiB at Gemma 3's 262k): chosen by this arithmetic, not yet measured on a GPU. A CPU has no such
ridge; it keeps 2²³ logits (32 MiB: 32 tokens at 262k), measured: larger chunks bought no speed
and cost peak memory (bench/README.md).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

CPU_CHUNK_LOGITS = 1 << 23  # logits (tokens × vocabulary) per chunk on a CPU: measured, see above
CUDA_CHUNK_TOKENS = 1024  # tokens per chunk on a GPU: compute-bound by the arithmetic above
CUDA_CHUNK_LOGITS = 1 << 28  # ...but at most 1 GiB of float32 logits per chunk


def head_chunk_tokens(vocab: int, device_type: str) -> int:
    """Response tokens per head chunk on ``device_type`` for a ``vocab``-row head (at least 1).

    cuda: min(1024, 2²⁸ // V); anything else: 2²³ // V (32 at V = 262,144)."""
    if device_type == "cuda":
        return max(1, min(CUDA_CHUNK_TOKENS, CUDA_CHUNK_LOGITS // vocab))
    return max(1, CPU_CHUNK_LOGITS // vocab)


def _softcapped(logits: Tensor, softcap: float | None) -> tuple[Tensor, Tensor | None]:
    """(s, ∂s/∂z): s = c·tanh(z/c) and 1 − tanh²(z/c) with a soft-cap, else (z, None); in place on z."""
    if not softcap:
        return logits, None
    tanh = logits.div_(softcap).tanh_()
    derivative = 1 - tanh * tanh
    return tanh.mul_(softcap), derivative


def _compute_dtype(hidden: Tensor) -> torch.dtype:
    return torch.float64 if hidden.dtype == torch.float64 else torch.float32


def _chunk_logps(hidden: Tensor, targets: Tensor, head: nn.Module, softcap: float | None) -> Tensor:
    logits = head(hidden).to(_compute_dtype(hidden))
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


class _FrozenHeadLogps(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: Tensor, targets: Tensor, weight: Tensor, softcap, chunk: int) -> Tensor:
        dtype = _compute_dtype(hidden)
        logps = torch.empty(hidden.shape[0], dtype=dtype, device=hidden.device)
        grad_hidden = torch.empty_like(hidden)
        rows = torch.arange(chunk, device=hidden.device)
        for start in range(0, hidden.shape[0], chunk):
            h, t = hidden[start : start + chunk], targets[start : start + chunk]
            logits = (h @ weight.t()).to(dtype)
            logits, cap_derivative = _softcapped(logits, softcap)
            target_logits = logits.gather(-1, t.unsqueeze(-1)).squeeze(-1)
            top = logits.amax(dim=-1, keepdim=True)
            probs = logits.sub_(top).exp_()  # reuses the logits buffer
            total = probs.sum(dim=-1, keepdim=True)
            logps[start : start + len(t)] = target_logits - (top + total.log()).squeeze(-1)
            probs.div_(total)
            probs[rows[: len(t)], t] -= 1  # softmax − onehot = −∂log p/∂s
            if cap_derivative is not None:
                probs.mul_(cap_derivative)
            grad_hidden[start : start + len(t)] = -(probs.to(weight.dtype) @ weight)
        ctx.save_for_backward(grad_hidden)
        return logps

    @staticmethod
    def backward(ctx, grad_logps: Tensor):
        (grad_hidden,) = ctx.saved_tensors
        return grad_hidden * grad_logps.unsqueeze(-1).to(grad_hidden.dtype), None, None, None, None


def frozen_head_logps(
    hidden: Tensor, targets: Tensor, weight: Tensor, softcap: float | None, chunk: int
) -> Tensor:
    """log p_t for [K, H] hidden states and a head weight that gets no gradient; [K], float32 or float64."""
    if weight.requires_grad:
        raise ValueError("frozen_head_logps needs a frozen head weight; use checkpointed_head_logps")
    return _FrozenHeadLogps.apply(hidden, targets, weight, softcap, chunk)


def _over_chunks(score, hidden: Tensor, targets: Tensor, chunk: int) -> Tensor:
    """``score(hidden_chunk, target_chunk)`` for each chunk of ``chunk`` rows, concatenated."""
    pieces = [score(hidden[s : s + chunk], targets[s : s + chunk]) for s in range(0, hidden.shape[0], chunk)]
    return torch.cat(pieces) if pieces else hidden.new_zeros(0, dtype=_compute_dtype(hidden))


def checkpointed_head_logps(
    hidden: Tensor, targets: Tensor, head: nn.Module, softcap: float | None, chunk: int
) -> Tensor:
    """log p_t with every chunk checkpointed (the head is recomputed in backward)."""
    return _over_chunks(
        lambda h, t: checkpoint(_chunk_logps, h, t, head, softcap, use_reentrant=False),
        hidden,
        targets,
        chunk,
    )


def head_token_logps(
    hidden: Tensor, targets: Tensor, head: nn.Module, softcap: float | None, chunk: int
) -> Tensor:
    """log p_t for every row of ``hidden`` ([K, H]) by the cheapest exact path for the gradients asked for.

    The fused path needs a plain, bias-free ``nn.Linear`` head that gets no gradient
    (a head wrapped by an adapter or trained goes through checkpointing).
    """
    with torch.autocast(hidden.device.type, enabled=False):
        hidden = hidden.to(head.weight.dtype)
        if (
            not torch.is_grad_enabled()
            or not hidden.requires_grad
            and not any(p.requires_grad for p in head.parameters())
        ):
            with torch.no_grad():
                return _over_chunks(lambda h, t: _chunk_logps(h, t, head, softcap), hidden, targets, chunk)
        plain_frozen = type(head) is nn.Linear and head.bias is None and not head.weight.requires_grad
        if plain_frozen:
            return frozen_head_logps(hidden, targets, head.weight, softcap, chunk)
        return checkpointed_head_logps(hidden, targets, head, softcap, chunk)
