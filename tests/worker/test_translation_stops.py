"""Translations end where the template's turn ends, including a turn marker written as text."""

from __future__ import annotations

import capo.generate
from capo.config import config_from_dict
from capo.generate import Generation
from capo.models import tiny_random_llama
from storage.records import PairRecord
from worker.evaluate import translate

PAIR = PairRecord(
    1, 1, "eval", "en-de", 0, "Translate: the cat.", "Die Katze.", "Katze.", "the cat.", None, "t", False
)


def test_a_zephyr_translation_stops_at_the_turn_markers_and_a_plain_one_at_eos_only(monkeypatch) -> None:
    asked: list[tuple[str, ...]] = []

    def recorded(model, tok, prompts, stops, max_new_tokens, batch_size, base=False, on_progress=None, **kw):
        asked.append(tuple(kw["stop_strings"]))
        return [Generation("x", 1, False) for _ in prompts]

    monkeypatch.setattr(capo.generate, "generate", recorded)
    tiny = tiny_random_llama()
    for template in ("zephyr", "none"):
        cfg = config_from_dict(
            {"model": {"name_or_path": "tiny-random-llama"}, "data": {"chat_template": template}}
        )
        translate(cfg, tiny.model, tiny.tokenizer, [PAIR], True, 8, None)
    zephyr, plain = asked[0], asked[2]
    assert asked[0] == asked[1]  # the adapter and the base stop alike
    assert {"<|user|>", "<|assistant|>", "<|system|>"} <= set(zephyr)
    assert plain == ()
