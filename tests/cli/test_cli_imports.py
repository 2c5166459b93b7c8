"""Commands that only read the database import neither torch nor transformers, and print no library noise."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

READ_ONLY = [["runs", "list"], ["data", "list"], ["studies"]]


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_read_only_commands_do_not_import_the_model_stack(tmp_path: Path, command: list[str]) -> None:
    env = {**os.environ, "CAPO_LAB_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "capo_lab", *command],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert not imported & {"torch", "transformers", "peft", "bitsandbytes", "gradio"}
    noise = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert noise == []  # e.g. bitsandbytes' "Failed to load CPU gemm_4bit_forward" warning
