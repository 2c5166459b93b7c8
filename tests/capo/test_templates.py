"""Chat templates: the exact text fed to the model, BOS once, and what is scored."""

import pytest

from capo.config import ConfigError, config_from_dict
from capo.models import byte_level_tokenizer
from capo.scoring import tokenize_pair
from capo.templates import TemplateError, render_pair

PROMPT = "Translate this text from English to German:\nEnglish: Hello.\nGerman:"
CHOSEN, REJECTED = "Hallo.", "Hallo!"

# A Gemma-like template that writes BOS itself, as many models' templates do.
GEMMA_LIKE = (
    "{{ bos_token }}{% for m in messages %}"
    "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
    "{{ m['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


@pytest.fixture
def tok():
    return byte_level_tokenizer()  # BOS "<s>" = 1, EOS "</s>" = 2


def ids(tok, text):
    return list(tok(text, add_special_tokens=False)["input_ids"])


def test_none_template_text_and_ids(tok):
    r = render_pair(tok, PROMPT, CHOSEN, REJECTED, "none")
    assert r.prompt.text == "<s>" + PROMPT
    assert r.chosen.text == " Hallo.</s>" and r.rejected.text == " Hallo!</s>"
    assert list(r.prompt.ids) == [1, *ids(tok, PROMPT)]
    assert list(r.chosen.ids) == [*ids(tok, " Hallo."), 2]
    assert len(r.chosen.ids) == 7 + 1  # 7 bytes " Hallo." + EOS


def test_zephyr_template_text_and_ids(tok):
    r = render_pair(tok, PROMPT, CHOSEN, REJECTED, "zephyr")
    assert r.prompt.text == "<s><|user|>\n" + PROMPT + "</s>\n<|assistant|>\n"
    assert r.chosen.text == "Hallo.</s>" and r.rejected.text == "Hallo!</s>"
    assert list(r.prompt.ids) == [1, *ids(tok, "<|user|>\n" + PROMPT), 2, *ids(tok, "\n<|assistant|>\n")]
    assert list(r.chosen.ids) == [*ids(tok, "Hallo."), 2]
    assert tok.decode(list(r.prompt.ids) + list(r.chosen.ids)) == r.prompt.text + r.chosen.text


def test_model_template_scores_response_and_end_of_turn_only_with_bos_once(tok):
    tok.chat_template = GEMMA_LIKE
    r = render_pair(tok, PROMPT, CHOSEN, REJECTED, "model")
    assert r.prompt.text == "<s><start_of_turn>user\n" + PROMPT + "<end_of_turn>\n<start_of_turn>model\n"
    assert r.chosen.text == "Hallo.<end_of_turn>"  # the newline after the turn is not scored
    assert r.rejected.text == "Hallo!<end_of_turn>"
    assert list(r.prompt.ids).count(tok.bos_token_id) == 1 and r.prompt.ids[0] == tok.bos_token_id
    pair = tokenize_pair(tok, 0, "en-de", PROMPT, CHOSEN, REJECTED, 512, chat_template="model")
    assert pair.prompt_ids.count(tok.bos_token_id) == 1


@pytest.mark.parametrize("template", ["none", "zephyr"])
def test_bos_counted_once_for_the_lab_templates(tok, template):
    pair = tokenize_pair(tok, 0, "en-de", PROMPT, CHOSEN, REJECTED, 512, chat_template=template)
    all_ids = pair.prompt_ids + pair.chosen_ids
    assert all_ids.count(tok.bos_token_id) == 1 and all_ids[0] == tok.bos_token_id


def test_model_template_on_a_tokenizer_without_one_names_the_key(tok):
    with pytest.raises(TemplateError, match=r"^data\.chat_template: .*has no chat template"):
        render_pair(tok, PROMPT, CHOSEN, REJECTED, "model")


def test_unknown_template_refused_at_validation():
    with pytest.raises(ConfigError, match=r"^data\.chat_template: "):
        config_from_dict({"data": {"chat_template": "chatml"}})
