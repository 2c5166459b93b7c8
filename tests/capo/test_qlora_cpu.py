"""QLoRA on CPU: the smoke preset trains with an NF4 4-bit base, bitsandbytes' paged AdamW and bf16
autocast, and the adapter it saves reloads with plain PEFT on a freshly 4-bit-loaded base."""

import math
import shutil
from pathlib import Path

import bitsandbytes as bnb
import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, BitsAndBytesConfig

import capo.train as train_module
from capo.config import LoraConfig, RunConfig, load_config
from capo.models import CPU_4BIT_KERNEL_NOTE, add_lora, load_base_model, tiny_random_llama
from capo.packing import batch_response_logps, make_batch
from capo.precision import keep_4bit_layers_differentiable
from capo.scoring import tokenize_pair
from capo.train import TrainInputs, train
from tests.capo.test_train import PAIRS, ListSink

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
QLORA = ["model.load_in_4bit=true", "optim.optimizer=paged_adamw", "train.bf16=true"]
EXPORTED = ("adapter_config.json", "adapter_model.safetensors")  # what capo_lab.exports.export_run copies
TINY_NOTE = "tiny-random-llama: random weights, for tests and smoke runs only"
CPU = torch.device("cpu")


def fresh_nf4_base(cfg: RunConfig, folder: Path) -> torch.nn.Module:
    """tiny-random-llama's saved weights loaded 4-bit by plain transformers, as a user would."""
    dtype = getattr(torch, cfg.model.dtype)
    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_use_double_quant=True,
    )
    return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, quantization_config=quantization)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The smoke preset trained 4-bit + paged AdamW + bf16, with what each decoder-layer call ran under."""
    tmp = tmp_path_factory.mktemp("qlora")
    cfg = load_config(SMOKE, QLORA)
    loaded = load_base_model(cfg.model, tmp / "models", CPU)
    base_layers = [type(m) for m in loaded.model.modules() if isinstance(m, torch.nn.Linear)]
    seen: set[tuple[bool, bool, torch.dtype]] = set()
    loaded.model.model.layers[0].register_forward_pre_hook(
        lambda module, _: seen.add(
            (module.training, torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))
        )
    )
    optimizers = []
    with pytest.MonkeyPatch.context() as patch:
        real = train_module._optimizer
        patch.setattr(train_module, "_optimizer", lambda *a: optimizers.append(real(*a)) or optimizers[-1])
        sink = ListSink()
        result = train(cfg, TrainInputs(PAIRS, PAIRS[:4], tmp / "run", tmp / "models"), sink, loaded=loaded)
    return cfg, result, sink, base_layers, seen, optimizers[0], tmp


def test_smoke_preset_trains_4bit_with_paged_adamw_under_bf16_and_no_fallback(run) -> None:
    cfg, result, sink, base_layers, seen, optimizer, _ = run
    assert result.status == "succeeded" and result.step == 12
    assert base_layers.count(bnb.nn.Linear4bit) == 14  # 2 layers x 7 projections; the head stays Linear
    assert set(base_layers) == {bnb.nn.Linear4bit, torch.nn.Linear}
    assert isinstance(optimizer, bnb.optim.PagedAdamW) and optimizer.is_paged
    assert not any("unavailable here" in note for note in sink.notes)  # the lab fell back nowhere
    # bitsandbytes itself says paging (GPU memory spilling to host memory) does not apply on CPU:
    relayed = [note for note in sink.notes if note not in (TINY_NOTE, CPU_4BIT_KERNEL_NOTE)]
    assert all(note.startswith('paged_adamw: bitsandbytes says "') for note in relayed)
    assert seen == {(False, True, torch.bfloat16), (True, True, torch.bfloat16)}  # scoring and training
    losses = [sink.metrics[step]["loss"] for step in range(1, 13)]
    assert all(math.isfinite(loss) for loss in losses) and losses[-1] < losses[0]


def exported_like_the_lab(checkpoint: Path, out: Path) -> Path:
    out.mkdir()
    for name in EXPORTED:
        shutil.copy2(checkpoint / name, out / name)
    return out


def stored_eval_scores(cfg: RunConfig, sink: ListSink, tokenizer):
    """The last evaluation's eval pairs as one batch, with their stored [chosen, rejected] log-probs
    for the policy and for the base."""
    stored = {
        row.pair_id: row for step, split, rows in sink.rows if (step, split) == (12, "eval") for row in rows
    }
    pairs = [
        tokenize_pair(
            tokenizer, p.pair_id, p.direction, p.prompt, p.chosen, p.rejected,
            cfg.data.max_length, cfg.data.response_separator, cfg.data.chat_template,
        )
        for p in PAIRS[:4]
    ]  # fmt: skip
    rows = [stored[p.pair_id] for p in pairs]
    policy = torch.tensor([[r.logp_chosen, r.logp_rejected] for r in rows])
    base = torch.tensor([[r.ref_logp_chosen, r.ref_logp_rejected] for r in rows])
    return make_batch(pairs, tokenizer.pad_token_id, packed=True), policy, base  # the trainer's layout


def test_saved_adapter_reloads_with_plain_peft_on_a_fresh_4bit_base_and_gives_the_stored_logps(run) -> None:
    cfg, _, sink, _, _, _, tmp = run
    exported = exported_like_the_lab(sink.checkpoints[-1][1], tmp / "exported")
    tiny = tiny_random_llama()
    tiny.model.save_pretrained(tmp / "base")
    batch, want, base_logps = stored_eval_scores(cfg, sink, tiny.tokenizer)
    assert (
        want - base_logps
    ).abs().min() > 10  # the adapter moved every log-prob far more than the tolerances

    def reloaded_logps(lab_kernels: bool) -> torch.Tensor:
        base = fresh_nf4_base(cfg, tmp / "base")
        if lab_kernels:
            keep_4bit_layers_differentiable(base)
        model = PeftModel.from_pretrained(base, str(exported)).eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            out = batch_response_logps(model, batch)
        return torch.stack([out.chosen, out.rejected], dim=1)

    # Plain PEFT: a no-grad eval forward on an AVX512-BF16 CPU takes bitsandbytes' CPU inference
    # kernel, which rounds activations, block scales and outputs to bf16 (measured: 0.11 nats off
    # log-probs near -75); 0.5 nats is 20x below the adapter's smallest move.
    torch.testing.assert_close(reloaded_logps(lab_kernels=False), want, rtol=0, atol=0.5)
    # The trainer's kernels (no repacking): the same bf16 computation, the stored numbers (measured equal).
    torch.testing.assert_close(reloaded_logps(lab_kernels=True), want, rtol=0, atol=1e-4)


def test_an_eval_forward_leaves_4bit_layers_passing_gradients_to_earlier_adapters(tmp_path: Path) -> None:
    """bitsandbytes repacks 4-bit weights for a backward-less CPU kernel on a no-grad eval forward
    (on AVX512-BF16 CPUs; elsewhere both runs take the same path and this passes trivially)."""
    ids = torch.randint(3, 250, (2, 24), generator=torch.Generator().manual_seed(0))

    def first_layer_gradient(evaluate_first: bool) -> torch.Tensor:
        loaded = load_base_model(load_config(SMOKE, QLORA).model, tmp_path, CPU)
        keep_4bit_layers_differentiable(loaded.model)
        model = add_lora(loaded.model, LoraConfig(dropout=0.0))
        for name, param in model.named_parameters():
            if "lora_B" in name:  # with B = 0 every lora_A gradient is 0 and both runs would agree
                torch.nn.init.normal_(param, std=0.1, generator=torch.Generator().manual_seed(1))
        if evaluate_first:
            with torch.no_grad():
                model.eval()(input_ids=ids)
        model.train()(input_ids=ids).logits.float().log_softmax(-1)[..., 5].mean().backward()
        return model.base_model.model.model.layers[0].self_attn.q_proj.lora_A["default"].weight.grad

    torch.testing.assert_close(first_layer_gradient(evaluate_first=True), first_layer_gradient(False))
