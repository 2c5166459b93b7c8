"""capo.trl: the lab's objectives through TRL's DPOTrainer give the lab's trainer's per-pair losses.

The TRL side scores pairs with TRL's fused LM head, which computes the log-softmax in float32 whatever the
model's dtype (trl/kernels/chunked_logprob.py), while the lab's scorer computes in float64 here, so the
summed log-probs differ by TRL's float32 rounding (at most 4e-6 nats here, over up to 64 tokens) and the
losses by at most 4e-7 (measured with TRL 1.16), within the 1e-6 asked for.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from capo.config import config_from_dict
from capo.data import BuildOptions, build_pairs, read_all
from capo.errors import UserError
from capo.models import tiny_random_llama
from capo.objectives import PairLogps, compute_objective
from capo.packing import batch_response_logps, make_batch, scoring_layout
from capo.scoring import TokenizedPair, tokenize_pair

REPO = Path(__file__).resolve().parents[2]
MAX_LENGTH = 128  # the lab keeps the prompt's last 64 tokens and cuts each response to fit
TRL_MAX_LENGTH = 512  # TRL drops a pair whose prompt alone fills max_length; these prompts take ~220 tokens
LOSS_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def trl_classes():
    pytest.importorskip("trl", reason="TRL is the optional extra capo-lab[trl]")
    from peft import LoraConfig
    from trl import DPOConfig

    from capo.trl import CapoTrainer

    return CapoTrainer, DPOConfig, LoraConfig


@pytest.fixture(scope="module")
def mtpe_pairs(shared_data: Path):
    """Real DivEMT pairs, one a direction (six): each direction's train pair with the shortest responses, so
    that within MAX_LENGTH some responses are cut to 64 tokens and others are not, at unequal lengths."""
    options = BuildOptions(per_direction=1000, min_source_chars=0)
    pairs, _ = build_pairs(read_all([shared_data / "divemt" / "warmup.tsv"]), options)
    shortest: dict[str, object] = {}
    for pair in sorted(pairs, key=lambda p: len(p.chosen) + len(p.rejected)):
        if pair.split == "train":
            shortest.setdefault(pair.direction, pair)
    assert len(shortest) == 6
    return list(shortest.values())


def text_dataset(pairs):
    """The pairs as TRL's text rows; the space is the lab's ``data.response_separator``."""
    from datasets import Dataset

    rows = [{"prompt": p.prompt, "chosen": " " + p.chosen, "rejected": " " + p.rejected} for p in pairs]
    return Dataset.from_list(rows)


def make_trainer(
    trl_classes, tmp_path: Path, model, tokenizer, pairs, objective: str, beta: float, **options
):
    """A CapoTrainer with a fresh LoRA (TRL wraps the model) on the pairs as TRL's text dataset."""
    capo_trainer, dpo_config, lora_config = trl_classes
    args = dpo_config(
        output_dir=str(tmp_path),
        beta=beta,
        max_length=TRL_MAX_LENGTH,
        report_to=[],
        use_cpu=True,
        bf16=False,  # TRL's default (bf16 autocast) is for GPUs
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
        **options,
    )
    lora = lora_config(
        r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    return capo_trainer(
        model,
        args=args,
        objective=objective,
        train_dataset=text_dataset(pairs),
        processing_class=tokenizer,
        peft_config=lora,
    )


def trained_adapter(model: torch.nn.Module) -> None:
    """LoRA B drawn at random (seed 1): the policy differs from the base, as after some training."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(
                    0.3 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
                )


def lab_trainer_losses(model, tokenizer, pairs: list[TokenizedPair], cfg):
    """What capo/train.py computes for a step's pairs: its default scoring layout for the policy, the
    same model with adapters disabled for the base (reference) scores, then compute_objective."""
    packed, _ = scoring_layout(cfg.train.scoring, model)
    batch = make_batch(pairs, tokenizer.pad_token_id, packed)
    with torch.no_grad():
        policy = batch_response_logps(model, batch)
        with model.disable_adapter():
            base = batch_response_logps(model, batch)
    logps = PairLogps(
        policy.chosen,
        policy.rejected,
        policy.chosen_tokens,
        policy.rejected_tokens,
        base.chosen,
        base.rejected,
    )
    return logps, compute_objective(cfg.objective.name, logps, cfg.objective.model_dump())


def spy_on_reference(trainer) -> list[int]:
    """Counts reference forward passes (``compute_ref_log_probs`` calls) of ``trainer``."""
    calls: list[int] = []
    original = trainer.compute_ref_log_probs

    def counted(model, inputs):
        calls.append(1)
        return original(model, inputs)

    trainer.compute_ref_log_probs = counted
    return calls


@pytest.mark.parametrize("objective", ["capo", "simpo", "dpo_nll", "dpo"])
def test_per_pair_losses_equal_the_lab_trainers(trl_classes, mtpe_pairs, tmp_path, objective):
    cfg = config_from_dict({"objective": {"name": objective}, "data": {"max_length": MAX_LENGTH}})
    tiny = tiny_random_llama()
    model, tokenizer = tiny.model.to(torch.float64), tiny.tokenizer
    trainer = make_trainer(trl_classes, tmp_path, model, tokenizer, mtpe_pairs, objective, cfg.objective.beta)
    trained_adapter(trainer.model)
    data = cfg.data
    pairs = [
        tokenize_pair(tokenizer, i, p.direction, p.prompt, p.chosen, p.rejected, data.max_length,
                      data.response_separator, data.chat_template)
        for i, p in enumerate(mtpe_pairs)
    ]  # fmt: skip
    assert any(len(p.chosen_ids) == 64 for p in pairs) and any(len(p.chosen_ids) < 64 for p in pairs)
    assert any(len(p.chosen_ids) != len(p.rejected_ids) for p in pairs)  # SimPO's |y| matter
    # The same batch: the lab's token ids through TRL's own collator (chosen rows, then rejected rows).
    batch = trainer.data_collator(
        [
            {"prompt_ids": p.prompt_ids, "chosen_ids": p.chosen_ids, "rejected_ids": p.rejected_ids}
            for p in pairs
        ]
    )
    reference_calls = spy_on_reference(trainer)
    with torch.no_grad():
        trl_logps, trl_out = trainer.pair_losses(trainer.model, batch)
    lab_logps, lab_out = lab_trainer_losses(trainer.model, tokenizer, pairs, cfg)

    assert trl_out.loss.dtype == torch.float64
    assert torch.equal(trl_logps.chosen_tokens, lab_logps.chosen_tokens)
    assert torch.equal(trl_logps.rejected_tokens, lab_logps.rejected_tokens)
    needs_reference = objective in ("dpo", "dpo_nll")  # capo and simpo are reference-free
    assert len(reference_calls) == int(needs_reference)
    assert (trl_logps.ref_chosen is not None) == needs_reference
    # Summed log-probs: TRL's float32 log-softmax against the lab's float64 one.
    sides = (
        ("chosen", "rejected", "ref_chosen", "ref_rejected") if needs_reference else ("chosen", "rejected")
    )
    for side in sides:
        torch.testing.assert_close(getattr(trl_logps, side), getattr(lab_logps, side), rtol=0, atol=2e-5)
    torch.testing.assert_close(trl_out.loss, lab_out.loss, rtol=0, atol=LOSS_TOLERANCE)


def test_capo_by_hand_on_what_trl_passes(trl_classes, mtpe_pairs, tmp_path):
    """CAPO's formula written out on TRL's summed log-probs: L = −log σ(β(lw − ll) + α·lw/ll), β 0.5, α 3."""
    tiny = tiny_random_llama()
    model = tiny.model.to(torch.float64)
    objective = {"name": "capo", "alpha": 3.0}
    trainer = make_trainer(trl_classes, tmp_path, model, tiny.tokenizer, mtpe_pairs[:2], objective, 0.5)
    trained_adapter(trainer.model)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    with torch.no_grad():
        logps, out = trainer.pair_losses(trainer.model, batch)
    lw, ll = logps.chosen, logps.rejected
    assert bool((lw < 0).all() and (ll < 0).all())
    z = 0.5 * (lw - ll) + 3.0 * lw / ll
    torch.testing.assert_close(out.loss, torch.log1p(torch.exp(-z)), rtol=0, atol=1e-12)


def test_two_training_steps_through_trl_on_cpu(trl_classes, mtpe_pairs, tmp_path):
    """CAPO, float32, batch 2 over four pairs: two optimizer steps, the loss logged at each, the adapter
    moved, an evaluation on the other two pairs, and not one reference forward pass."""
    tiny = tiny_random_llama()
    steps = {"per_device_train_batch_size": 2, "max_steps": 2, "learning_rate": 1e-3, "logging_steps": 1}
    trainer = make_trainer(
        trl_classes, tmp_path, tiny.model, tiny.tokenizer, mtpe_pairs[:4], "capo", 0.1, **steps
    )
    reference_calls = spy_on_reference(trainer)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_B" in n}
    trainer.train()
    assert trainer.state.global_step == 2
    logged = [row for row in trainer.state.log_history if "loss" in row]
    assert [row["step"] for row in logged] == [1, 2]
    for row in logged:
        assert row["loss"] > 0 and 0 <= row["rewards/accuracies"] <= 1
        # CAPO's rewards are β·l: their margin is β times the summed log-prob margin.
        assert row["rewards/margins"] == pytest.approx(
            0.1 * (row["logps/chosen"] - row["logps/rejected"]), abs=1e-4
        )
    moved = [n for n, p in trainer.model.named_parameters() if n in before and not torch.equal(p, before[n])]
    assert before and len(moved) == len(before)
    metrics = trainer.evaluate(text_dataset(mtpe_pairs[4:]))
    assert metrics["eval_loss"] > 0 and 0 <= metrics["eval_rewards/accuracies"] <= 1
    assert reference_calls == []


@pytest.mark.parametrize(
    ("objective", "options", "field"),
    [
        ("capo", {"loss_type": ["ipo"]}, "loss_type"),
        ("dpo", {"ld_alpha": 0.5}, "ld_alpha"),
        ("capo", {"precompute_ref_log_probs": True}, "precompute_ref_log_probs"),
        ({"name": "simpo", "beta": 2.0}, {}, "beta"),  # DPOConfig's beta is 0.1 here
        ({"name": "capo", "alpha": -1.0}, {}, "objective.alpha"),
        ("kto", {}, "objective.name"),
        (7, {}, "objective"),
    ],
)
def test_bad_settings_are_one_line_before_any_model_work(trl_classes, tmp_path, objective, options, field):
    capo_trainer, dpo_config, _ = trl_classes
    args = dpo_config(output_dir=str(tmp_path), report_to=[], use_cpu=True, **options)
    with pytest.raises(UserError) as raised:
        capo_trainer(None, args=args, objective=objective)  # no model: refused before it is touched
    message = str(raised.value)
    assert message.startswith(f"{field}: ") and "\n" not in message


def test_a_reference_model_is_refused_for_a_reference_free_objective(trl_classes, tmp_path):
    capo_trainer, dpo_config, _ = trl_classes
    args = dpo_config(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    with pytest.raises(UserError, match=r"^ref_model: a reference-free objective reads no reference model$"):
        capo_trainer(None, ref_model=torch.nn.Linear(1, 1), args=args, objective="simpo")


def test_without_trl_the_lab_imports_and_capo_trl_says_which_extra():
    script = textwrap.dedent(
        """
        import sys
        import capo.objectives, capo.train
        print("trl" in sys.modules)
        sys.modules["trl"] = None  # as if TRL were not installed
        try:
            import capo.trl
        except ImportError as err:
            from capo.errors import UserError
            print(isinstance(err, UserError), err)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["False", "True capo.trl needs TRL: pip install 'capo-lab[trl]'"]


def test_only_capo_trl_imports_trl_in_the_product():
    importers = []
    for package in ("capo", "capo_lab", "storage", "worker", "app"):
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                if any(name.split(".")[0] == "trl" for name in names):
                    importers.append(str(path.relative_to(REPO)))
    assert sorted(set(importers)) == ["capo/trl.py"]
