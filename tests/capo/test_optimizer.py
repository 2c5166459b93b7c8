"""optim.optimizer: auto is torch's fused AdamW on CUDA and its default AdamW elsewhere; fused AdamW takes
the same step; the paper preset keeps paged AdamW and says what it costs."""

from pathlib import Path

import pytest
import torch

from capo.config import config_from_dict, load_config
from capo.precision import optimizer_for
from capo.train import _optimizer

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


class _Quiet:
    def log_note(self, message: str) -> None:
        raise AssertionError(f"no note expected, got {message!r}")


def test_auto_is_fused_adamw_on_cuda_and_plain_adamw_elsewhere() -> None:
    assert config_from_dict({}).optim.optimizer == "auto"
    assert optimizer_for("auto", torch.device("cuda", 3)) == "adamw_fused"
    assert optimizer_for("auto", torch.device("cpu")) == "adamw"
    for named in ("adamw", "adamw_fused", "paged_adamw"):
        assert (
            optimizer_for(named, torch.device("cuda", 0))
            == optimizer_for(named, torch.device("cpu"))
            == named
        )


def one_step(setting: str) -> tuple[torch.optim.Optimizer, torch.Tensor]:
    """A 4×3 parameter after one step of ``setting`` on a fixed gradient (CPU: torch fuses there too)."""
    layer = torch.nn.Linear(3, 4, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.arange(12.0).view(4, 3) / 10)
    layer.weight.grad = torch.full((4, 3), 0.5)
    cfg = config_from_dict({"optim": {"optimizer": setting, "lr": 0.01, "weight_decay": 0.1}})
    optimizer = _optimizer(cfg, layer, torch.device("cpu"), _Quiet())
    optimizer.step()
    return optimizer, layer.weight.detach()


def test_fused_adamw_is_fused_and_takes_the_same_step() -> None:
    fused, after_fused = one_step("adamw_fused")
    plain, after_plain = one_step("adamw")
    assert isinstance(fused, torch.optim.AdamW) and fused.param_groups[0]["fused"] is True
    assert not plain.param_groups[0]["fused"]
    # AdamW's first step, with m̂ = g and v̂ = g²: w ← w·(1 − lr·λ) − lr·g/(|g| + ε) = w·0.999 − 0.01.
    want = (torch.arange(12.0).view(4, 3) / 10) * (1 - 0.01 * 0.1) - 0.01 * 0.5 / (0.5 + 1e-8)
    torch.testing.assert_close(after_fused, want, rtol=0, atol=1e-6)
    torch.testing.assert_close(after_plain, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("preset", ["paper.yaml"])
def test_the_paper_preset_keeps_paged_adamw_and_its_header_says_what_it_costs(preset: str) -> None:
    assert load_config(CONFIGS / preset).optim.optimizer == "paged_adamw"
    header = (CONFIGS / preset).read_text().split("\nname:")[0]
    assert "torch.cuda.synchronize()" in header and "per parameter" in header


def test_the_paper_preset_checkpoints_activations_and_gives_its_peak_as_an_estimate() -> None:
    assert load_config(CONFIGS / "paper.yaml").train.gradient_checkpointing is True
    header = (CONFIGS / "paper.yaml").read_text().split("\nname:")[0]
    assert "ESTIMATED" in header and "80 GB" in header and "141 GB" in header
