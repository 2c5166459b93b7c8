"""M-IFEval scoring: each instruction checked strict and loose, then accuracies per language.

Who checks an instruction ``{lang}:{group}:{name}``:

1. ``capo.benchmarks.ifeval_checks.LOCAL_CHECKS``: the language-specific ones no package provides;
2. lm-eval's IFEval registry (``lm_eval.tasks.ifeval.instructions_registry``, Google's reference code):
   every English id, and for es/fr/ja the ids in ``LM_EVAL_SHARED`` whose rule does not depend on the
   language (markdown shapes, keywords as substrings, ``***`` paragraphs…). Their localised relation
   words are translated (``al menos``/``au moins``/``以上`` → ``at least``; ``moins de``/``未満`` →
   ``less than``; ``como máximo`` N → ``less than`` N + 1, the same for whole counts);
3. anything else is **unsupported**: reported by id, and left out of the accuracies, never guessed.

Strict (IFEval, Zhou et al. 2023): the response is non-empty and the check passes. Loose: the check
passes on any of 8 variants: the response, it without its first line, without its last line, without
both, and each of those four with every ``*`` removed. An instruction whose check cannot run here
(lm-eval's sentence and capital-word counts need nltk's ``punkt_tab`` data, a download) is
**unavailable**, and one whose kwargs the check does not know (lm-eval's language table lacks ``zh``)
is unsupported; both are reported the same way.

Instruction-level accuracy = passed / checked instructions; prompt-level = prompts whose every
instruction passed / prompts whose every instruction was checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from capo.benchmarks.ifeval_checks import LOCAL_CHECKS
from capo.benchmarks.items import BenchmarkItem

_AGNOSTIC = (
    "keywords:existence",
    "keywords:frequency",
    "language:response_language",
    "length_constraints:number_paragraphs",
    "detectable_content:number_placeholders",
    "detectable_content:postscript",
    "detectable_format:number_bullet_lists",
    "detectable_format:number_highlighted_sections",
    "detectable_format:json_format",
    "detectable_format:title",
    "combination:two_responses",
    "combination:repeat_prompt",
    "startend:end_checker",
)
_SPACED = (
    "keywords:forbidden_words",
    "keywords:letter_frequency",
    "length_constraints:number_words",
    "length_constraints:number_sentences",
    "length_constraints:nth_paragraph_first_word",
    "detectable_format:multiple_sections",
    "punctuation:no_comma",
    "startend:quotation",
    "change_case:capital_word_frequency",
)
LM_EVAL_SHARED = {"es": _AGNOSTIC + _SPACED, "fr": _AGNOSTIC + _SPACED, "ja": _AGNOSTIC}
_RELATIONS = {"al menos": "at least", "au moins": "at least", "以上": "at least", "moins de": "less than"}
_RELATIONS |= {"未満": "less than"}
_COUNT_OF = {"relation": None, "let_relation": "let_frequency", "capital_relation": "capital_frequency"}
NO_PUNKT = "nltk's punkt_tab data is not installed; run `python -m nltk.downloader punkt_tab`"
Checker = Callable[[str, dict[str, Any], str], bool]


@dataclass(frozen=True)
class InstructionResult:
    instruction_id: str
    status: str  # "checked", "unsupported" or "unavailable"
    strict: bool | None = None
    loose: bool | None = None
    note: str = ""


@dataclass(frozen=True)
class ItemResult:
    item_id: str
    language: str
    instructions: tuple[InstructionResult, ...]

    @property
    def complete(self) -> bool:
        return all(r.status == "checked" for r in self.instructions)

    @property
    def strict(self) -> bool | None:
        return all(r.strict for r in self.instructions) if self.complete else None

    @property
    def loose(self) -> bool | None:
        return all(r.loose for r in self.instructions) if self.complete else None


@cache
def _lm_eval_registry() -> dict[str, type]:
    """lm-eval's IFEval registry; imported on first use (it loads nltk and langdetect)."""
    from lm_eval.tasks.ifeval.instructions_registry import INSTRUCTION_DICT

    return dict(INSTRUCTION_DICT)


