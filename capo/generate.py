"""Generations of prompts, batched, with the model's own ``generate`` and a KV cache: greedy, or
sampled at a temperature with a seed per prompt.

Prompts are rendered by ``capo.templates.render_pair`` (the run's prompt and chat
template), left-padded, and decoded until a stop token (EOS, or the template's end-of-turn),
a stop string (a plain-text turn marker such as zephyr's ``<|user|>``, cut from the text) or
``max_new_tokens``.

``temperature`` 0 is greedy (argmax, as before sampling existed). Above 0 each next token is drawn
from softmax(logits / temperature) over the whole vocabulary (no top-k, no top-p) by the Gumbel-max
trick: argmax(logits / T + G) with G standard Gumbel noise drawn from a ``torch.Generator`` of the
prompt's own seed (``SeededSampling``). A prompt's text therefore depends on its seed and on nothing
else in the batch (neither its neighbours nor the global RNG), so the same seed gives the same text.

``generate`` keeps one step's logits at a time, and transformers computes the prompt's logits for its last
position only, so the batch × length × vocabulary tensor is never held.
A generation that reaches ``max_new_tokens`` without a stop token is marked
``truncated``, never silently cut.

Generation runs on the device the model is on; ``load_generation_model`` puts it on the device it
is given (a worker's ``--device``), once per job, for every split and for both the adapter and the
base (``base=True`` disables the adapter, no second load). ``generation_model`` picks the fastest
kernels there: training turns bitsandbytes' CPU inference kernel for 4-bit layers off (it has
no backward, capo/precision.py), generation turns it back on; and a 4-bit base, whose other
weights (head, embeddings, norms) peft's ``prepare_model_for_kbit_training`` made float32 for
training, decodes with them back in its 16-bit compute dtype, as transformers loads such a model:
decoding reads the whole head every token (half the bytes). The LoRA adapter goes to that dtype
too, as bf16 autocast computes it in training and evaluation (``train.bf16``), so activations
stay 16-bit instead of being converted twice per adapted layer (PEFT computes LoRA in its
weights' dtype); its weights are rounded by at most 2⁻⁹ relative, far below the 4-bit base's
own rounding. On a CPU the adapter's generations go through dense copies of its 4-bit layers with
the update merged in, W = dequant(W₄) + s·B·A in the compute dtype (swapped in while the adapter
generates; the base's generations keep the 4-bit kernel): 126 small LoRA products per token
cost more there than the matmuls themselves. Merging into the 4-bit weights instead (PEFT's
merge) would re-quantise them; a GPU keeps the adapter unmerged (not measured there).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import LogitsProcessor

from capo.config import ModelConfig


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


def use_4bit_inference_kernels(model: nn.Module) -> int:
    """Let bitsandbytes' 4-bit layers take its CPU inference kernel again where this CPU has it (the
    inverse of ``capo.precision.keep_4bit_layers_differentiable``); returns the layers changed."""
    changed = 0
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            from bitsandbytes.functional import has_avx512bf16

            module.support_avx512bf16_for_cpu = has_avx512bf16()
            changed += 1
    return changed


def _compute_dtype_of_4bit(model: nn.Module) -> torch.dtype | None:
    """The compute dtype of the model's 4-bit layers (None when it has none)."""
    return next((m.compute_dtype for m in model.modules() if hasattr(m, "support_avx512bf16_for_cpu")), None)


def float32_weights_to(model: nn.Module, dtype: torch.dtype) -> int:
    """Cast every float32 weight (head, embeddings, norms, LoRA; 4-bit ones are not float32) to
    ``dtype``, in place (a tied head stays tied); returns how many were cast."""
    cast = 0
    for param in model.parameters():
        if param.dtype == torch.float32:
            param.data = param.data.to(dtype)
            cast += 1
    return cast


