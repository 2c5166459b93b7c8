"""A benchmark conversation as model input, with the run's ``data.chat_template``.

A one-turn conversation renders exactly as ``capo.templates.render_pair`` renders a pair's prompt, so
the model sees a benchmark prompt as it saw its training prompts. Later turns continue it:

``zephyr`` ``<bos><|user|>\\n{u1}<eos>\\n<|assistant|>\\n{a1}<eos>\\n<|user|>\\n{u2}<eos>\\n<|assistant|>\\n``
``none``   ``<bos>{u1}{separator}{a1}<eos>{u2}``
``model``  the tokenizer's own template over the whole conversation, with the generation prompt.
"""

from __future__ import annotations

from capo.benchmarks.prompts import Messages
from capo.templates import (
    ZEPHYR_ASSISTANT,
    ZEPHYR_USER,
    Segment,
    _join,
    _special,
    _text,
    _with_bos,
    check_template,
    render_pair,
)


def _turn(tokenizer, message: dict[str, str], template: str, separator: str) -> Segment:
    eos = _special(tokenizer, "eos")
    if message["role"] == "user":
        if template == "zephyr":
            return _join(
                _text(tokenizer, ZEPHYR_USER + message["content"]), eos, _text(tokenizer, ZEPHYR_ASSISTANT)
            )
        return _text(tokenizer, message["content"])
    if template == "zephyr":
        return _join(_text(tokenizer, message["content"]), eos, _text(tokenizer, "\n"))
    return _join(_text(tokenizer, separator + message["content"]), eos)


def render_conversation(
    tokenizer, messages: Messages, template: str = "none", separator: str = " "
) -> Segment:
    """The prompt to generate the next assistant turn from (``messages`` end with a user turn)."""
    check_template(tokenizer, template, getattr(tokenizer, "name_or_path", "") or "this model")
    if len(messages) == 1:
        return render_pair(tokenizer, messages[0]["content"], "", "", template, separator).prompt
    if template == "model":
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return _with_bos(tokenizer, _text(tokenizer, text))
    return _with_bos(tokenizer, _join(*(_turn(tokenizer, m, template, separator) for m in messages)))


# Zephyr's turn markers are plain text: a model that writes one has ended its answer and begun the
# next turn (a base model does, its end-of-turn <eos> being rare), so generation stops there and the
# marker and all after it are cut from the answer. Besides the three roles, a line that opens with
# "<|" begins a turn too: Gemma 3 270M after a zephyr-template run invents roles ("<|admin|>",
# "<|student-athlete|>") and ran on to the token limit past them. ``none`` and ``model`` end on
# tokens (EOS, or the template's end-of-turn token).
TURN_MARKERS = {"zephyr": ("<|user|>", "<|assistant|>", "<|system|>", "\n<|"), "none": (), "model": ()}


def stop_strings(template: str) -> tuple[str, ...]:
    """The texts that end an answer under ``template`` besides its stop tokens."""
    return TURN_MARKERS.get(template, ())


def end_of_turn_ids(tokenizer, template: str = "none", separator: str = " ") -> tuple[int, ...]:
    """A rendered response's ids, whose last is the end-of-turn token (for ``generate.stop_token_ids``)."""
    return render_pair(tokenizer, "x", "y", "y", template, separator).chosen.ids