def _english_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Localised relation words in English; "como máximo" N (≤ N) as "less than" N + 1."""
    out = dict(kwargs)
    for key, count_key in _COUNT_OF.items():
        value = out.get(key)
        if value == "como máximo":
            count_key = count_key or next(k for k, v in out.items() if isinstance(v, int) and k != key)
            out[key], out[count_key] = "less than", out[count_key] + 1
        elif value in _RELATIONS:
            out[key] = _RELATIONS[value]
    return out


def _lm_eval_checker(short_id: str) -> Checker:
    cls = _lm_eval_registry()[short_id]

    def check(response: str, kwargs: dict[str, Any], prompt: str) -> bool:
        instruction = cls(short_id)
        accepted = set(instruction.get_instruction_args_keys())
        # M-IFEval adds "relation: at least" where IFEval's rule is ≥ already: dropped; other extras
        # raise KeyError, which makes the instruction unsupported
        english = {k: v for k, v in _english_kwargs(kwargs).items() if k in accepted or v != "at least"}
        unknown = sorted(set(english) - accepted)
        if unknown:
            raise KeyError(unknown[0])
        instruction.build_description(**english)
        args = instruction.get_instruction_args()
        if args and "prompt" in args:
            instruction.build_description(prompt=prompt)
        return bool(instruction.check_following(response))

    return check


def checker_for(instruction_id: str) -> Checker | None:
    """Who checks ``instruction_id`` (module docstring), or None when nobody does."""
    if instruction_id in LOCAL_CHECKS:
        local = LOCAL_CHECKS[instruction_id]
        return lambda response, kwargs, prompt: local(response, kwargs)
    language, _, short_id = instruction_id.partition(":")
    if language == "en" or short_id in LM_EVAL_SHARED.get(language, ()):
        return _lm_eval_checker(short_id) if short_id in _lm_eval_registry() else None
    return None


def loose_variants(response: str) -> list[str]:
    """IFEval's 8 loose variants: as is, minus first line, minus last, minus both; each also without ``*``."""
    lines = response.split("\n")
    cut = ["\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    base = [response, *cut]
    return base + [text.replace("*", "") for text in base]


def check_instruction(
    instruction_id: str, kwargs: dict[str, Any], response: str, prompt: str
) -> InstructionResult:
    """Strict and loose verdicts of one instruction on one response."""
    checker = checker_for(instruction_id)
    if checker is None:
        return InstructionResult(instruction_id, "unsupported", note="no check for this id here")
    try:
        strict = bool(response.strip()) and checker(response, kwargs, prompt)
        loose = any(text.strip() and checker(text, kwargs, prompt) for text in loose_variants(response))
    except KeyError as err:  # a kwarg value the check's own table lacks (lm-eval has no "zh" language)
        return InstructionResult(instruction_id, "unsupported", note=f"the check does not know {err}")
    except LookupError:  # nltk's sentence-splitter data is not installed (a download, not a package)
        return InstructionResult(instruction_id, "unavailable", note=NO_PUNKT)
    return InstructionResult(instruction_id, "checked", strict, bool(loose))


def score_item(item: BenchmarkItem, response: str) -> ItemResult:
    """Every instruction of one M-IFEval item checked on ``response``."""
    results = tuple(
        check_instruction(iid, kwargs, response, item.turns[0])
        for iid, kwargs in zip(item.instructions, item.kwargs, strict=True)
    )
    return ItemResult(item.item_id, item.language, results)


@dataclass(frozen=True)
class IfevalScores:
    """One language's accuracies (None when nothing could be scored) and what was left out."""

    language: str
    prompts: int
    prompts_scored: int
    prompt_strict: float | None
    prompt_loose: float | None
    instructions: int
    instructions_scored: int
    instruction_strict: float | None
    instruction_loose: float | None
    left_out: tuple[str, ...]  # instruction ids unsupported or unavailable here


def _share(values: Sequence[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(results: Sequence[ItemResult], language: str) -> IfevalScores:
    """Prompt- and instruction-level accuracy, strict and loose, over ``language``'s results."""
    mine = [r for r in results if r.language == language]
    complete = [r for r in mine if r.complete]
    checked = [i for r in mine for i in r.instructions if i.status == "checked"]
    left_out = sorted({i.instruction_id for r in mine for i in r.instructions if i.status != "checked"})
    return IfevalScores(
        language,
        len(mine),
        len(complete),
        _share([bool(r.strict) for r in complete]),
        _share([bool(r.loose) for r in complete]),
        sum(len(r.instructions) for r in mine),
        len(checked),
        _share([bool(i.strict) for i in checked]),
        _share([bool(i.loose) for i in checked]),
        tuple(left_out),
    )
