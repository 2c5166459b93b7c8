"""Data parallelism over ``torch.distributed``: who am I, my share of a batch, gathering results.

Every helper is a no-op in a single process, so ``capo.train`` runs one code path.
Processes are started by ``accelerate launch`` (``worker/distributed_run.py``);
gloo on CPU, NCCL on CUDA.

GPUs: a rank uses ``cuda:LOCAL_RANK`` of the GPUs its process sees. Those are the GPUs the worker
was given (``CUDA_VISIBLE_DEVICES``, or a container's reservation), which CUDA renumbers 0 … n−1, so
ranks 0 … n−1 on one machine land on n different GPUs, and a rank without a GPU of its own is an
error, never a second rank on a shared GPU. The rank selects its GPU before it joins the process
group, and names it there (``device_id``), so NCCL binds its communicator to that GPU.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from capo.errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current_world() -> World:
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def shard(items: Sequence[T], world: World) -> list[T]:
    """This rank's share: items rank, rank + size, rank + 2·size, … (every item on exactly one rank)."""
    return list(items[world.rank :: world.size])


def gather_lists(local: list[T], world: World) -> list[T]:
    """Every rank's list, concatenated in rank order (the local list alone in one process)."""
    if world.size == 1:
        return local
    parts: list[list[T] | None] = [None] * world.size
    dist.all_gather_object(parts, local)
    return [item for part in parts for item in (part or [])]


def gather_dicts(local: dict, world: World) -> dict:
    merged: dict = {}
    for part in gather_lists([local], world):
        merged.update(part)
    return merged


def main_decides(value: bool, world: World) -> bool:
    """Rank 0's ``value`` on every rank (so all ranks stop at the same step)."""
    if world.size == 1:
        return value
    flag = [value]
    dist.broadcast_object_list(flag, src=0)
    return bool(flag[0])


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


class NotEnoughGpus(UserError):
    """A data-parallel rank found no GPU of its own among the GPUs its worker was given."""


def rank_device(device_type: str, local_rank: int, visible_gpus: int) -> torch.device:
    """The device of the rank with ``LOCAL_RANK`` ``local_rank``: ``cuda:local_rank`` among the
    ``visible_gpus`` GPUs the process sees; the CPU for a CPU run. ``NotEnoughGpus`` when
    local_rank ≥ visible_gpus."""
    if device_type != "cuda":
        return torch.device("cpu")
    if local_rank >= visible_gpus:
        raise NotEnoughGpus(
            f"data-parallel rank {local_rank} has no GPU: this worker sees {visible_gpus} "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); give it one GPU "
            "per process (train.num_processes), e.g. compose's GPU count"
        )
    return torch.device("cuda", local_rank)


def init_from_environment(device_type: str) -> World:
    """Join the process group described by torchrun's RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR
    variables: on CUDA, select this rank's GPU (``rank_device``) first, then join naming it."""
    visible = torch.cuda.device_count() if device_type == "cuda" else 0
    device = rank_device(device_type, int(os.environ.get("LOCAL_RANK", "0")), visible)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            device_id=device if device.type == "cuda" else None,
        )
    return current_world()


def release_cached_memory(device: torch.device) -> int:
    """After a job: free unreachable tensors and hand the CUDA caching allocator's unused blocks back
    to the driver, so the next job (or another process on the GPU) starts from what is really in use.
    Returns the bytes released; on a CPU it only collects garbage and returns 0."""
    gc.collect()
    if device.type != "cuda":
        return 0
    reserved = torch.cuda.memory_reserved(device)
    torch.cuda.synchronize(device)
    with torch.cuda.device(device):  # empty_cache acts on the current device
        torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    return reserved - torch.cuda.memory_reserved(device)
