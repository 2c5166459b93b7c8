"""How a preference pair becomes model input: ``data.chat_template`` applied in one place.

Scoring, rendering (``capo-lab data render``) and the trainer all call
``render_pair``, so they see the same text and the same token ids.

Templates (``<bos>`` / ``<eos>`` stand for the tokenizer's own BOS and EOS tokens):

``none``   prompt   = ``<bos>{prompt}``
           response = ``{separator}{response}<eos>``
``zephyr`` prompt   = ``<bos><|user|>\\n{prompt}<eos>\\n<|assistant|>\\n``
           response = ``{response}<eos>``
           (Zephyr's format, Tunstall et al. 2024, as in HuggingFaceH4/zephyr-7b-beta's
           chat template; the paper formats every pair so, §3.1. The turn markers are
           plain text, tokenised as the model's tokenizer splits them.)
``model``  the tokenizer's own ``chat_template``: the prompt is the user turn plus the
           generation prompt; the response is the assistant's text up to and including
           its end-of-turn token (white space after it is not scored).

Only response tokens (and their end-of-turn token) are scored. BOS is never doubled:
it is added only when the rendered prompt does not already begin with it (a model's
template often writes it itself; see axolotl#1616 for the trap).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from capo.errors import UserError

ChatTemplate = Literal["none", "model", "zephyr"]
CHAT_TEMPLATES: tuple[str, ...] = ("none", "model", "zephyr")

ZEPHYR_USER = "<|user|>\n"
ZEPHYR_ASSISTANT = "\n<|assistant|>\n"


class TemplateError(UserError):
    """A template that cannot be applied with this tokenizer; the message names the key."""


@dataclass(frozen=True)
class Segment:
    """A piece of model input: the text as fed (special tokens written out) and its token ids."""

    text: str
    ids: tuple[int, ...]


@dataclass(frozen=True)
class RenderedPair:
    prompt: Segment
    chosen: Segment
    rejected: Segment


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def check_template(tokenizer, template: str, model_name: str) -> None:
    """Refuse an unknown template, or ``model`` on a tokenizer that has none."""
    if template not in CHAT_TEMPLATES:
        raise TemplateError(
            f"data.chat_template: unknown template {template!r}; choose from {', '.join(CHAT_TEMPLATES)}"
        )
    if template == "model" and not has_chat_template(tokenizer):
        raise TemplateError(
            f"data.chat_template: model {model_name!r} has no chat template of its own; "
            "use data.chat_template=zephyr or none"
        )


def render_pair(
    tokenizer, prompt: str, chosen: str, rejected: str, template: str = "none", separator: str = " "
) -> RenderedPair:
    """The pair as the trainer feeds it: prompt, chosen and rejected segments."""
    check_template(tokenizer, template, getattr(tokenizer, "name_or_path", "") or "this model")
    if template == "model":
        return _render_with_model_template(tokenizer, prompt, chosen, rejected)
    if template == "zephyr":
        eos = _special(tokenizer, "eos")
        head = _join(_text(tokenizer, ZEPHYR_USER + prompt), eos, _text(tokenizer, ZEPHYR_ASSISTANT))
        return RenderedPair(
            _with_bos(tokenizer, head), _response(tokenizer, chosen), _response(tokenizer, rejected)
        )
    return RenderedPair(
        _with_bos(tokenizer, _text(tokenizer, prompt)),
        _response(tokenizer, separator + chosen),
        _response(tokenizer, separator + rejected),
    )


def _text(tokenizer, text: str) -> Segment:
    return Segment(text, tuple(tokenizer(text, add_special_tokens=False)["input_ids"]))


def _special(tokenizer, which: Literal["bos", "eos"]) -> Segment:
    token_id = getattr(tokenizer, f"{which}_token_id")
    if token_id is None:
        return Segment("", ())
    return Segment(getattr(tokenizer, f"{which}_token"), (token_id,))


def _join(*segments: Segment) -> Segment:
    return Segment("".join(s.text for s in segments), tuple(i for s in segments for i in s.ids))


def _with_bos(tokenizer, prompt: Segment) -> Segment:
    bos = _special(tokenizer, "bos")
    if not bos.ids or prompt.ids[:1] == bos.ids:
        return prompt
    return _join(bos, prompt)


def _response(tokenizer, text: str) -> Segment:
    return _join(_text(tokenizer, text), _special(tokenizer, "eos"))


def _render_with_model_template(tokenizer, prompt: str, chosen: str, rejected: str) -> RenderedPair:
    user = [{"role": "user", "content": prompt}]
    head = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    splits = [_split_assistant_turn(tokenizer, user, head, text) for text in (chosen, rejected)]
    if splits[0][0] != splits[1][0]:
        raise TemplateError(
            "data.chat_template: the model's template renders chosen and rejected turns differently"
        )
    lead = splits[0][0]
    return RenderedPair(
        _with_bos(tokenizer, _text(tokenizer, head + lead)),
        _text(tokenizer, splits[0][1]),
        _text(tokenizer, splits[1][1]),
    )


def _split_assistant_turn(tokenizer, user: list[dict], head: str, text: str) -> tuple[str, str]:
    """(what the template writes before the response, response + end-of-turn) for one assistant turn."""
    full = tokenizer.apply_chat_template(
        [*user, {"role": "assistant", "content": text}], tokenize=False, add_generation_prompt=False
    )
    if not full.startswith(head):
        raise TemplateError(
            "data.chat_template: the model's template rewrites the prompt in an assistant turn"
        )
    turn = full[len(head) :]
    start = turn.find(text.strip())
    if start < 0:
        raise TemplateError("data.chat_template: the model's template does not keep the response text")
    end = start + len(text.strip())
    return turn[:start], turn[start:end] + turn[end:].rstrip()
