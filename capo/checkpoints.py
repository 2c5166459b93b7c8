"""Save and restore everything a resumed run needs: adapter, optimizer, scheduler, RNG, step."""

from __future__ import annotations

from pathlib import Path

import torch
from peft import PeftModel, set_peft_model_state_dict
from safetensors.torch import load_file

TRAINER_STATE = "trainer_state.pt"


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step-{step:06d}"


def save_checkpoint(
    run_dir: Path, step: int, model: PeftModel, optimizer: torch.optim.Optimizer, scheduler
) -> Path:
    """Write the checkpoint to a staging folder, then rename: a crash never leaves half of one."""
    final = checkpoint_dir(run_dir, step)
    staging = final.with_name(final.name + ".partial")
    staging.mkdir(parents=True, exist_ok=True)
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
    if final.exists():
        import shutil

        shutil.rmtree(final)
    staging.rename(final)
    return final


def load_checkpoint(path: Path, model: PeftModel, optimizer: torch.optim.Optimizer, scheduler) -> int:
    """Restore state saved by ``save_checkpoint``; returns the step it was taken at."""
    path = Path(path)
    set_peft_model_state_dict(model, load_file(str(path / "adapter_model.safetensors")))
    state = torch.load(path / TRAINER_STATE, weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng_cpu"])
    if state.get("rng_cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    return int(state["step"])
