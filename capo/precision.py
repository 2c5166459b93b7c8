"""bf16 autocast, NF4 4-bit layers and paged AdamW: used wherever the libraries run them, CPU included.

Each helper asks the library itself, on the run's device, and hands back what it said
(an exception's text or a warning) for the run's notes; the lab falls back only where
the library refused. Lab fallbacks read "<option> unavailable here: <library> said …";
messages from a library that did run read "<option>: <library> says …".
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

from capo.config import RunConfig

# torch's cpuinfo flags for bf16 matrix hardware: x86 AMX-BF16 tiles; Arm BF16 (BFMMLA) and SVE-BF16.
# AVX512-BF16 alone is left out: it adds a bf16 dot product, not a matrix unit, and on the
# development machine (Xeon, AVX512-BF16, AMX hidden by the hypervisor) oneDNN's bf16 matmul
# took 1.9x float32's time (4096^2 @ 4096^2: 755 ms vs 393 ms, 2 threads) and a Linear's
# forward + backward under autocast 1.8x. ``train.bf16: true`` still turns autocast on there.
NATIVE_BF16_CPU_FLAGS = ("amx_bf16", "bf16", "sve_bf16")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 matrix hardware, as ``torch.cpu.get_capabilities()`` reports its
    instruction sets (False on a torch without it).

    Not ``torch.ops.mkldnn._is_mkldnn_bf16_supported()``: oneDNN answers yes on any AVX-512 CPU
    (``ideep::has_bf16_type_support``: ISA ≥ avx512_core), where bf16 is emulated.
    """
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is None:
        return False
    capabilities = get_capabilities()
    return any(bool(capabilities.get(flag, False)) for flag in NATIVE_BF16_CPU_FLAGS)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: a CUDA GPU with bf16 units, a CPU with bf16 matrix units."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and cpu_has_native_bf16()


def _said(err: BaseException) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())


def bf16_autocast(
    setting: bool | str, model: nn.Module, device: torch.device
) -> tuple[AbstractContextManager, list[str]]:
    """The bf16 autocast context policy and reference are scored under, and notes.

    ``setting`` is ``train.bf16``: ``"auto"`` means on where ``native_bf16(device)``. A float64
    model (tests) is never autocast. Log-softmax and the loss stay out of it (capo/head_logps.py).
    """
    wanted = native_bf16(device) if setting == "auto" else bool(setting)
    if not wanted:
        return nullcontext(), []
    if any(p.dtype == torch.float64 for p in model.parameters()):
        note = "train.bf16: the model is float64: scoring in float64 without autocast"
        return nullcontext(), [note] if setting is True else []
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        try:
            autocast = torch.autocast(device.type, dtype=torch.bfloat16)
        except RuntimeError as err:
            return nullcontext(), [f'train.bf16 unavailable here: torch said "{_said(err)}"; no autocast']
    if not autocast._enabled:  # torch warned and turned it off
        text = " ".join(" ".join(str(w.message).split()) for w in said)
        return nullcontext(), [f'train.bf16 unavailable here: torch said "{text}"; no autocast']
    return autocast, []


def bnb_4bit_problem(device: torch.device, compute_dtype: torch.dtype) -> str | None:
    """None where bitsandbytes quantises a layer to NF4 on ``device`` and runs it forward and backward;
    otherwise what bitsandbytes (or importing it) said."""
    try:
        import bitsandbytes as bnb

        layer = bnb.nn.Linear4bit(
            64, 64, bias=False, compute_dtype=compute_dtype, compress_statistics=True, quant_type="nf4"
        ).to(device)
        probe = torch.ones(2, 64, dtype=compute_dtype, device=device, requires_grad=True)
        layer(probe).sum().backward()
    except Exception as err:  # noqa: BLE001 - whatever it raised means no 4-bit path here; the note quotes it
        return _said(err)
    return None


def keep_4bit_layers_differentiable(model: nn.Module) -> int:
    """Stop bitsandbytes repacking 4-bit weights for its CPU inference kernel; returns the layers changed.

    bitsandbytes 0.50, on a CPU with AVX512-BF16, repacks a ``Linear4bit`` weight the first
    time the layer runs in eval mode without gradients, and from then on every forward,
    training included, goes through that kernel, which has no backward: the base path
    stops passing gradients to earlier layers' adapters (measured: layer 0's LoRA gradient
    fell 37×). The trainer scores in eval mode before its first step, so it turns this off.
    """
    changed = 0
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            changed += 1
    return changed


def paged_adamw(
    params: Iterable[nn.Parameter], lr: float, weight_decay: float, device: torch.device
) -> tuple[torch.optim.Optimizer | None, list[str]]:
    """bitsandbytes' ``PagedAdamW`` and the notes: what it warned stepping a scratch parameter on
    ``device`` (on CPU: that paging does not apply there), or, where it cannot step, None and why."""
    try:
        import bitsandbytes as bnb

        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            scratch = torch.zeros(1, device=device, requires_grad=True)
            scratch.grad = torch.ones_like(scratch)
            bnb.optim.PagedAdamW([scratch]).step()
    except Exception as err:  # noqa: BLE001 - whatever it raised means no paged AdamW here; quoted
        return None, [f'paged_adamw unavailable here: bitsandbytes said "{_said(err)}"; using torch AdamW']
    notes = [
        f'paged_adamw: bitsandbytes says "{" ".join(str(w.message).split())}"'
        for w in said
        if issubclass(w.category, UserWarning)
    ]
    return bnb.optim.PagedAdamW(params, lr=lr, weight_decay=weight_decay), notes


def optimizer_for(setting: str, device: torch.device) -> str:
    """The optimizer ``optim.optimizer`` names on ``device``: ``auto`` is torch's fused AdamW on a CUDA
    GPU (one kernel for every parameter's update) and its default multi-tensor AdamW elsewhere."""
    if setting != "auto":
        return setting
    return "adamw_fused" if device.type == "cuda" else "adamw"


def resolve_bf16(cfg: RunConfig) -> RunConfig:
    """``cfg`` with ``train.bf16: auto`` decided for the run's device (``native_bf16``), so that the
    base-score fingerprint says which precision the base was scored in. ``train.device`` is already
    resolved by then (``capo_lab.lifecycle``); ``auto`` there is decided here the same way."""
    if cfg.train.bf16 != "auto":
        return cfg
    from capo.models import resolve_device

    native = native_bf16(resolve_device(cfg.train.device))
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"bf16": native})})
