"""One rank of a data-parallel run (started by ``worker.launch`` through ``accelerate launch``).

``python -m worker.distributed_run RUN_ID [--device D]``: every rank prepares the run with
``worker.prepare.prepare_run`` (as a single-process run is prepared) and trains on its share of
each batch; rank 0 writes metrics, scores and checkpoints to the lab database and ``result.json``
when done.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import torch
import torch.distributed as dist

from capo.distributed import init_from_environment
from capo.models import resolve_device
from capo.train import train
from capo_lab.database import Database
from capo_lab.runs import get_run, run_config, run_dir
from capo_lab.settings import Settings
from worker.launch import RESULT_FILE, STOP_FILE
from worker.prepare import prepare_run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_id", type=int)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    settings = Settings()
    db = Database(settings.database_url)
    cfg = run_config(get_run(db, args.run_id), args.device)
    device = resolve_device(cfg.train.device)
    world = init_from_environment(device.type)
    own_gpu = f"cuda:{torch.cuda.current_device()}" if device.type == "cuda" else None  # one GPU per rank
    folder = run_dir(settings, args.run_id)
    try:
        prepared = prepare_run(db, settings, args.run_id, cfg, own_gpu)
        result = train(prepared.config, prepared.inputs, prepared.sink, lambda: (folder / STOP_FILE).exists())
        if world.is_main:
            (folder / RESULT_FILE).write_text(json.dumps(dataclasses.asdict(result)))
    finally:
        dist.destroy_process_group()
        db.close()


if __name__ == "__main__":
    main()
