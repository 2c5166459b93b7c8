"""train.micro_batch_tokens: each step's pairs cut into forward passes by tokens; the loss is unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

import capo.train as train_module
from capo.batching import token_micro_batches
from capo.config import ConfigError
from capo.train import train
from tests.capo.test_train import ListSink, config, inputs


def test_passes_are_cut_in_order_at_the_budget_and_a_long_pair_goes_alone() -> None:
    tokens = {10: 5, 11: 3, 12: 4, 13: 10, 14: 2}
    # 5 + 3 = 8 fits 8; + 4 would be 12: a new pass; 4 + 10 > 8; 10 alone exceeds 8 but goes alone; 10 + 2 > 8
    assert token_micro_batches([10, 11, 12, 13, 14], tokens, 8) == [[10, 11], [12], [13], [14]]
    assert token_micro_batches([10, 11, 12, 13, 14], tokens, 100) == [[10, 11, 12, 13, 14]]
    assert token_micro_batches([], tokens, 8) == []


def no_dropout(**train):
    """The test config without LoRA dropout, whose random masks would differ between pass shapes, and
    without bf16 autocast (``auto`` turns it on on a CPU with AMX), whose sums differ by pass shape
    (grad norm 8e-5 apart on such a machine)."""
    cfg = config(max_steps=3, bf16=False, **train)
    return cfg.model_copy(update={"lora": cfg.lora.model_copy(update={"dropout": 0.0})})


def test_token_passes_give_the_losses_of_whole_batches(tmp_path: Path, monkeypatch) -> None:
    passes: list[list[int]] = []

    def recorded(indices, tokens, budget):
        cut = token_micro_batches(indices, tokens, budget)
        passes.extend(cut)
        return cut

    monkeypatch.setattr(train_module, "token_micro_batches", recorded)
    whole, cut = ListSink(), ListSink()
    train(no_dropout(batch_size=4), inputs(tmp_path / "a"), whole)
    train(no_dropout(batch_size=4, micro_batch_tokens=40), inputs(tmp_path / "b"), cut)
    assert len(passes) > 3  # the budget did cut the steps' 4 pairs into several passes
    assert sum(len(p) for p in passes) == 4 + 4 + 2  # 10 train pairs in steps of 4: the last step has 2
    # Step 1's loss and gradient norm (taken after every pass of the step, before the update): equal.
    assert cut.metrics[1]["loss"] == pytest.approx(whole.metrics[1]["loss"], rel=1e-5)
    assert cut.metrics[1]["grad_norm"] == pytest.approx(whole.metrics[1]["grad_norm"], rel=1e-5)
    for step in (2, 3):  # after AdamW updates, which magnify float32 rounding in near-zero gradients
        assert cut.metrics[step]["loss"] == pytest.approx(whole.metrics[step]["loss"], rel=1e-2)


def test_a_budget_below_one_token_is_refused() -> None:
    with pytest.raises(ConfigError, match="micro_batch_tokens"):
        config(micro_batch_tokens=0)
