"""Benchmark answers at the paper's decoding: each suite's temperature, a seed per answer derived from
the job's seed and the item (the same for both arms), stored with the answer, and reproducible."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from capo.benchmarks.items import BenchmarkItem
from capo.benchmarks.render import stop_strings
from capo.benchmarks.suites import PAPER_SETTINGS, SEED_BITS, item_seed
from capo.config import LoraConfig
from capo.models import add_lora, tiny_random_llama
from capo_lab.benchmarks import check_temperature
from capo_lab.errors import LabError
from storage.records import BenchmarkRecord
from worker.benchmark import Answerer


def test_each_suite_decodes_as_the_paper_says() -> None:
    assert (PAPER_SETTINGS["mt-bench"].temperature, PAPER_SETTINGS["mt-bench"].max_new_tokens) == (0.7, 1024)
    assert PAPER_SETTINGS["xlsum"].temperature == 0.7  # the paper's default; it names none for XLSum
    assert PAPER_SETTINGS["m-ifeval"].temperature == 0.0  # IFEval's greedy protocol; the paper is silent
    assert check_temperature("mt-bench", None) == 0.7 and check_temperature("m-ifeval", None) == 0.0
    assert check_temperature("xlsum", 0.3) == 0.3


@pytest.mark.parametrize("bad", [-0.1, 2.5, math.nan, math.inf])
def test_a_temperature_out_of_range_is_one_line(bad: float) -> None:
    with pytest.raises(LabError) as refused:
        check_temperature("xlsum", bad)
    assert str(refused.value).startswith("--temperature must be between 0 (greedy) and 2")
    assert "\n" not in str(refused.value)


def test_an_answers_seed_comes_from_the_job_seed_item_and_turn() -> None:
    seed = item_seed(0, "xlsum", "en", "e1", 1)
    assert seed == item_seed(0, "xlsum", "en", "e1", 1)  # deterministic: hashlib, not hash()
    others = {item_seed(1, "xlsum", "en", "e1", 1), item_seed(0, "xlsum", "zh", "e1", 1),
              item_seed(0, "xlsum", "en", "e2", 1), item_seed(0, "xlsum", "en", "e1", 2)}  # fmt: skip
    assert seed not in others and len(others) == 4
    assert 0 <= seed < 2**SEED_BITS  # fits the 32-bit signed seed column


def test_a_zephyr_answer_ends_where_a_turn_marker_begins_a_line() -> None:
    from capo.generate import _cut

    tok = tiny_random_llama().tokenizer  # byte level: one token per byte
    for text in ("Fares are data.\n<|admin|>\nMore", "Fares are data.<|user|>More"):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        made = _cut(tok, ids, [tok.eos_token_id], len(ids), stop_strings("zephyr"))
        assert (made.text, made.n_tokens, made.truncated) == (
            "Fares are data.",
            len("Fares are data."),
            False,
        )
    assert stop_strings("none") == stop_strings("model") == ()  # they end on tokens


def _job(seed: int = 0, temperature: float = 0.7) -> BenchmarkRecord:
    return BenchmarkRecord(
        id=1, run_id=1, step="last", suite="mt-bench", languages=("en",), limit=None, seed=seed, base=True,
        max_new_tokens=6, temperature=temperature, template="zephyr", judge_requests=0, note=None,
        status="running", done=0, total=1, evaluated_step=None, error=None, created_at=datetime.now(UTC),
    )  # fmt: skip


ITEM = BenchmarkItem("mt-bench", "en", "81", ("Write a haiku.", "Now in French."), category="writing")


def test_answers_are_sampled_reproducibly_with_the_seed_stored_and_shared_by_the_arms() -> None:
    tiny = tiny_random_llama()
    model = add_lora(tiny.model, LoraConfig())
    answerer = Answerer(model, tiny.tokenizer, _job(), " ")
    assert (
        answerer.stop_strings == stop_strings("zephyr") == ("<|user|>", "<|assistant|>", "<|system|>", "\n<|")
    )
    first = answerer.answer(ITEM, "adapter")
    assert answerer.answer(ITEM, "adapter") == first  # same seed, same text
    assert [r["seed"] for r in first] == [item_seed(0, "mt-bench", "en", "81", t) for t in (1, 2)]
    assert {(r["temperature"], r["max_new_tokens"], r["template"]) for r in first} == {(0.7, 6, "zephyr")}
    base = answerer.answer(ITEM, "base")
    assert [r["seed"] for r in base] == [r["seed"] for r in first]  # common seeds for the two arms
    reseeded = Answerer(model, tiny.tokenizer, _job(seed=7), " ").answer(ITEM, "adapter")
    assert [r["output"] for r in reseeded] != [r["output"] for r in first]
    greedy = [Answerer(model, tiny.tokenizer, _job(seed=s, temperature=0.0), " ").answer(ITEM, "adapter")
              for s in (0, 7)]  # fmt: skip
    assert [r["output"] for r in greedy[0]] == [r["output"] for r in greedy[1]]  # greedy ignores the seed
