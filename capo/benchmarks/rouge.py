"""ROUGE-L (Lin 2004) for XLSum's nine languages, tokenised per language.

rouge-score's default tokenizer keeps only ``[a-z0-9]``: Chinese, Japanese, Arabic and Ukrainian text
becomes no tokens at all and scores 0. Here:

- **space-delimited languages** (en, vi, ar, uk, tr, fr, es, and any other): case-folded, then the
  maximal runs of Unicode word characters (``\\w+``): whitespace and punctuation separate tokens and are
  dropped. Vietnamese syllables, Arabic and Cyrillic words are tokens; no stemming (rouge-score's
  Porter stemmer is English-only, and the paper names none).
- **zh and ja**: every Han, Hiragana or Katakana character is one token (no segmenter, so no
  segmenter's errors); runs of other word characters inside them (Latin words, digits) are one token
  each; punctuation is dropped.

ROUGE-L of a candidate c against a reference r, with L = |LCS(c, r)| over tokens:
P = L/|c|, R = L/|r|, F = 2PR/(P + R) (0 when L = 0). Scores are in [0, 1].
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

CHARACTER_LANGUAGES = ("zh", "ja")
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u31f0-\u31ff\uff66-\uff9f"
_CJK_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
_WORD = re.compile(r"\w+")


def tokenize(text: str, language: str) -> list[str]:
    """Tokens of ``text`` under ``language``'s rule (see the module docstring)."""
    folded = text.casefold()
    pattern = _CJK_TOKEN if language in CHARACTER_LANGUAGES else _WORD
    return pattern.findall(folded)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, by the row-by-row dynamic programme:
    row[j] = previous[j − 1] + 1 when a[i] = b[j], else max(previous[j], row[j − 1])."""
    previous = [0] * (len(b) + 1)
    for token in a:
        row = [0] * (len(b) + 1)
        for j, other in enumerate(b, 1):
            row[j] = previous[j - 1] + 1 if token == other else max(previous[j], row[j - 1])
        previous = row
    return previous[-1]


@dataclass(frozen=True)
class RougeL:
    precision: float
    recall: float
    f1: float


def rouge_l(candidate: str, reference: str, language: str) -> RougeL:
    """ROUGE-L P, R and F1 of one candidate against one reference, tokenised for ``language``."""
    cand, ref = tokenize(candidate, language), tokenize(reference, language)
    common = lcs_length(cand, ref)
    if common == 0:
        return RougeL(0.0, 0.0, 0.0)
    precision, recall = common / len(cand), common / len(ref)
    return RougeL(precision, recall, 2 * precision * recall / (precision + recall))
