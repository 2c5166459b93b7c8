"""Benchmark items: one frozen record per prompt, parsed from each upstream's own file layout.

Layouts (checked against upstream copies; see ``capo.benchmarks.catalogue``):

- M-IFEval: ``data/{lang}_input_data.jsonl``, one object a line:
  ``{"key": 1, "prompt": "...", "instruction_id_list": ["es:keywords:existence"], "kwargs": [{...}]}``;
- XLSum: ``{language}_XLSum_v2.0.tar.bz2`` holding ``{language}_test.jsonl``, one object a line:
  ``{"id", "url", "title", "summary", "text"}``;
- MT-Bench (FastChat's ``question.jsonl``): ``{"question_id": 81, "category": "writing",
  "turns": ["...", "..."]}``, optionally ``"reference": ["...", "..."]``.

``select`` keeps ``limit`` items per language by a seeded sample, returned in item-id order, so the
same (seed, limit) gives the same items whatever the file order.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from capo.errors import UserError
from capo.languages import language_name

SUITES = ("m-ifeval", "xlsum", "mt-bench")
LANGUAGES = {
    "m-ifeval": ("en", "es", "fr", "ja"),
    "xlsum": ("en", "zh", "vi", "ar", "uk", "tr", "fr", "ja", "es"),
    "mt-bench": ("en", "de", "it", "zh", "fr", "es", "ja"),
}
# The paper's sizes: XLSum 50 articles per language (§3.4), MT-Bench's 80 questions; M-IFEval all.
PAPER_LIMITS = {"m-ifeval": None, "xlsum": 50, "mt-bench": 80}
# XLSum's folder names for our codes (the Hub loader's _LANGUAGES table).
XLSUM_NAMES = {
    "en": "english",
    "zh": "chinese_simplified",
    "vi": "vietnamese",
    "ar": "arabic",
    "uk": "ukrainian",
    "tr": "turkish",
    "fr": "french",
    "ja": "japanese",
    "es": "spanish",
}


class BenchmarkError(UserError):
    """An unknown suite or language, or a benchmark file that is not in its upstream layout."""


@dataclass(frozen=True)
class BenchmarkItem:
    """One prompt of a suite: ``turns`` are the user turns (one, or MT-Bench's two); ``reference`` is
    XLSum's summary or MT-Bench's reference answers; ``instructions`` and ``kwargs`` are M-IFEval's."""

    suite: str
    language: str
    item_id: str
    turns: tuple[str, ...]
    reference: tuple[str, ...] = ()
    instructions: tuple[str, ...] = ()
    kwargs: tuple[dict[str, Any], ...] = field(default=(), hash=False)
    category: str = ""
    source_text: str = ""  # XLSum's article (the judge prompt quotes it)


def check_suite(suite: str) -> str:
    if suite not in SUITES:
        raise BenchmarkError(f"unknown suite {suite!r}; choose from {', '.join(SUITES)}")
    return suite


def check_languages(suite: str, languages: Sequence[str] | None) -> tuple[str, ...]:
    """The languages asked for (all of the suite's when none), each one the suite has."""
    known = LANGUAGES[check_suite(suite)]
    unknown = [code for code in languages or () if code not in known]
    if unknown:
        raise BenchmarkError(f"{suite} has no language {unknown[0]!r}; choose from {', '.join(known)}")
    return tuple(dict.fromkeys(languages)) if languages else known


def _json_lines(text: str, where: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise BenchmarkError(f"{where}: line {number} is not JSON") from None
        if not isinstance(row, dict):
            raise BenchmarkError(f"{where}: line {number} is not a JSON object")
        rows.append(row)
    return rows


def _fields(row: dict[str, Any], names: Iterable[str], where: str) -> None:
    missing = [name for name in names if name not in row]
    if missing:
        raise BenchmarkError(f"{where}: a row lacks {', '.join(missing)} (keys: {', '.join(row)})")


def parse_mifeval(text: str, language: str, where: str = "M-IFEval") -> list[BenchmarkItem]:
    """``{lang}_input_data.jsonl`` rows to items; None-valued kwargs dropped, as IFEval's scorer does."""
    items = []
    for row in _json_lines(text, where):
        _fields(row, ("key", "prompt", "instruction_id_list", "kwargs"), where)
        if len(row["instruction_id_list"]) != len(row["kwargs"]):
            raise BenchmarkError(f"{where}: key {row['key']} has unequal instruction and kwargs lists")
        kwargs = tuple({k: v for k, v in (kw or {}).items() if v is not None} for kw in row["kwargs"])
        items.append(
            BenchmarkItem(
                "m-ifeval",
                language,
                str(row["key"]),
                (row["prompt"],),
                instructions=tuple(row["instruction_id_list"]),
                kwargs=kwargs,
            )
        )
    return items


def xlsum_prompt(language_name: str, text: str) -> str:
    """The generation prompt: the instruction of the paper's Fig. 11, then the article."""
    return f"Generate a one sentence summary of the text below in {language_name}.\n\n{text}"


def parse_xlsum(text: str, language: str, where: str = "XLSum") -> list[BenchmarkItem]:
    """``{language}_test.jsonl`` rows (id, url, title, summary, text) to one-turn summary items."""
    name = language_name(language)
    items = []
    for row in _json_lines(text, where):
        _fields(row, ("id", "summary", "text"), where)
        items.append(
            BenchmarkItem(
                "xlsum",
                language,
                str(row["id"]),
                (xlsum_prompt(name, row["text"]),),
                reference=(row["summary"],),
                category=row.get("title", ""),
                source_text=row["text"],
            )
        )
    return items


def parse_mt_bench(text: str, language: str, where: str = "MT-Bench") -> list[BenchmarkItem]:
    """FastChat ``question.jsonl`` rows (question_id, category, turns[, reference]) to two-turn items."""
    items = []
    for row in _json_lines(text, where):
        _fields(row, ("question_id", "category", "turns"), where)
        if not row["turns"] or not all(isinstance(t, str) for t in row["turns"]):
            raise BenchmarkError(f"{where}: question {row['question_id']} has no text turns")
        reference = tuple(r for r in row.get("reference") or () if isinstance(r, str))
        items.append(
            BenchmarkItem(
                "mt-bench",
                language,
                str(row["question_id"]),
                tuple(row["turns"]),
                reference=reference,
                category=row["category"],
            )
        )
    return items


def _id_key(item: BenchmarkItem) -> tuple[int, str]:
    """Numeric ids in numeric order (``2`` before ``10``), others after, by text."""
    return (0, f"{int(item.item_id):020d}") if item.item_id.isdigit() else (1, item.item_id)


def select(items: Sequence[BenchmarkItem], limit: int | None, seed: int = 0) -> list[BenchmarkItem]:
    """At most ``limit`` items of each (suite, language): a ``random.Random(f"{seed}:{suite}:{language}")``
    sample of the id-sorted items, returned in id order; all of them when ``limit`` is None."""
    if limit is not None and limit < 1:
        raise BenchmarkError(f"--limit must be at least 1, not {limit}")
    groups: dict[tuple[str, str], list[BenchmarkItem]] = {}
    for item in sorted(items, key=_id_key):
        groups.setdefault((item.suite, item.language), []).append(item)
    chosen = []
    for (suite, language), group in groups.items():
        if limit is not None and len(group) > limit:
            picked = set(random.Random(f"{seed}:{suite}:{language}").sample(range(len(group)), limit))
            group = [item for i, item in enumerate(group) if i in picked]
        chosen.extend(group)
    return chosen
