"""Data parallelism over ``torch.distributed``: who am I, my share of a batch, gathering results.

Every helper is a no-op in a single process, so ``capo.train`` runs one code path.
Processes are started by ``accelerate launch`` (``worker/distributed_run.py``);
gloo on CPU, NCCL on CUDA.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

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


def init_from_environment(device_type: str) -> World:
    """Join the process group described by torchrun's RANK / WORLD_SIZE / MASTER_ADDR variables."""
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    world = current_world()
    if device_type == "cuda":
        torch.cuda.set_device(world.rank % torch.cuda.device_count())
    return world
