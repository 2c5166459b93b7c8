"""Chunked response-only scoring equals the naive full-logits computation."""

import pytest
import torch

from capo.models import tiny_random_llama
from capo.scoring import collate, response_logps, split_token_logps, tokenize_pair

PAIRS = [
    (
        "Translate this text from English to German:\nEnglish: The house is red.\nGerman:",
        "Das Haus ist rot.",
        "Das Haus ist rotes.",
    ),
    ("Translate this text from English to Chinese:\nEnglish: Hello.\nChinese:", "你好。", "您好啊，世界。"),
    ("Short", "a", "a much longer rejected response"),
]


@pytest.fixture(scope="module")
def tiny():
    loaded = tiny_random_llama()
    loaded.model.to(torch.float64)
    return loaded


def naive_logps(model, batch) -> torch.Tensor:
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    logprobs = logits.log_softmax(-1)
    token = (
        logprobs[batch.target_rows, batch.target_cols - 1]
        .gather(-1, batch.input_ids[batch.target_rows, batch.target_cols].unsqueeze(-1))
        .squeeze(-1)
    )
    return torch.zeros(batch.input_ids.shape[0], dtype=token.dtype).index_add(0, batch.target_rows, token)


def batch_of(tiny, max_length: int = 512):
    pairs = [
        tokenize_pair(tiny.tokenizer, i, "en-de", *p, max_length=max_length) for i, p in enumerate(PAIRS)
    ]
    return collate(pairs, tiny.tokenizer.pad_token_id)


@pytest.mark.parametrize("chunk_tokens", [1, 7, 64, None])
def test_chunked_scores_equal_full_logits(tiny, chunk_tokens) -> None:
    batch = batch_of(tiny)
    with torch.no_grad():
        out = response_logps(tiny.model, batch, chunk_tokens=chunk_tokens)
        expected = naive_logps(tiny.model, batch)
    torch.testing.assert_close(torch.cat([out.chosen, out.rejected]).double(), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("frozen_head", [False, True])
def test_gradients_equal_full_logits(tiny, frozen_head, request) -> None:
    batch = batch_of(tiny)
    head_weight = tiny.model.get_output_embeddings().weight
    head_weight.requires_grad_(not frozen_head)
    request.addfinalizer(lambda: head_weight.requires_grad_(True))
    params = [p for p in tiny.model.parameters() if p.requires_grad]
    out = response_logps(tiny.model, batch, chunk_tokens=5)
    grads = torch.autograd.grad((out.chosen - 0.5 * out.rejected).sum(), params)
    expected = naive_logps(tiny.model, batch)
    b = batch.num_pairs
    expected_grads = torch.autograd.grad((expected[:b] - 0.5 * expected[b:]).sum(), params)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)


def test_only_response_tokens_are_counted(tiny) -> None:
    pair = tokenize_pair(tiny.tokenizer, 0, "en-de", "Prompt", "ab", "abc", max_length=64)
    assert pair.prompt_ids[0] == tiny.tokenizer.bos_token_id
    # separator " " + text + EOS, one byte per token
    assert len(pair.chosen_ids) == 4 and len(pair.rejected_ids) == 5
    batch = collate([pair], tiny.tokenizer.pad_token_id)
    assert batch.n_tokens.tolist() == [4, 5]
    with torch.no_grad():
        out = response_logps(tiny.model, batch, per_token=True)
    per_token = split_token_logps(batch, out.token_logps)
    assert [len(t) for t in per_token] == [4, 5]
    assert sum(per_token[0]) == pytest.approx(out.chosen.item(), abs=1e-9)


def test_long_pairs_are_truncated_to_max_length(tiny) -> None:
    pair = tokenize_pair(tiny.tokenizer, 0, "en-de", "p" * 100, "c" * 100, "r" * 50, max_length=60)
    assert pair.truncated
    assert len(pair.prompt_ids) == 30
    assert len(pair.prompt_ids) + len(pair.chosen_ids) <= 60


def test_a_pair_identical_only_after_truncation_is_not_a_tie(tiny) -> None:
    # max_length 40: the prompt keeps its last 40 // 2 = 20 tokens, each response its first
    # 40 − 20 = 20 (one byte a token): " Die Katze sass auf " for both, though the texts differ.
    pair = tokenize_pair(
        tiny.tokenizer,
        0,
        "en-de",
        "Translate: the cat sat on the mat today.",
        "Die Katze sass auf der Matte.",
        "Die Katze sass auf dem Sofa.",
        max_length=40,
    )
    assert pair.truncated and len(pair.chosen_ids) == 20
    assert pair.chosen_ids == pair.rejected_ids
    assert not pair.tie and pair.truncated_identical


def test_a_tie_is_decided_from_the_text_and_a_stored_tie_is_copied(tiny) -> None:
    # "Das  Haus ist rot." and " Das Haus ist rot. " collapse to the same words: a tie, though
    # their tokens differ (one byte a token, and the double space is a token of its own).
    pair = tokenize_pair(tiny.tokenizer, 0, "en-de", "P", "Das  Haus ist rot.", " Das Haus ist rot. ", 64)
    assert pair.tie and not pair.truncated_identical and pair.chosen_ids != pair.rejected_ids
    copied = tokenize_pair(tiny.tokenizer, 0, "en-de", "P", "a", "b", 64, tie=True)
    assert copied.tie  # the pair's stored flag, not recomputed from text or ids