def _merged_dense(lora_layer: nn.Module, dtype: torch.dtype) -> nn.Linear:
    """A dense ``nn.Linear`` computing a LoRA-wrapped 4-bit layer with its active adapter merged in."""
    from peft.utils.integrations import dequantize_bnb_weight

    base = lora_layer.get_base_layer()
    weight = dequantize_bnb_weight(base.weight, state=base.weight.quant_state).float()
    weight += lora_layer.get_delta_weight(lora_layer.active_adapters[0]).float()
    dense = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None, dtype=dtype)
    with torch.no_grad():
        dense.weight.copy_(weight)
        if base.bias is not None:
            dense.bias.copy_(base.bias)
    return dense.to(weight.device).eval()


def merge_adapter_for_cpu(model: nn.Module, dtype: torch.dtype) -> int:
    """Build the merged dense copy of every LoRA-wrapped 4-bit layer on a CPU (before the 4-bit kernel
    repacks its weights) for ``generate`` to swap in; returns how many."""
    from peft.tuners.lora import LoraLayer

    merged = []
    for name, module in model.named_modules():
        base = module.get_base_layer() if isinstance(module, LoraLayer) else None
        unpacked = base is not None and not getattr(base.weight.quant_state, "packing_format_for_cpu", False)
        if unpacked and base.weight.device.type == "cpu" and len(module.active_adapters) == 1:
            parent, _, attribute = name.rpartition(".")
            merged.append((model.get_submodule(parent), attribute, module, _merged_dense(module, dtype)))
    model._capo_merged = merged
    return len(merged)


@contextlib.contextmanager
def _merged_layers_in(model: nn.Module):
    """Swap the merged dense copies (``merge_adapter_for_cpu``) in for the adapter's generations."""
    merged = getattr(model, "_capo_merged", [])
    for parent, attribute, _, dense in merged:
        setattr(parent, attribute, dense)
    try:
        yield
    finally:
        for parent, attribute, lora_layer, _ in merged:
            setattr(parent, attribute, lora_layer)


def _contiguous_input(module: nn.Module, args: tuple) -> tuple:
    return (args[0].contiguous(), *args[1:])


def generation_model(model: nn.Module) -> nn.Module:
    """``model`` (a base, or a PEFT model around one) in eval mode with the fastest kernels for greedy
    decoding on its device: bitsandbytes' 4-bit inference kernel, and a 4-bit base's other weights and
    the adapter in its 16-bit compute dtype (for training they are float32). Not for training after."""
    if use_4bit_inference_kernels(model):
        dtype = _compute_dtype_of_4bit(model)
        if dtype in (torch.bfloat16, torch.float16):
            merge_adapter_for_cpu(model, dtype)
            float32_weights_to(model, dtype)
    # The prompt's step feeds the head the last position only, hidden[:, -1:, :], a strided view:
    # torch's CPU matmul cannot fold it into one [B, H] @ [H, V] product and makes a bmm with the
    # head weight expanded over the batch, which in bf16 it copies (B × V × H values: 2.7 GB for
    # Gemma 3 at batch 8; measured 12 of 14 s of a generation). A contiguous input folds.
    head = model.get_output_embeddings()
    if head is not None and not getattr(head, "_capo_contiguous_input", False):
        head.register_forward_pre_hook(_contiguous_input)
        head._capo_contiguous_input = True
    return model.eval()


def load_generation_model(cfg: ModelConfig, cache_dir, device: torch.device, adapter_dir=None):
    """(model, tokenizer): the base on ``device`` with the adapter saved in ``adapter_dir`` (None: the
    base alone), ready for ``generate`` (``generation_model``). Load it once per job."""
    from peft import PeftModel

    from capo.models import load_base_model, peft_wrapping

    loaded = load_base_model(cfg, cache_dir, device)
    with peft_wrapping():
        model = PeftModel.from_pretrained(loaded.model, str(adapter_dir)) if adapter_dir else loaded.model
    return generation_model(model), loaded.tokenizer


