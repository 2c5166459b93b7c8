"""Scoring throughput and peak memory: capo/scoring.py against a naive full-logits forward.

The model has Gemma 3 270M's vocabulary (262,144) with a small random body,
so the vocabulary projection, the part chunking changes, dominates. For each
batch size and sequence length it prints pairs/s, tokens/s and the peak
memory of forward + backward: each cell runs in its own subprocess and
reports its peak RSS above the RSS it had once the model was built.

    python bench/score.py            # batch 2/4/8 x length 64/128/256
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cell(mode: str, batch: int, length: int, repeats: int, train_head: bool) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from capo.scoring import SequenceBatch, response_logps

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=262_144,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.lm_head.weight.requires_grad_(train_head)  # frozen, as under LoRA, unless --train-head
    ids = torch.randint(0, config.vocab_size, (2 * batch, length))
    prompt = length // 2
    rows = torch.arange(2 * batch).repeat_interleave(length - prompt)
    cols = torch.arange(prompt, length).repeat(2 * batch)
    data = SequenceBatch(ids, torch.ones_like(ids), rows, cols, torch.full((2 * batch,), length - prompt))
    baseline = rss_mb()

    def naive() -> torch.Tensor:
        logits = model(input_ids=data.input_ids, attention_mask=data.attention_mask).logits
        token = logits.log_softmax(-1)[rows, cols - 1].gather(-1, ids[rows, cols].unsqueeze(-1)).squeeze(-1)
        return torch.zeros(2 * batch).index_add(0, rows, token)

    def chunked() -> torch.Tensor:
        out = response_logps(model, data)
        return torch.cat([out.chosen, out.rejected])

    fn = chunked if mode == "chunked" else naive
    fn().sum().backward()  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        fn().sum().backward()
    seconds = (time.perf_counter() - started) / repeats
    return {
        "pairs_per_second": batch / seconds,
        "tokens_per_second": 2 * batch * length / seconds,
        "peak_mb_over_baseline": rss_mb() - baseline,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="2,4,8")
    parser.add_argument("--lengths", default="64,128,256")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--train-head",
        action="store_true",
        help="train the output head too (checkpointed path); by default it is frozen, as under LoRA",
    )
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        mode, batch, length = args.cell.split(":")
        print(json.dumps(cell(mode, int(batch), int(length), args.repeats, args.train_head)))
        return
    print(
        f"{'batch':>5} {'length':>6} | {'naive pairs/s':>13} {'MB':>6} | {'chunked pairs/s':>15} {'MB':>6} | "
        f"{'speed x':>7} {'memory x':>8}"
    )
    for batch in map(int, args.batches.split(",")):
        for length in map(int, args.lengths.split(",")):
            res = {}
            for mode in ("naive", "chunked"):
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--cell",
                        f"{mode}:{batch}:{length}",
                        "--repeats",
                        str(args.repeats),
                        *(["--train-head"] if args.train_head else []),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                res[mode] = json.loads(out.stdout.strip().splitlines()[-1])
            n, c = res["naive"], res["chunked"]
            print(
                f"{batch:>5} {length:>6} | "
                f"{n['pairs_per_second']:>13.2f} {n['peak_mb_over_baseline']:>6.0f} | "
                f"{c['pairs_per_second']:>15.2f} {c['peak_mb_over_baseline']:>6.0f} | "
                f"{c['pairs_per_second'] / n['pairs_per_second']:>7.2f} "
                f"{c['peak_mb_over_baseline'] / max(n['peak_mb_over_baseline'], 1):>8.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
