"""Batched greedy generation: left padding changes nothing, truncation is reported, base disables LoRA."""

import torch

import capo.models as models
from capo.config import LoraConfig, ModelConfig
from capo.generate import generate, generation_model, left_padded, load_generation_model, stop_token_ids
from capo.models import add_lora, tiny_random_llama
from capo.precision import keep_4bit_layers_differentiable, native_bf16
from capo.templates import render_pair

PROMPTS = ["Translate: the cat.", "Translate this much longer sentence about a dog, please:", "Hi"]


def prompt_ids(tok):
    return [render_pair(tok, p, "x", "y", "zephyr").prompt.ids for p in PROMPTS]


def test_left_padding_puts_every_prompt_at_the_right_edge():
    ids, mask = left_padded([(5, 6, 7), (8,)], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_batched_equals_one_at_a_time_and_truncation_is_counted():
    tiny = tiny_random_llama()
    tok, prompts = tiny.tokenizer, prompt_ids(tiny.tokenizer)
    stops = stop_token_ids(tok, render_pair(tok, "p", "c", "r", "zephyr").chosen.ids)
    assert stops == [tok.eos_token_id]
    batched = generate(tiny.model, tok, prompts, stops, max_new_tokens=6, batch_size=3)
    alone = [generate(tiny.model, tok, [p], stops, max_new_tokens=6)[0] for p in prompts]
    assert batched == alone
    for g in batched:  # random weights never say EOS within 6 tokens: each is cut, and says so
        assert g.truncated and g.n_tokens == 6


def test_base_disables_the_adapter():
    tiny = tiny_random_llama()
    model = add_lora(tiny.model, LoraConfig())
    tok, prompts = tiny.tokenizer, prompt_ids(tiny.tokenizer)
    stops = [tok.eos_token_id]
    before = generate(model, tok, prompts, stops, max_new_tokens=6)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 2.0, generator=torch.Generator().manual_seed(0))
    after = generate(model, tok, prompts, stops, max_new_tokens=6)
    base = generate(model, tok, prompts, stops, max_new_tokens=6, base=True)
    assert base == before and after != before


def test_one_load_serves_the_adapter_and_the_base_on_the_device_it_is_given(tmp_path, monkeypatch) -> None:
    tiny = tiny_random_llama()
    trained = add_lora(tiny.model, LoraConfig())
    with torch.no_grad():
        for name, param in trained.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 2.0, generator=torch.Generator().manual_seed(0))
    trained.save_pretrained(tmp_path / "adapter")
    tok, prompts = tiny.tokenizer, prompt_ids(tiny.tokenizer)
    want = generate(trained, tok, prompts, [tok.eos_token_id], max_new_tokens=6)
    want_base = generate(trained, tok, prompts, [tok.eos_token_id], max_new_tokens=6, base=True)
    devices, fresh = [], tiny_random_llama()  # the same seed: the same base weights
    monkeypatch.setattr(models, "load_base_model", lambda cfg, cache, device: devices.append(device) or fresh)
    worker_gpu = torch.device("cuda", 3)  # recorded, not used: this machine has no GPU
    model, tokenizer = load_generation_model(ModelConfig(), tmp_path, worker_gpu, tmp_path / "adapter")
    assert devices == [worker_gpu]  # loaded once, where the worker said
    assert not model.training
    assert generate(model, tokenizer, prompts, [tok.eos_token_id], max_new_tokens=6) == want
    assert generate(model, tokenizer, prompts, [tok.eos_token_id], max_new_tokens=6, base=True) == want_base


def test_generation_turns_the_4bit_kernel_back_on_and_decodes_in_bf16_as_transformers_does(tmp_path) -> None:
    from bitsandbytes.functional import has_avx512bf16

    qlora = ModelConfig(name_or_path="tiny-random-llama", dtype="bfloat16", load_in_4bit=True)
    loaded = models.load_base_model(qlora, tmp_path, torch.device("cpu"))
    assert keep_4bit_layers_differentiable(loaded.model) == 14  # as training leaves it
    # peft's upcast, which the lab undoes on a CPU with a bf16 matrix unit (AMX)
    upcast = torch.bfloat16 if native_bf16(torch.device("cpu")) else torch.float32
    assert loaded.model.lm_head.weight.dtype == upcast
    model = generation_model(add_lora(loaded.model, LoraConfig()))
    flags = [
        m.support_avx512bf16_for_cpu for m in model.modules() if hasattr(m, "support_avx512bf16_for_cpu")
    ]
    assert flags == [has_avx512bf16()] * 14
    assert model.get_output_embeddings().weight.dtype == torch.bfloat16
    assert model.get_input_embeddings().weight.dtype == torch.bfloat16
    assert model.base_model.model.model.norm.weight.dtype == torch.bfloat16  # as transformers loads it
    assert {p.dtype for n, p in model.named_parameters() if ".lora_" in n} == {torch.bfloat16}
    seen = []  # runs after generation_model's hook: what the head's matmul gets
    head = model.get_output_embeddings()
    head.register_forward_pre_hook(lambda module, args: seen.append(args[0].is_contiguous()))
    out = generate(model, loaded.tokenizer, prompt_ids(loaded.tokenizer), [loaded.tokenizer.eos_token_id], 4)
    assert [g.n_tokens for g in out] == [4, 4, 4]
    assert seen == [True] * 4  # the prompt's step included: hidden[:, -1:, :] alone is a strided view


