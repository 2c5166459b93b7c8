"""CAPO Lab's trainer against TRL's DPOTrainer on the same DPO job, on this machine.

Same model (Gemma 3 270M's architecture and 262k vocabulary, random weights),
same real MTPE pairs from ../shared/data, same LoRA (r 16, alpha 32, dropout
0.05, all linear layers), batch size, max length, AdamW, learning rate and
number of steps. Each trainer runs in its own subprocess, interleaved and
repeated; each reports wall time from "base model in memory" to "training
done" (LoRA wrap, tokenisation, reference log-probs and every step included),
its peak RSS and its training increment (peak RSS minus the RSS once the model
is in memory: what training itself costs, without weights and imports).

1. Same job, same precision: CAPO Lab at its defaults (packed prompt-shared scoring;
   train.bf16 auto, which is float32 on a CPU without bf16 matrix hardware) and TRL
   in float32 too (its default bf16 autocast is emulated and slower on such a CPU).
   Ends with ``speed_ratio=X memory_ratio=Y increment_ratio=Z`` (CAPO Lab ÷ TRL).
2. Fastest settings: TRL also with its padding-free and precomputed-reference
   option that runs here (precomputed reference log-probs; its padding-free mode is disabled in
   TRL 1.16); CAPO Lab at its defaults, which are its fastest here. Labelled as such.
3. ``--ablation``: CAPO Lab alone, padded float32 → prompt-shared → packed → + bf16.

    python bench/train_vs_trl.py --quick     # < 6 min on 2 CPU cores
    python bench/train_vs_trl.py --ablation --steps 4 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"


def make_model(folder: Path, cache: Path) -> None:
    """Gemma 3 270M's config and tokenizer with random weights (seed 0), saved once."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from capo.models import embedded_gemma_folder

    source = embedded_gemma_folder(cache)
    config = AutoConfig.from_pretrained(source)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)


