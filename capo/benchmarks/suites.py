"""Per-suite scoring of generated outputs: what a benchmark job stores as metrics.

A job (phase 2, on the worker) generates, per item and arm, one answer per user turn, with the
settings in ``GenerationSettings`` stored beside them. These pure functions turn those answers into
per-item records and metrics named ``benchmark/{suite}/{metric}`` (overall) and
``benchmark/{suite}/{metric}/{language}``, like a translation evaluation's ``{split}_translation/…``.

- m-ifeval: ``prompt_strict``, ``prompt_loose``, ``instruction_strict``, ``instruction_loose``
  (``capo.benchmarks.ifeval``), ``prompts_scored`` and ``instructions_left_out``;
- xlsum: ``rouge_l`` (mean F1 in [0, 1], ``capo.benchmarks.rouge``); with a judge, ``win_rate``,
  ``tie_rate``, ``inconsistency_rate`` and ``unjudged`` of one arm against another;
- mt-bench: with a judge, ``score`` (mean over items of the two turns' mean rating, 1–10),
  ``score_turn1``, ``score_turn2`` and ``unjudged``.

Keys of answers are (language, item id), as in ``capo.benchmarks.paired``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import mean

from capo.benchmarks.ifeval import IfevalScores, ItemResult, score_item, summarize
from capo.benchmarks.items import BenchmarkItem
from capo.benchmarks.prompts import Messages, mt_bench_single, xlsum_pairwise
from capo.benchmarks.rouge import rouge_l
from capo.languages import language_name

Key = tuple[str, str]


@dataclass(frozen=True)
class GenerationSettings:
    """How answers were generated; stored with every generation. Defaults: the paper's Appendix A
    (at most 1024 new tokens, temperature 0.7). ``template`` is the run's chat template."""

    max_new_tokens: int = 1024
    temperature: float = 0.7
    seed: int = 0
    template: str = ""


# Each suite's decoding as the paper gives it (Appendix A: "All generations are produced using
# identical decoding settings, with a maximum of 1024 generated tokens. Sampling temperature is set
# to 0.7 by default", in its MT-Bench paragraph). XLSum: the paper states nothing of its own, so its
# default applies (0.7, 1024). M-IFEval: the paper is silent too; rule-checked instruction following
# is scored greedily, as IFEval's own evaluation and lm-eval's ifeval task do (do_sample false),
# with the paper's 1024-token limit. Sampling is over the whole vocabulary (no top-k, no top-p).
PAPER_SETTINGS = {
    "mt-bench": GenerationSettings(max_new_tokens=1024, temperature=0.7),
    "xlsum": GenerationSettings(max_new_tokens=1024, temperature=0.7),
    "m-ifeval": GenerationSettings(max_new_tokens=1024, temperature=0.0),
}
SEED_BITS = 31  # stored in a 32-bit signed integer column


def item_seed(job_seed: int, suite: str, language: str, item_id: str, turn: int) -> int:
    """The sampling seed of one answer: sha256 of (job seed, suite, language, item id, turn), first
    31 bits. The arms share it (the adapter and the base draw the same noise for the same turn, which
    makes their difference less noisy), and it does not depend on which other items the job runs."""
    text = f"{job_seed}:{suite}:{language}:{item_id}:{turn}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") >> (32 - SEED_BITS)


def key(item: BenchmarkItem) -> Key:
    return (item.language, item.item_id)


def chat_turns(item: BenchmarkItem, answers: Sequence[str]) -> list[Messages]:
    """The conversation to generate each turn from: turn k sees turns 1..k and the answers before it."""
    conversations = []
    history: Messages = []
    for index, turn in enumerate(item.turns):
        history = history + [{"role": "user", "content": turn}]
        conversations.append(history)
        if index < len(answers):
            history = history + [{"role": "assistant", "content": answers[index]}]
    return conversations


def _named(suite: str, values: Mapping[str, Mapping[str, float | None]]) -> dict[str, float]:
    """{metric: {language or "all": value}} as flat metric names; None values are not metrics."""
    flat = {}
    for metric, by_language in values.items():
        for language, value in by_language.items():
            if value is not None:
                suffix = "" if language == "all" else f"/{language}"
                flat[f"benchmark/{suite}/{metric}{suffix}"] = float(value)
    return flat