class SeededSampling(LogitsProcessor):
    """Sampling at ``temperature`` as greedy decoding of perturbed scores (the Gumbel-max trick):
    argmax(s / T + G) is a draw from softmax(s / T) when G is i.i.d. standard Gumbel noise. Row i's
    noise comes from its own generator seeded with ``seeds[i]``; G = −log E with E ~ Exp(1)."""

    def __init__(self, temperature: float, seeds: Sequence[int], device: torch.device) -> None:
        self.temperature = temperature
        self.device = device
        self.generators = [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]

    def gumbel(self, vocabulary: int) -> torch.Tensor:
        """``[rows, vocabulary]`` standard Gumbel noise, row i from generator i."""
        draws = [
            torch.empty(vocabulary, device=self.device).exponential_(generator=g) for g in self.generators
        ]
        return -torch.stack(draws).clamp_min(torch.finfo(torch.float32).tiny).log()

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return scores.float() / self.temperature + self.gumbel(scores.shape[-1])


def _before_stop_string(tokenizer, kept: list[int], stop_strings: Sequence[str]) -> tuple[str, int] | None:
    """(the text before the first stop string, how many tokens decode to text before it); None
    without one. Generation stops once a stop string is complete, so it ends the ids: few decodes."""
    text = tokenizer.decode(kept, skip_special_tokens=True)
    found = [i for i in (text.find(s) for s in stop_strings) if i >= 0]
    if not found:
        return None
    start, used = min(found), len(kept)
    while used > 0 and len(tokenizer.decode(kept[:used], skip_special_tokens=True)) > start:
        used -= 1
    return text[:start], used


def _cut(
    tokenizer, new_ids: list[int], stops: Sequence[int], max_new_tokens: int, stop_strings: Sequence[str] = ()
) -> Generation:
    end = next((i for i, t in enumerate(new_ids) if t in stops), None)
    kept = new_ids if end is None else new_ids[:end]
    before = _before_stop_string(tokenizer, kept, stop_strings) if stop_strings else None
    if before is not None:
        return Generation(before[0].strip(), before[1], False)
    truncated = end is None and len(new_ids) >= max_new_tokens
    return Generation(tokenizer.decode(kept, skip_special_tokens=True).strip(), len(kept), truncated)


def _decoding(
    tokenizer, temperature: float, seeds: Sequence[int], device, stop_strings: Sequence[str]
) -> dict:
    """``model.generate`` arguments for greedy (T = 0) or seeded sampling, and the stop strings."""
    if temperature < 0:
        raise ValueError(f"temperature must be at least 0, not {temperature}")
    extra: dict = {"do_sample": False, "num_beams": 1}
    if temperature > 0:
        extra["logits_processor"] = [SeededSampling(temperature, seeds, device)]
    if stop_strings:
        extra |= {"stop_strings": list(stop_strings), "tokenizer": tokenizer}
    return extra


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
    temperature: float = 0.0,
    seeds: Sequence[int] | None = None,
    stop_strings: Sequence[str] = (),
) -> list[Generation]:
    """Generations in the order of ``prompts``; ``base`` disables the LoRA adapters. ``temperature``
    0 is greedy; above it, prompt i is sampled with seed ``seeds[i]`` (default 0 for every prompt).
    A generation ends at a stop token or at the first of ``stop_strings`` (cut from its text)."""
    seeds = list(seeds) if seeds is not None else [0] * len(prompts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths: less padding
    results: dict[int, Generation] = {}
    adapters_off = model.disable_adapter() if base else _merged_layers_in(model)
    model.eval()
    with adapters_off:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            ids, mask = left_padded([prompts[i] for i in chunk], pad)
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                eos_token_id=list(stops),
                pad_token_id=pad,
                use_cache=True,
                **_decoding(tokenizer, temperature, [seeds[i] for i in chunk], device, stop_strings),
            )
            for row, index in enumerate(chunk):
                new_ids = out[row, ids.shape[1] :].tolist()
                results[index] = _cut(tokenizer, new_ids, stops, max_new_tokens, stop_strings)
            if on_progress:
                on_progress(len(results))
    return [results[i] for i in range(len(prompts))]