def test_on_cpu_the_adapter_generates_through_merged_dense_copies_that_compute_the_same(tmp_path) -> None:
    from capo.generate import _merged_layers_in

    qlora = ModelConfig(name_or_path="tiny-random-llama", dtype="bfloat16", load_in_4bit=True)
    loaded = models.load_base_model(qlora, tmp_path, torch.device("cpu"))
    model = add_lora(loaded.model, LoraConfig(dropout=0.0))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:  # a trained adapter: B ≠ 0
                param.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    model = generation_model(model)
    assert len(model._capo_merged) == 14  # 2 layers × 7 projections
    ids = torch.tensor(prompt_ids(loaded.tokenizer)[0]).unsqueeze(0)
    with torch.no_grad():
        unmerged = model(input_ids=ids).logits.float()
        with _merged_layers_in(model):
            assert isinstance(model.base_model.model.model.layers[0].self_attn.q_proj, torch.nn.Linear)
            merged = model(input_ids=ids).logits.float()
        with model.disable_adapter():
            base = model(input_ids=ids).logits.float()
    # Both compute W₄ + s·B·A in bf16, rounded in different places: the merged copy rounds the sum
    # once, the unmerged path rounds the 4-bit product and the LoRA product apart, and its CPU kernel
    # also rounds the block scales to bf16; the differences compound over the layers. Measured: mean
    # |Δ| 0.04 (max 0.44) for logits up to 6.2, where the adapter itself moved them by a mean of 1.8
    # (max 9.6). Bound: a tenth of the adapter's move, on average, and at the worst logit.
    adapter_move = (base - unmerged).abs()
    assert (merged - unmerged).abs().mean() < adapter_move.mean() / 10
    assert (merged - unmerged).abs().max() < adapter_move.max() / 10


def _greedy_by_hand(model, tok, prompt: tuple[int, ...], steps: int) -> list[int]:
    """Argmax of the next-token logits, one full forward per token (no cache, no generate)."""
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(steps):
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[len(prompt) :]


def test_temperature_0_is_greedy_as_before():
    tiny = tiny_random_llama()
    tok, prompts = tiny.tokenizer, prompt_ids(tiny.tokenizer)
    made = generate(tiny.model, tok, prompts, [tok.eos_token_id], max_new_tokens=6, temperature=0.0)
    assert made == generate(tiny.model, tok, prompts, [tok.eos_token_id], max_new_tokens=6)  # the default
    for prompt, generation in zip(prompts, made, strict=True):
        assert generation.text == tok.decode(_greedy_by_hand(tiny.model, tok, prompt, 6)).strip()


def test_the_same_seed_gives_the_same_text_alone_or_in_any_batch():
    tiny = tiny_random_llama()
    tok, prompts = tiny.tokenizer, prompt_ids(tiny.tokenizer)

    def sample(seeds, batch_size=3, temperature=1.0):
        return generate(
            tiny.model, tok, prompts, [tok.eos_token_id], 8, batch_size, temperature=temperature, seeds=seeds
        )

    first = sample([11, 12, 13])
    assert sample([11, 12, 13]) == first
    assert sample([11, 12, 13], batch_size=1) == first  # neighbours in the batch change nothing
    assert sample([11, 99, 13])[0::2] == first[0::2]  # a row's text depends on its own seed only
    assert sample([21, 22, 23]) != first
    assert first != generate(tiny.model, tok, prompts, [tok.eos_token_id], 8)  # it is not greedy
    assert all(g.n_tokens == 8 and g.truncated for g in first)


def test_seeded_sampling_draws_from_softmax_of_logits_over_temperature():
    from capo.generate import SeededSampling

    draws = 4000
    sampler = SeededSampling(0.5, range(draws), torch.device("cpu"))
    scores = torch.tensor([[2.0, 1.0, 0.0]]).expand(draws, 3)
    picked = sampler(None, scores).argmax(dim=-1)
    # softmax([2, 1, 0] / 0.5) = e^4, e^2, e^0 over their sum: 54.598 / 62.987, 7.389 / 62.987, 1 / 62.987
    expected = [54.598 / 62.987, 7.389 / 62.987, 1 / 62.987]  # 0.8668, 0.1173, 0.0159
    shares = [(picked == token).float().mean().item() for token in range(3)]
    for share, p in zip(shares, expected, strict=True):
        assert abs(share - p) < 4 * (p * (1 - p) / draws) ** 0.5  # within 4 standard errors (≤ 0.022)
    again = SeededSampling(0.5, range(draws), torch.device("cpu"))(None, scores).argmax(dim=-1)
    assert torch.equal(again, picked)


def test_a_plain_text_turn_marker_ends_the_answer_and_is_cut_from_it():
    from capo.generate import _cut

    tok = tiny_random_llama().tokenizer  # byte level: one token per byte
    ids = tok("Rain falls.\n<|user|>\nMore", add_special_tokens=False)["input_ids"]
    made = _cut(tok, ids, [tok.eos_token_id], max_new_tokens=len(ids), stop_strings=("<|user|>",))
    assert made.text == "Rain falls."
    assert made.n_tokens == len("Rain falls.\n")  # 12 tokens lie before the marker
    assert not made.truncated  # it stopped; the limit did not cut it
    plain = _cut(tok, ids, [tok.eos_token_id], max_new_tokens=len(ids))
    assert plain.text == "Rain falls.\n<|user|>\nMore" and plain.truncated
