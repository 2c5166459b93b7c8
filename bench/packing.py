"""Packed, prompt-shared scoring (capo/packing.py) against today's padded scorer (capo/scoring.py).

A model with Gemma 3 270M's configuration (random weights, seed 0, float32, SDPA),
LoRA r 16 / alpha 32 / dropout 0 on all linear layers, and ~8 pairs of real
lengths (prompt 45–75 tokens, responses 35–65, random ids). Each timing is one
forward + backward of the mean CAPO loss; the two scorers alternate, after one
warm-up each, and the medians are compared. The padded scorer runs 2B rows of
the longest prompt + response; the packed one runs each prompt once, and packs
whole pairs into rows as wide as the longest pair.

    python bench/packing.py                 # 8 pairs, 5 repeats
    python bench/packing.py --pairs 16 --repeats 3
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM  # noqa: E402

from capo.config import LoraConfig  # noqa: E402
from capo.models import EMBEDDED_GEMMA, add_lora, embedded_gemma_folder  # noqa: E402
from capo.objectives import PairLogps, compute_objective  # noqa: E402
from capo.packing import batch_response_logps, make_batch, supports_packing  # noqa: E402
from capo.scoring import TokenizedPair  # noqa: E402

CACHES = [Path.home() / ".capo-lab" / "models", Path.home() / ".cache" / "capo-lab-bench"]


def gemma_config():
    """Gemma 3 270M's config from a converted copy if one exists, else converted now (~1 min)."""
    folder = next((c / EMBEDDED_GEMMA for c in CACHES if (c / EMBEDDED_GEMMA / "config.json").exists()), None)
    return AutoConfig.from_pretrained(folder or embedded_gemma_folder(CACHES[-1]))


def random_pairs(n: int, vocab: int, seed: int = 0) -> list[TokenizedPair]:
    rng = random.Random(seed)

    def ids(lo: int, hi: int) -> tuple[int, ...]:
        return tuple(rng.randrange(3, vocab) for _ in range(rng.randint(lo, hi)))

    return [TokenizedPair(i, "en-de", (2, *ids(44, 74)), ids(35, 65), ids(35, 65)) for i in range(n)]


def step(model, pairs, pad_id: int, packed: bool) -> tuple[tuple[float, float], torch.Tensor]:
    """(wall, CPU) seconds for one forward + backward of the mean CAPO loss, and the summed log-probs.

    CPU time (all threads of this process) is the steadier measure on a machine shared with other work.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    batch = make_batch(pairs, pad_id, packed)
    out = batch_response_logps(model, batch)
    logps = PairLogps(out.chosen, out.rejected, out.chosen_tokens, out.rejected_tokens)
    compute_objective("capo", logps, {}).loss.mean().backward()
    seconds = (time.perf_counter() - started, time.process_time() - cpu_started)
    model.zero_grad(set_to_none=True)
    return seconds, torch.cat([out.chosen, out.rejected]).detach()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = gemma_config()
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = add_lora(AutoModelForCausalLM.from_config(config, dtype=torch.float32), LoraConfig(dropout=0.0))
    print(supports_packing(model)[1])
    pairs, pad = random_pairs(args.pairs, config.vocab_size), config.pad_token_id
    padded, packed = make_batch(pairs, pad, False), make_batch(pairs, pad, True)
    print(f"decoder tokens: padded {tuple(padded.input_ids.shape)}, packed {tuple(packed.input_ids.shape)}")
    times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    sums = {}
    for repeat in range(args.repeats + 1):  # the first round warms up
        for mode in (False, True) if repeat % 2 else (True, False):
            seconds, sums[mode] = step(model, pairs, pad, mode)
            if repeat:
                times[mode].append(seconds)
    print(f"max |packed - padded| summed log-prob: {(sums[True] - sums[False]).abs().max().item():.2e}")
    for i, clock in enumerate(("wall", "cpu")):
        slow = statistics.median(t[i] for t in times[False])
        fast = statistics.median(t[i] for t in times[True])
        print(f"{clock}: padded {slow:.2f} s, packed {fast:.2f} s per step (median of {args.repeats})")
        print(f"{clock}_speed_ratio={slow / fast:.2f}")


if __name__ == "__main__":
    main()
