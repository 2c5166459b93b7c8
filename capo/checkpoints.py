"""Save and restore everything a resumed run needs: adapter, optimizer, scheduler, RNG, step.

What a checkpoint folder holds, and whether it is whole, is ``capo.checkpoint_files``' (no torch
there, so the web process can check checkpoints too).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from capo.checkpoint_files import (
    ADAPTER_WEIGHTS,
    CHECKED_FILES,
    CHECKSUMS,
    TRAINER_STATE,
    checkpoint_dir,
    sha256,
)

if TYPE_CHECKING:  # torch and peft are imported by the functions that save and load
    import torch
    from peft import PeftModel


def save_checkpoint(
    run_dir: Path, step: int, model: PeftModel, optimizer: torch.optim.Optimizer, scheduler
) -> Path:
    """Write the checkpoint to a staging folder, then rename: a crash never leaves half of one.

    The files' sizes and sha256 go to ``checksums.json`` last, so ``checkpoint_problem`` can tell a
    whole checkpoint from one damaged later (a truncated or changed file)."""
    import torch

    final = checkpoint_dir(run_dir, step)
    staging = final.with_name(final.name + ".partial")
    if staging.exists():  # left by a crash while saving: start it afresh
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    model.save_pretrained(staging)
    torch.save(
        {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        },
        staging / TRAINER_STATE,
    )
    sums = {
        name: {"bytes": (staging / name).stat().st_size, "sha256": sha256(staging / name)}
        for name in CHECKED_FILES
    }
    (staging / CHECKSUMS).write_text(json.dumps({"step": step, "files": sums}, indent=2))
    if final.exists():  # saved again at this step (a resumed run): the old one goes once the new is in place
        old = final.with_name(final.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(final)
    return final


def load_checkpoint(path: Path, model: PeftModel, optimizer: torch.optim.Optimizer, scheduler) -> int:
    """Restore state saved by ``save_checkpoint``; returns the step it was taken at."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    path = Path(path)
    set_peft_model_state_dict(model, load_file(str(path / ADAPTER_WEIGHTS)))
    state = torch.load(path / TRAINER_STATE, weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng_cpu"])
    if state.get("rng_cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    return int(state["step"])
