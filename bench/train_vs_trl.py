"""CAPO Lab's trainer against TRL's DPOTrainer on the same DPO job, on this machine.

Same model (Gemma 3 270M's architecture and 262k vocabulary, random weights),
same real MTPE pairs from ../shared/data, same LoRA (r 16, alpha 32, dropout
0.05, all linear layers), batch size, max length, AdamW, learning rate and
number of steps. Each trainer runs in its own subprocess, interleaved and
repeated; each reports wall time from "base model in memory" to "training
done" (LoRA wrap, tokenisation, reference log-probs and every step included)
and its peak RSS. Ends with ``speed_ratio=X memory_ratio=Y`` (CAPO Lab ÷ TRL):
speed is pairs/s, memory is peak RSS.

    python bench/train_vs_trl.py --quick     # < 5 min on 2 CPU cores
    python bench/train_vs_trl.py --steps 8 --batch-size 8 --repeats 3
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
                {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected, "direction": p.direction}
                for p in train
            ],
            ensure_ascii=False,
        )
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
            bf16=False,  # TRL defaults to bf16 autocast; both run float32 here
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
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="2 steps of batch 6, 2 rounds (< 5 min on 2 cores)"
    )
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
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
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch_size, args.repeats = 2, 6, 2
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="capo-bench-") as tmp:
        model_dir, pairs = Path(tmp) / "model", Path(tmp) / "pairs.json"
        make_model(model_dir, Path(args.cache))
        make_pairs(pairs, args.steps * args.batch_size)
        results: dict[str, list[dict]] = {"capo": [], "trl": []}
        checkpointing_flag = (
            "--gradient-checkpointing" if args.gradient_checkpointing else "--no-gradient-checkpointing"
        )
        for round_ in range(args.repeats):
            for trainer in ("capo", "trl") if round_ % 2 == 0 else ("trl", "capo"):
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        trainer,
                        "--model",
                        str(model_dir),
                        "--pairs",
                        str(pairs),
                        "--steps",
                        str(args.steps),
                        "--batch-size",
                        str(args.batch_size),
                        "--max-length",
                        str(args.max_length),
                        checkpointing_flag,
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if out.returncode != 0:
                    sys.exit(f"{trainer} failed:\n{out.stderr[-4000:]}")
                result = json.loads(out.stdout.strip().splitlines()[-1])
                results[trainer].append(result)
                print(
                    f"round {round_ + 1} {trainer:>4}: {result['pairs_per_second']:.3f} pairs/s, "
                    f"{result['seconds']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
    speed = {t: statistics.median(r["pairs_per_second"] for r in rs) for t, rs in results.items()}
    memory = {t: statistics.median(r["peak_rss_mb"] for r in rs) for t, rs in results.items()}
    print(
        f"\n{'trainer':<8} {'pairs/s':>9} {'peak RSS MB':>12}   (median of {args.repeats}; "
        f"{args.steps} steps x batch {args.batch_size}, max_length {args.max_length})"
    )
    for t in ("capo", "trl"):
        print(f"{t:<8} {speed[t]:>9.3f} {memory[t]:>12.0f}")
    print(f"speed_ratio={speed['capo'] / speed['trl']:.2f} memory_ratio={memory['capo'] / memory['trl']:.2f}")


if __name__ == "__main__":
    main()
