"""Quiet logs (issue 23 item 9): a worker's log has one line per event. A fresh interpreter loads a tiny
model from disk as the worker does, with and without ``worker.runtime.quiet_libraries``, and its stderr
is read: no "Loading weights" bar, no deprecation warning, no bitsandbytes kernel line, and the lab's own
note about that kernel once for two 4-bit loads."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from capo.models import CPU_4BIT_KERNEL_NOTE

REPO = Path(__file__).resolve().parents[2]
LOAD = textwrap.dedent(
    """
    import logging, sys, tempfile
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    if sys.argv[1] == "quiet":
        from worker.runtime import quiet_libraries
        quiet_libraries()
    import torch
    from capo.config import LoraConfig, ModelConfig
    from capo.models import _load, add_lora, load_base_model, tiny_random_llama
    with tempfile.TemporaryDirectory() as folder:
        tiny_random_llama().model.save_pretrained(folder)
        add_lora(_load(folder, torch.float32, torch.device("cpu"), False, "auto"), LoraConfig())
    import warnings
    warnings.warn("a library's\\n  two-line warning", UserWarning)
    if sys.argv[2] == "4bit":
        config = ModelConfig(name_or_path="tiny-random-llama", load_in_4bit=True, dtype="bfloat16")
        for _ in range(2):
            loaded = load_base_model(config, tempfile.gettempdir(), torch.device("cpu"))
            print("notes:", loaded.notes)
    """
)


def load_logs(*modes: str, four_bit: bool = False) -> list[str]:
    """stderr and stdout of the load above, one fresh interpreter per ``mode`` (quiet or loud), the
    interpreters run side by side (each spends its time importing torch and transformers)."""
    started = [
        subprocess.Popen(
            [sys.executable, "-c", LOAD, mode, "4bit" if four_bit else "plain"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode in modes
    ]
    logs = []
    try:
        for process in started:
            stdout, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, stderr[-2000:]
            logs.append(stderr + stdout)
    finally:
        for process in started:  # one that failed or hung leaves none behind
            process.kill()
            process.wait()
    return logs


@pytest.mark.slow
def test_a_quiet_worker_loads_a_model_without_a_progress_bar_or_warnings() -> None:
    loud, quiet = load_logs("loud", "quiet")
    assert "Loading weights" in loud  # transformers draws its bar unless told not to: the test can fail
    assert "Loading weights" not in quiet and "%|" not in quiet
    assert "FutureWarning" not in quiet and "DeprecationWarning" not in quiet
    (warned,) = [line for line in quiet.splitlines() if "UserWarning" in line]  # one line, not two
    assert warned.startswith("py.warnings WARNING UserWarning: a library's two-line warning (")
    assert "two-line warning" in loud and "  two-line warning" in loud  # stderr's two lines otherwise
    assert "gemm_4bit_forward from kernels-community" not in quiet


@pytest.mark.slow
def test_the_4bit_kernel_note_is_said_once_by_the_lab() -> None:
    ops = pytest.importorskip("bitsandbytes.backends.cpu.ops")
    if getattr(ops, "gemm_4bit_forward_kernel", "absent") is not None:
        pytest.skip("bitsandbytes loaded its CPU kernel here (or this CPU has no AVX512-BF16): no note")
    (quiet,) = load_logs("quiet", four_bit=True)
    assert "gemm_4bit_forward from kernels-community" not in quiet  # bitsandbytes' own line, dropped
    logged = [line for line in quiet.splitlines() if line.startswith("capo.models INFO")]
    assert logged == [f"capo.models INFO {CPU_4BIT_KERNEL_NOTE}"]  # two 4-bit loads, one line
    assert quiet.count("notes:") == 2 and quiet.count("no kernels-community gemm_4bit_forward") == 1 + 2