def make_pairs(path: Path, n: int) -> None:
    """``n`` real preference pairs: DivEMT (six directions) and MLQE-PE en-de, the paper's template."""
    from capo.data import BuildOptions, build_pairs, read_all

    triples = read_all(
        [
            SHARED / "divemt" / "warmup.tsv",
            SHARED / "mlqe-pe" / "post-editing" / "train" / "en-de-train.tar.gz",
        ]
    )
    pairs, _ = build_pairs(triples, BuildOptions(per_direction=max(1, n // 7 + 1), seed=0))
    train = [p for p in pairs if p.split == "train"][:n]
    path.write_text(
        json.dumps(
            [
                {
                    "prompt": p.prompt,
                    "chosen": p.chosen,
                    "rejected": p.rejected,
                    "direction": p.direction,
                    "tie": p.tie,
                }
                for p in train
            ],
            ensure_ascii=False,
        )
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_now_mb() -> float:
    """Resident memory now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


LOADED_RSS: dict[str, float] = {}  # the RSS once the model is in memory, set by each trainer


def in_memory(model) -> float:
    """Touch every weight, so that the pages of a memory-mapped checkpoint are resident, and return the
    RSS then: without it the first forward pulls ~1 GB of weights in and bills it to training."""
    import torch

    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            tensor.sum()
    return rss_now_mb()


def run_capo(model_dir: Path, pairs: list[dict], args: argparse.Namespace) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from capo.config import config_from_dict
    from capo.models import LoadedModel
    from capo.train import TrainInputs, train

    class NullSink:
        def log_metrics(self, *a): ...
        def log_pair_scores(self, *a): ...
        def log_checkpoint(self, *a): ...
        def log_progress(self, *a): ...
        def log_note(self, *a): ...
        def log_base_scores(self, *a): ...
        def log_token_pieces(self, *a): ...

    loaded = LoadedModel(
        AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32),
        AutoTokenizer.from_pretrained(model_dir),
        "bench",
        torch.device("cpu"),
    )
    LOADED_RSS["mb"] = in_memory(loaded.model)
    cfg = config_from_dict(
        {
            "model": {"name_or_path": str(model_dir)},
            "data": {"max_length": args.max_length},
            "objective": {"name": "dpo", "beta": 0.1},
            "optim": {"lr": 1e-5, "scheduler": "linear", "warmup_ratio": 0.0, "max_grad_norm": 1.0},
            "train": {
                "batch_size": args.batch_size,
                "max_steps": args.steps,
                "evaluate": False,
                "gradient_checkpointing": args.gradient_checkpointing,
                "checkpoint_every": 10_000,
                "device": "cpu",
                "bf16": {"auto": "auto", "on": True, "off": False}[args.capo_bf16],
                "scoring": args.capo_scoring,
            },
        }
    )
    rows = [type("P", (), {**p, "pair_id": i}) for i, p in enumerate(pairs)]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        train(cfg, TrainInputs(rows, [], Path(tmp), Path(tmp)), NullSink(), loaded=loaded)
    return time.perf_counter() - started


def run_trl(model_dir: Path, pairs: list[dict], args: argparse.Namespace) -> float:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    LOADED_RSS["mb"] = in_memory(model)
    data = Dataset.from_list(
        [{"prompt": p["prompt"], "chosen": " " + p["chosen"], "rejected": " " + p["rejected"]} for p in pairs]
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        config = DPOConfig(
            output_dir=tmp,
            per_device_train_batch_size=args.batch_size,
            max_steps=args.steps,
            learning_rate=1e-5,
            lr_scheduler_type="linear",
            warmup_steps=0,
            max_grad_norm=1.0,
            beta=0.1,
            max_length=args.max_length,
            report_to=[],
            save_strategy="no",
            logging_steps=1,
            use_cpu=True,
            dataloader_num_workers=0,
            seed=0,
            disable_tqdm=True,
            gradient_checkpointing=args.gradient_checkpointing,
            bf16=args.trl_bf16,  # TRL's default: True
            **trl_fast_options() if args.trl_fast else {},
        )
        trainer = DPOTrainer(
            model=model,
            args=config,
            train_dataset=data,
            processing_class=tokenizer,
            peft_config=LoraConfig(
                r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"
            ),
        )
        trainer.train()
    return time.perf_counter() - started


def trl_fast_options() -> dict:
    """TRL's own speed options that run here: reference log-probs computed once before training.
    (``padding_free=True`` does not: TRL 1.16 warns that it "is temporarily unavailable after a refactor"
    and falls back to padding, so it is left out.)"""
    return {"precompute_ref_log_probs": True}


def child(args: argparse.Namespace) -> None:
    pairs = json.loads(Path(args.pairs).read_text())
    seconds = (run_capo if args.child == "capo" else run_trl)(Path(args.model), pairs, args)
    n = args.steps * args.batch_size
    print(
        json.dumps(
            {
                "trainer": args.child,
                "seconds": seconds,
                "pairs_per_second": n / seconds,
                "peak_rss_mb": peak_rss_mb(),
                "increment_mb": peak_rss_mb() - LOADED_RSS["mb"],
            }
        )
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="2 steps of batch 6, 2 rounds (< 6 min on 2 cores)"
    )
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ablation", action="store_true", help="CAPO Lab alone: each speed step's gain")
    parser.add_argument(
        "--gradient-checkpointing",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="activation checkpointing in both trainers (TRL's default; on by default here)",
    )
    parser.add_argument("--cache", default=str(Path.home() / ".capo-lab" / "models"))
    parser.add_argument("--child", choices=["capo", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--pairs", help=argparse.SUPPRESS)
    parser.add_argument("--capo-bf16", choices=["auto", "on", "off"], default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--capo-scoring", default="packed", help=argparse.SUPPRESS)
    parser.add_argument(
        "--trl-bf16", action=argparse.BooleanOptionalAction, default=True, help=argparse.SUPPRESS
    )
    parser.add_argument("--trl-fast", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch_size, args.repeats = 2, 6, 2
    return args


def run_child(args: argparse.Namespace, files: tuple[Path, Path], trainer: str, flags: list[str]) -> dict:
    """One training in a fresh process; its JSON line."""
    checkpointing = (
        "--gradient-checkpointing" if args.gradient_checkpointing else "--no-gradient-checkpointing"
    )
    command = [
        sys.executable,
        __file__,
        "--child",
        trainer,
        "--model",
        str(files[0]),
        "--pairs",
        str(files[1]),
    ]
    command += ["--steps", str(args.steps), "--batch-size", str(args.batch_size)]
    command += ["--max-length", str(args.max_length), checkpointing, *flags]
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"{trainer} {' '.join(flags)} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(args, files, variants: dict[str, tuple[str, list[str]]], repeats: int) -> dict[str, dict]:
    """Each variant ``repeats`` times, interleaved (order reversed every other round); medians."""
    results: dict[str, list[dict]] = {name: [] for name in variants}
    for round_ in range(repeats):
        order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
        for name in order:
            result = run_child(args, files, *variants[name])
            results[name].append(result)
            print(
                f"  round {round_ + 1} {name:<28} {result['pairs_per_second']:.3f} pairs/s, "
                f"{result['seconds']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB, "
                f"increment {result['increment_mb']:.0f} MB",
                flush=True,
            )
    keys = ("pairs_per_second", "peak_rss_mb", "increment_mb")
    return {name: {k: statistics.median(r[k] for r in rs) for k in keys} for name, rs in results.items()}


def table(rows: dict[str, dict], args: argparse.Namespace, repeats: int) -> None:
    print(
        f"{'':<30} {'pairs/s':>9} {'peak RSS MB':>12} {'increment MB':>13}   (median of {repeats}; "
        f"{args.steps} steps x batch {args.batch_size}, max_length {args.max_length})"
    )
    for name, r in rows.items():
        print(
            f"{name:<30} {r['pairs_per_second']:>9.3f} {r['peak_rss_mb']:>12.0f} {r['increment_mb']:>13.0f}"
        )


def ratios(capo: dict, trl: dict) -> str:
    return (
        f"speed_ratio={capo['pairs_per_second'] / trl['pairs_per_second']:.2f} "
        f"memory_ratio={capo['peak_rss_mb'] / trl['peak_rss_mb']:.2f} "
        f"increment_ratio={capo['increment_mb'] / trl['increment_mb']:.2f}"
    )


ABLATION = {
    "padded, float32": ("capo", ["--capo-scoring", "padded", "--capo-bf16", "off"]),
    "+ prompt sharing": ("capo", ["--capo-scoring", "prompt_shared", "--capo-bf16", "off"]),
    "+ packing": ("capo", ["--capo-scoring", "packed", "--capo-bf16", "off"]),
    "+ bf16 autocast": ("capo", ["--capo-scoring", "packed", "--capo-bf16", "on"]),
}


def main() -> None:
    args = parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="capo-bench-") as tmp:
        files = (Path(tmp) / "model", Path(tmp) / "pairs.json")
        make_model(files[0], Path(args.cache))
        make_pairs(files[1], args.steps * args.batch_size)
        if args.ablation:
            print("Ablation: CAPO Lab alone, each step added to the one above")
            table(measure(args, files, ABLATION, args.repeats), args, args.repeats)
            return
        print("1. Same job, same precision: CAPO Lab defaults vs TRL DPOTrainer in float32")
        defaults = {"CAPO Lab (defaults)": ("capo", []), "TRL DPOTrainer": ("trl", ["--no-trl-bf16"])}
        first = measure(args, files, defaults, args.repeats)
        print(
            "2. Fastest settings: TRL + precompute_ref_log_probs (one round; padding_free is off in TRL 1.16)"
        )
        fast = ("trl", ["--no-trl-bf16", "--trl-fast"])
        fastest = measure(args, files, {"TRL DPOTrainer (fastest)": fast}, 1)
    table(first, args, args.repeats)
    capo, trl = first["CAPO Lab (defaults)"], first["TRL DPOTrainer"]
    print(f"fastest settings (TRL one round): {ratios(capo, fastest['TRL DPOTrainer (fastest)'])}")
    table(fastest, args, 1)
    print(ratios(capo, trl))


if __name__ == "__main__":
    main()
