"""The training loop: resume equals an uninterrupted run, NaN guard, precision and its fallbacks."""

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

import capo.precision as precision
import capo.train as train_module
from capo.config import ModelConfig, config_from_dict
from capo.models import cpu_4bit_kernel_notes, load_base_model, tiny_random_llama
from capo.train import NonFiniteLossError, TrainInputs, train


@dataclass(frozen=True)
class Pair:
    pair_id: int
    direction: str
    prompt: str
    chosen: str
    rejected: str
    tie: bool = False


PAIRS = [
    Pair(
        i,
        "en-de" if i % 2 else "en-it",
        f"Translate {i}: the cat sat on mat number {i}.",
        f"Die Katze {i}.",
        f"Katze sass {i} mal.",
    )
    for i in range(10)
]


@dataclass
class ListSink:
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    scores: list[tuple[int, str, int]] = field(default_factory=list)
    rows: list[tuple[int, str, list]] = field(default_factory=list)
    checkpoints: list[tuple[int, Path]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    base_scores: dict[int, tuple[float, float]] = field(default_factory=dict)
    pieces: dict[int, tuple[list[str], list[str]]] = field(default_factory=dict)

    def log_metrics(self, step, values):
        self.metrics.setdefault(step, {}).update(values)

    def log_pair_scores(self, step, split, rows):
        self.scores.append((step, split, len(rows)))
        self.rows.append((step, split, list(rows)))

    def log_checkpoint(self, step, path):
        self.checkpoints.append((step, path))

    def log_progress(self, step, total_steps):
        pass

    def log_note(self, message):
        self.notes.append(message)

    def log_token_pieces(self, pieces):
        self.pieces.update(pieces)

    def log_base_scores(self, scores):
        self.base_scores.update(scores)


def config(max_length: int = 128, **train):
    return config_from_dict(
        {
            "model": {"name_or_path": "tiny-random-llama"},
            "data": {"max_length": max_length},
            "objective": {"name": "capo"},
            "optim": {"lr": 1e-3, "warmup_ratio": 0.0},
            "train": {"batch_size": 2, "max_steps": 6, "eval_every": 100, "checkpoint_every": 3, **train},
        }
    )


def inputs(tmp_path: Path, resume_from: Path | None = None) -> TrainInputs:
    return TrainInputs(PAIRS, PAIRS[:4], tmp_path / "run", tmp_path / "models", resume_from)


def test_resume_reproduces_the_uninterrupted_losses(tmp_path: Path) -> None:
    straight = ListSink()
    assert train(config(), inputs(tmp_path / "a"), straight).status == "succeeded"

    first_half = ListSink()
    result = train(config(), inputs(tmp_path / "b"), first_half, should_stop=lambda: True)
    assert (result.status, result.step) == ("stopped", 1)
    checkpoint = first_half.checkpoints[-1][1]
    resumed = ListSink()
    train(config(), inputs(tmp_path / "b", resume_from=checkpoint), resumed)
    assert sorted(resumed.metrics) == [2, 3, 4, 5, 6]
    for step in range(2, 7):
        assert resumed.metrics[step]["loss"] == pytest.approx(straight.metrics[step]["loss"], abs=1e-6)


def test_scores_are_stored_for_both_splits_at_the_start_and_the_end(tmp_path: Path) -> None:
    sink = ListSink()
    train(config(max_steps=4), inputs(tmp_path), sink)
    assert sink.scores == [(0, "eval", 4), (0, "train", 10), (4, "eval", 4), (4, "train", 10)]
    assert [s for s, _ in sink.checkpoints] == [3, 4]
    assert "eval_rewards/accuracies/en-de" in sink.metrics[4] and "rewards/margins" in sink.metrics[1]


def test_step_zero_train_scores_come_from_the_base_cache_and_equal_a_forward_pass(tmp_path: Path) -> None:
    """The eval pairs are train pairs too: at step 0 their eval rows (a forward pass through the fresh
    adapter) and their train rows (the cached base scores, no pass) must agree."""
    sink = ListSink()
    train(config(max_steps=1), inputs(tmp_path), sink)
    rows = {split: {r.pair_id: r for r in found} for step, split, found in sink.rows if step == 0}
    for pair_id, forward in rows["eval"].items():
        cached = rows["train"][pair_id]
        assert cached.logp_chosen == pytest.approx(forward.logp_chosen, abs=1e-5)
        assert cached.logp_rejected == pytest.approx(forward.logp_rejected, abs=1e-5)
        assert (cached.n_tokens_chosen, cached.n_tokens_rejected) == (
            forward.n_tokens_chosen, forward.n_tokens_rejected
        )  # fmt: skip
        assert cached.loss == pytest.approx(forward.loss, abs=1e-5)


def test_the_train_split_is_not_rescored_when_told_not_to(tmp_path: Path) -> None:
    sink = ListSink()
    train(config(max_steps=2, score_train_split=False), inputs(tmp_path), sink)
    assert sink.scores == [(0, "eval", 4), (2, "eval", 4)]
    assert "train_rewards/accuracies" not in sink.metrics[2] and "rewards/accuracies" in sink.metrics[2]


def test_validation_split_is_scored_with_its_own_prefix_when_asked(tmp_path: Path) -> None:
    sink = ListSink()
    run_inputs = TrainInputs(PAIRS[:6], PAIRS[6:8], tmp_path / "run", tmp_path / "models", None, PAIRS[8:])
    train(config(max_steps=2, eval_splits=["eval", "validation"]), run_inputs, sink)
    assert sink.scores == [
        (0, "eval", 2), (0, "validation", 2), (0, "train", 6),
        (2, "eval", 2), (2, "validation", 2), (2, "train", 6),
    ]  # fmt: skip
    at_end = sink.metrics[2]
    for key in (
        "accuracies",
        "accuracies_per_token",
        "accuracies_vs_base",
        "tie_fraction",
        "truncated_identical_fraction",
    ):
        assert f"validation_rewards/{key}" in at_end and f"validation_rewards/{key}/en-de" in at_end
    assert sink.metrics[0]["validation_rewards/accuracies_vs_base"] == 0.0  # the policy is the base at step 0


def test_pairs_identical_only_after_truncation_are_noted_and_counted_but_are_not_ties(tmp_path: Path) -> None:
    # max_length 40: prompts keep their last 20 tokens, responses their first 20 (one byte a token).
    # Pair 20: " Die Katze sass auf " for both responses, texts differ ⇒ truncated-identical, not a tie.
    # Pair 21: the stored tie (the same words, spaced differently) ⇒ a tie, its tokens differ.
    prompt = "Translate: the cat sat on the mat today."
    held_out = [
        Pair(20, "en-de", prompt, "Die Katze sass auf der Matte.", "Die Katze sass auf dem Sofa."),
        Pair(21, "en-de", prompt, "Die  Katze.", "Die Katze.", tie=True),
    ]
    sink = ListSink()
    run_inputs = TrainInputs(PAIRS[:2], held_out, tmp_path / "run", tmp_path / "models")
    train(config(max_length=40, max_steps=1), run_inputs, sink)
    assert any(
        n.startswith("1 pair(s) have different texts but the same response tokens") for n in sink.notes
    )
    step0 = sink.metrics[0]
    assert step0["eval_rewards/truncated_identical_fraction"] == 0.5  # 1 of 2
    assert step0["eval_rewards/tie_fraction"] == 0.5  # 1 of 2
    assert step0["train_rewards/truncated_identical_fraction"] == 0.0
    rows = {r.pair_id: r for step, split, rs in sink.rows if (step, split) == (0, "eval") for r in rs}
    assert (rows[20].tie, rows[20].truncated_identical) == (False, True)
    assert (rows[21].tie, rows[21].truncated_identical) == (True, False)
    assert not (rows[21].logp_chosen == rows[21].logp_rejected)  # a tie's scores differ: only its flag counts


def test_a_non_finite_loss_stops_the_run_naming_step_and_pairs(tmp_path: Path, monkeypatch) -> None:
    real = train_module.compute_objective

    def poisoned(name, logps, params):
        out = real(name, logps, params)
        if torch.is_grad_enabled():
            out.loss[0] = float("nan")
        return out

    monkeypatch.setattr(train_module, "compute_objective", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"not finite at step 1 for pair\(s\) \[\d+\]"):
        train(config(), inputs(tmp_path), ListSink())


def test_without_bitsandbytes_4bit_and_paged_adamw_fall_back_quoting_the_import_error(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # `import bitsandbytes` raises ImportError
    sink = ListSink()
    cfg = config_from_dict(
        {
            **config(max_steps=1).model_dump(),
            "model": {"name_or_path": "tiny-random-llama", "load_in_4bit": True},
            "optim": {"optimizer": "paged_adamw"},
        }
    )
    train(cfg, inputs(tmp_path), sink)
    said = "ModuleNotFoundError: import of bitsandbytes halted; None in sys.modules"
    assert f'load_in_4bit unavailable here: bitsandbytes said "{said}"; loading it unquantised' in sink.notes
    assert f'paged_adamw unavailable here: bitsandbytes said "{said}"; using torch AdamW' in sink.notes


def test_a_local_model_folder_loads_4bit_on_cpu_and_unquantised_without_bitsandbytes(
    tmp_path: Path, monkeypatch
) -> None:
    tiny = tiny_random_llama()
    tiny.model.save_pretrained(tmp_path / "tiny")
    tiny.tokenizer.save_pretrained(tmp_path / "tiny")
    cfg = ModelConfig(name_or_path=str(tmp_path / "tiny"), load_in_4bit=True)
    quantised = load_base_model(cfg, tmp_path, torch.device("cpu"))
    assert quantised.notes == cpu_4bit_kernel_notes(torch.device("cpu"))  # no fallback; at most that note
    assert type(quantised.model.model.layers[0].mlp.down_proj).__name__ == "Linear4bit"
    torch.testing.assert_close(quantised.model.lm_head.weight, tiny.model.lm_head.weight)  # the head stays
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    plain = load_base_model(cfg, tmp_path, torch.device("cpu"))
    assert plain.notes and plain.notes[0].startswith("load_in_4bit unavailable here: bitsandbytes said")
    torch.testing.assert_close(
        plain.model.model.layers[0].mlp.down_proj.weight, tiny.model.model.layers[0].mlp.down_proj.weight
    )


def test_bf16_auto_follows_the_native_bf16_check_and_keeps_float64_out(monkeypatch) -> None:
    model = tiny_random_llama().model
    cpu = torch.device("cpu")
    for native in (True, False):
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda native=native: native)
        autocast, notes = precision.bf16_autocast("auto", model, cpu)
        assert isinstance(autocast, torch.autocast) is native and notes == []
    autocast, notes = precision.bf16_autocast(True, model, cpu)  # asked for: on, native or not
    assert isinstance(autocast, torch.autocast) and notes == []
    autocast, notes = precision.bf16_autocast(True, model.to(torch.float64), cpu)
    assert not isinstance(autocast, torch.autocast) and "float64" in notes[0]


def test_native_bf16_on_cpu_means_bf16_matrix_units(monkeypatch) -> None:
    cases = [
        ({"avx512_bf16": True}, False),
        ({"avx512_bf16": True, "amx_bf16": True}, True),
        ({"bf16": True}, True),
    ]
    for flags, native in cases:  # AVX512-BF16 alone computed bf16 slower than float32 (capo/precision.py)
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda flags=flags: flags)
        assert precision.cpu_has_native_bf16() is native


def test_dpo_first_evaluation_is_ln2_under_bf16_the_reference_scored_under_the_same_autocast(
    tmp_path: Path,
) -> None:
    sink = ListSink()
    cfg = config_from_dict(
        {**config(max_steps=1, bf16=True).model_dump(), "objective": {"name": "dpo", "beta": 0.1}}
    )
    train(cfg, inputs(tmp_path), sink)
    first = [row for step, _, rows in sink.rows if step == 0 for row in rows]
    assert len(first) == 14  # 4 eval + 10 train pairs
    assert all(row.loss == pytest.approx(math.log(2), abs=1e-6) for row in first)
    assert all(row.logp_chosen == row.ref_logp_chosen for row in first)  # bf16 agrees to the bit


def test_activation_checkpointing_gives_the_same_losses(tmp_path: Path) -> None:
    plain, checkpointed = ListSink(), ListSink()
    train(config(max_steps=3), inputs(tmp_path / "a"), plain)
    train(config(max_steps=3, gradient_checkpointing=True), inputs(tmp_path / "b"), checkpointed)
    for step in (1, 2, 3):
        assert checkpointed.metrics[step]["loss"] == pytest.approx(plain.metrics[step]["loss"], abs=1e-5)
