"""Greedy translations of prompts, batched, with the model's own ``generate`` and a KV cache.

Prompts are rendered by ``capo.templates.render_pair`` (the run's prompt and chat
template), left-padded, and decoded greedily until a stop token (EOS, or the
template's end-of-turn) or ``max_new_tokens``. ``generate`` keeps one step's
logits at a time, and transformers computes the prompt's logits for its last
position only, so the batch × length × vocabulary tensor is never held.
A generation that reaches ``max_new_tokens`` without a stop token is marked
``truncated``, never silently cut.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Generation:
    text: str
    n_tokens: int
    truncated: bool


def stop_token_ids(tokenizer, response_ids: Sequence[int]) -> list[int]:
    """EOS, and the last token of a rendered response when it is a special token (an end-of-turn)."""
    stops = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if response_ids and response_ids[-1] in set(tokenizer.all_special_ids) and response_ids[-1] not in stops:
        stops.append(response_ids[-1])
    return stops


def left_padded(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, T] input ids padded on the left, and the attention mask."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        mask[i, width - len(prompt) :] = 1
    return ids, mask


def _cut(tokenizer, new_ids: list[int], stops: Sequence[int], max_new_tokens: int) -> Generation:
    end = next((i for i, t in enumerate(new_ids) if t in stops), None)
    kept = new_ids if end is None else new_ids[:end]
    truncated = end is None and len(new_ids) >= max_new_tokens
    return Generation(tokenizer.decode(kept, skip_special_tokens=True).strip(), len(kept), truncated)


@torch.no_grad()
def generate(
    model: nn.Module,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    stops: Sequence[int],
    max_new_tokens: int = 160,
    batch_size: int = 8,
    base: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> list[Generation]:
    """Greedy generations in the order of ``prompts``; ``base`` disables the LoRA adapters."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths: less padding
    results: dict[int, Generation] = {}
    adapters_off = model.disable_adapter() if base else contextlib.nullcontext()
    model.eval()
    with adapters_off:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            ids, mask = left_padded([prompts[i] for i in chunk], pad)
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                eos_token_id=list(stops),
                pad_token_id=pad,
                use_cache=True,
            )
            for row, index in enumerate(chunk):
                new_ids = out[row, ids.shape[1] :].tolist()
                results[index] = _cut(tokenizer, new_ids, stops, max_new_tokens)
            if on_progress:
                on_progress(len(results))
    return [results[i] for i in range(len(prompts))]
