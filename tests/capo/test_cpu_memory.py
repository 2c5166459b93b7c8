"""Heap trimming between decoder layers: called once per layer, outputs unchanged."""

import torch

import capo.cpu_memory as cpu_memory
from capo.models import tiny_random_llama


class FakeLibc:
    def __init__(self) -> None:
        self.trims = 0
        self.options: list[tuple[int, int]] = []

    def malloc_trim(self, pad: int) -> int:
        self.trims += 1
        return 1

    def mallopt(self, option: int, value: int) -> int:
        self.options.append((option, value))
        return 1


def test_the_heap_is_trimmed_before_every_layer_and_outputs_do_not_change(monkeypatch) -> None:
    tiny = tiny_random_llama()
    ids = torch.tensor([[1, 5, 9, 13, 2]])
    with torch.no_grad():
        before = tiny.model(input_ids=ids).logits
    fake = FakeLibc()
    monkeypatch.setattr(cpu_memory, "_glibc", lambda: fake)
    handles = cpu_memory.trim_heap_between_layers(tiny.model, mmap_threshold=1 << 20)
    n_layers = tiny.model.config.num_hidden_layers
    with torch.no_grad():
        after = tiny.model(input_ids=ids).logits
    assert len(handles) == n_layers and fake.trims == n_layers
    assert fake.options == [(cpu_memory.M_MMAP_THRESHOLD, 1 << 20)]
    torch.testing.assert_close(after, before, rtol=0, atol=0)
    for handle in handles:
        handle.remove()


def test_without_glibc_nothing_is_installed(monkeypatch) -> None:
    monkeypatch.setattr(cpu_memory, "_glibc", lambda: None)
    assert cpu_memory.trim_heap_between_layers(tiny_random_llama().model) == []
