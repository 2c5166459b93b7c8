"""One rank of a data-parallel run (started by ``worker.launch`` through ``accelerate launch``).

``python -m worker.distributed_run RUN_ID [--device D] [--resume-from PATH]``: every
rank trains on its share of each batch; rank 0 writes metrics, scores and
checkpoints to the lab database and ``result.json`` when done.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch
import torch.distributed as dist

from capo.distributed import init_from_environment
from capo.models import resolve_device
from capo.precision import resolve_bf16
from capo.train import train
from capo_lab.database import Database
from capo_lab.datasets import get_dataset
from capo_lab.runs import DatabaseSink, base_fingerprint, get_run, run_config, run_dir, run_inputs
from capo_lab.settings import Settings
from worker.launch import RESULT_FILE, STOP_FILE


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_id", type=int)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--resume-from", type=Path)
    args = parser.parse_args(argv)
    settings = Settings()
    db = Database(settings.database_url)
    cfg = run_config(get_run(db, args.run_id), args.device)
    device = resolve_device(cfg.train.device)
    world = init_from_environment(device.type)
    if device.type == "cuda":  # one GPU per rank
        local = f"cuda:{torch.cuda.current_device()}"
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"device": local})})
    cfg = resolve_bf16(cfg)
    folder = run_dir(settings, args.run_id)
    inputs = run_inputs(db, settings, cfg, args.run_id, args.resume_from)
    try:
        sink = DatabaseSink(db, args.run_id, base_fingerprint(cfg, get_dataset(db, cfg.data.dataset).id))
        result = train(cfg, inputs, sink, lambda: (folder / STOP_FILE).exists())
        if world.is_main:
            (folder / RESULT_FILE).write_text(json.dumps(dataclasses.asdict(result)))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