def score_mifeval(
    items: Sequence[BenchmarkItem], answers: Mapping[Key, str]
) -> tuple[list[ItemResult], list[IfevalScores]]:
    """Each item's checks on its answer, then each language's accuracies."""
    results = [score_item(item, answers[key(item)]) for item in items if key(item) in answers]
    languages = list(dict.fromkeys(item.language for item in items))
    return results, [summarize(results, language) for language in languages]


def mifeval_metrics(scores: Sequence[IfevalScores]) -> dict[str, float]:
    fields = ("prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose", "prompts_scored")
    values = {name: {s.language: getattr(s, name) for s in scores} for name in fields}
    values["instructions_left_out"] = {s.language: s.instructions - s.instructions_scored for s in scores}
    return _named("m-ifeval", values)


def rouge_scores(items: Sequence[BenchmarkItem], answers: Mapping[Key, str]) -> dict[Key, float]:
    """ROUGE-L F1 of each answered item against its reference summary, tokenised for its language."""
    return {
        key(i): rouge_l(answers[key(i)], i.reference[0], i.language).f1 for i in items if key(i) in answers
    }


def rouge_metrics(scores: Mapping[Key, float]) -> dict[str, float]:
    by_language: dict[str, list[float]] = {}
    for (language, _), value in scores.items():
        by_language.setdefault(language, []).append(value)
    values = {language: mean(v) for language, v in by_language.items()}
    if scores:
        values["all"] = mean(scores.values())
    return _named("xlsum", {"rouge_l": values})


def xlsum_comparison_prompts(item: BenchmarkItem, answer_a: str, answer_b: str) -> tuple[Messages, Messages]:
    """Fig. 11 in both orders: arm a's summary as Answer (A), then arm b's as Answer (A)."""
    name = language_name(item.language)
    return (
        xlsum_pairwise(name, item.source_text, answer_a, answer_b),
        xlsum_pairwise(name, item.source_text, answer_b, answer_a),
    )


def _share(hits: int, total: int) -> float | None:
    return hits / total if total else None


def win_metrics(
    outcomes: Mapping[Key, str], inconsistent: Mapping[Key, bool], against: str
) -> dict[str, float]:
    """Shares of judged items (a win, a tie) and of inconsistent verdicts, per language and overall;
    ``against`` names the other arm in the metric (``win_rate_vs_base``)."""
    names = (f"win_rate_vs_{against}", f"tie_rate_vs_{against}", "inconsistency_rate", "unjudged")
    values: dict[str, dict[str, float | None]] = {name: {} for name in names}
    for language in sorted({language for language, _ in outcomes}) + ["all"]:
        keys = [k for k in outcomes if language == "all" or k[0] == language]
        judged = [k for k in keys if outcomes[k] != "unjudged"]
        values[names[0]][language] = _share(sum(outcomes[k] == "a" for k in judged), len(judged))
        values[names[1]][language] = _share(sum(outcomes[k] == "tie" for k in judged), len(judged))
        values[names[2]][language] = _share(sum(inconsistent.get(k, False) for k in judged), len(judged))
        values[names[3]][language] = len(keys) - len(judged)
    return _named("xlsum", values)


def mt_bench_prompts(item: BenchmarkItem, answers: Sequence[str]) -> list[Messages]:
    """FastChat's single grading prompt for each turn answered."""
    turns = range(1, min(len(item.turns), len(answers)) + 1)
    return [mt_bench_single(t, item.turns, answers, item.category, item.reference) for t in turns]


def mt_bench_metrics(ratings: Mapping[Key, Sequence[float | None]]) -> dict[str, float]:
    """Per language and overall: mean turn-1 and turn-2 ratings and the mean of items' two-turn means,
    over items whose every turn was rated; ``unjudged`` counts the others."""
    languages = sorted({language for language, _ in ratings}) + ["all"]
    values: dict[str, dict[str, float | None]] = {
        "score": {},
        "score_turn1": {},
        "score_turn2": {},
        "unjudged": {},
    }
    for language in languages:
        keys = [k for k in ratings if language == "all" or k[0] == language]
        rated = [ratings[k] for k in keys if ratings[k] and all(r is not None for r in ratings[k])]
        values["score"][language] = mean(mean(r) for r in rated) if rated else None
        values["score_turn1"][language] = mean(r[0] for r in rated) if rated else None
        second = [r[1] for r in rated if len(r) > 1]
        values["score_turn2"][language] = mean(second) if second else None
        values["unjudged"][language] = len(keys) - len(rated)
    return _named("mt-bench", values)
