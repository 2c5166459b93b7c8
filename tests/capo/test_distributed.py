"""DDP under compose: each rank takes the GPU of its LOCAL_RANK among the worker's GPUs, selects it
before joining the process group and names it there; cached CUDA memory is released after a job."""

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml

from capo.distributed import NotEnoughGpus, init_from_environment, rank_device, release_cached_memory

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())


def test_ranks_take_the_gpu_of_their_local_rank_and_never_share_one() -> None:
    assert [rank_device("cuda", r, visible_gpus=4) for r in range(4)] == [
        torch.device("cuda", r) for r in range(4)
    ]
    assert rank_device("cpu", 3, visible_gpus=0) == torch.device("cpu")
    # Two ranks, one GPU given (compose's count: 1): the old rank % device_count put both on cuda:0.
    with pytest.raises(NotEnoughGpus, match=r"^data-parallel rank 1 has no GPU: this worker sees 1 "):
        rank_device("cuda", 1, visible_gpus=1)


def test_a_cuda_rank_selects_its_gpu_before_joining_and_names_it_there(monkeypatch) -> None:
    calls = []
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("set_device", device)))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(
        dist, "init_process_group", lambda **kw: calls.append(("init", kw["backend"], kw["device_id"]))
    )
    init_from_environment("cuda")
    assert calls == [("set_device", torch.device("cuda", 1)), ("init", "nccl", torch.device("cuda", 1))]


def _rank(rank: int, port: int, folder: str) -> None:
    """One of two gloo ranks, started as torchrun starts them (environment variables only)."""
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    world = init_from_environment("cpu")
    # The GPU each rank would take on a worker given 2 GPUs, gathered over the real process group.
    mine = (world.rank, world.size, str(rank_device("cuda", int(os.environ["LOCAL_RANK"]), 2)))
    gathered = [None, None]
    dist.all_gather_object(gathered, mine)
    if world.is_main:
        Path(folder, "ranks.txt").write_text(repr(gathered))
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_ranks_join_from_the_environment_and_map_onto_two_gpus(tmp_path) -> None:
    mp.spawn(_rank, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    assert (tmp_path / "ranks.txt").read_text() == repr([(0, 2, "cuda:0"), (1, 2, "cuda:1")])


def test_releasing_cached_memory_is_a_no_op_on_cpu(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: pytest.fail("no CUDA call on a CPU"))
    assert release_cached_memory(torch.device("cpu")) == 0


def test_releasing_cached_memory_empties_the_allocator_of_the_jobs_gpu(monkeypatch) -> None:
    reserved = iter([6 << 30, 1 << 30])  # 6 GiB reserved after the job, 1 GiB still in use
    calls = []
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: next(reserved))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device: calls.append(("synchronize", device)))
    monkeypatch.setattr(torch.cuda, "device", lambda device: _Recording(calls, device))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device: calls.append("reset_peak"))
    gpu = torch.device("cuda", 3)
    assert release_cached_memory(gpu) == (6 << 30) - (1 << 30)
    assert calls == [("synchronize", gpu), ("enter", gpu), "empty_cache", "exit", "reset_peak"]


class _Recording:
    def __init__(self, calls: list, device: torch.device) -> None:
        self.calls, self.device = calls, device

    def __enter__(self) -> None:
        self.calls.append(("enter", self.device))

    def __exit__(self, *exc) -> None:
        self.calls.append("exit")


def test_compose_gives_the_worker_shared_memory_the_hub_token_and_a_models_folder() -> None:
    worker, environment = COMPOSE["services"]["worker"], COMPOSE["x-lab-environment"]
    assert worker["shm_size"] == "16gb"  # Docker's 64 MB default is too small for NCCL
    assert environment["HF_TOKEN"] == "${HF_TOKEN:-}" and environment["CAPO_LAB_MODEL_DIRS"] == "/models"
    for service in ("app", "worker"):
        assert "${CAPO_LAB_MODELS:-./models}:/models:ro" in COMPOSE["services"][service]["volumes"]
