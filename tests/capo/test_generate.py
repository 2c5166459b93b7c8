"""Batched greedy generation: left padding changes nothing, truncation is reported, base disables LoRA."""

import torch

from capo.config import LoraConfig
from capo.generate import generate, left_padded, stop_token_ids
from capo.models import add_lora, tiny_random_llama
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
