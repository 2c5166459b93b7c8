"""Benchmark conversations as model input: one turn exactly as a training prompt, later turns after it."""

from __future__ import annotations

import pytest

from capo.benchmarks.render import end_of_turn_ids, render_conversation
from capo.models import byte_level_tokenizer
from capo.templates import render_pair
from tests.capo.test_templates import GEMMA_LIKE

TWO_TURNS = [
    {"role": "user", "content": "Write a haiku."},
    {"role": "assistant", "content": "Leaves fall."},
    {"role": "user", "content": "Now in French."},
]


@pytest.fixture
def tok():
    return byte_level_tokenizer()  # BOS "<s>" = 1, EOS "</s>" = 2


@pytest.mark.parametrize("template", ["none", "zephyr"])
def test_one_turn_is_the_training_prompt(tok, template: str) -> None:
    one = render_conversation(tok, TWO_TURNS[:1], template)
    assert one == render_pair(tok, "Write a haiku.", "x", "y", template).prompt


def test_zephyr_two_turns_carry_the_first_answer_and_one_bos(tok) -> None:
    two = render_conversation(tok, TWO_TURNS, "zephyr")
    assert two.text == (
        "<s><|user|>\nWrite a haiku.</s>\n<|assistant|>\nLeaves fall.</s>\n"
        "<|user|>\nNow in French.</s>\n<|assistant|>\n"
    )
    assert list(two.ids).count(1) == 1 and list(two.ids).count(2) == 3  # one BOS; EOS ends each turn


def test_none_two_turns_and_the_model_template(tok) -> None:
    assert (
        render_conversation(tok, TWO_TURNS, "none").text == "<s>Write a haiku. Leaves fall.</s>Now in French."
    )
    tok.chat_template = GEMMA_LIKE
    text = render_conversation(tok, TWO_TURNS, "model").text
    assert text.count("<s>") == 1 and text.endswith(
        "<start_of_turn>user\nNow in French.<end_of_turn>\n<start_of_turn>model\n"
    )
    assert end_of_turn_ids(tok, "none")[-1] == tok.eos_token_id
