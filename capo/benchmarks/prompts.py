"""Judge prompts and how their replies are read.

- XLSum pairwise: the paper's Fig. 11 prompt (adapted there from Yang et al. 2025b), word for word
  (straight quotes);
  the verdict is the ``Preferred:`` line (else the reply's last non-empty line): ``Answer (A)``,
  ``Answer (B)`` or ``TIE``; anything else is malformed (``None``), never a win or a loss.
- MT-Bench single-answer grading: FastChat's ``judge_prompts.jsonl`` (``single-v1``,
  ``single-math-v1`` and their ``-multi-turn`` forms); math, reasoning and coding questions with a
  reference answer are graded against it, as FastChat does. The rating is ``[[r]]`` (else ``[r]``)
  with 1 ≤ r ≤ 10; anything else is malformed (``None``).

Each prompt is a list of chat messages ``[{"role": ..., "content": ...}]``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Messages = list[dict[str, str]]

XLSUM_PAIRWISE = """Which of the following answers is the best one for given instruction in [LANGUAGE]. \
A good answer should follow these rules:
1) It should be in [LANGUAGE]
2) It should answer the request in the instruction
3) It should be factually and semantically comprehensible
4) It should be grammatically correct and fluent.

Instruction: Generate a one sentence summary of the text below in [LANGUAGE].

[TEXT]

Answer (A): [SUMMARY_A]
Answer (B): [SUMMARY_B]

FIRST provide a one-sentence comparison of the two answers, explaining which you prefer and why.

SECOND, on a new line, state only 'Answer (A)' or 'Answer (B)' or 'TIE'.

Your response should use the format:
Comparison: <one-sentence comparison and explanation>
Preferred: <'Answer (A)' or 'Answer (B)' or 'TIE'>"""

_GENERAL = (
    "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant "
    "to the user question displayed below. Your evaluation should consider factors such as the helpfulness, "
    "relevance, accuracy, depth, creativity, and level of detail of the response."
)
_MATH = (
    "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant "
    "to the user question displayed below. Your evaluation should consider correctness and helpfulness. "
    "You will be given a reference answer and the assistant's answer."
)
_RATE = (
    "Be as objective as possible. After providing your explanation, you must rate the response on a scale "
    'of 1 to 10 by strictly following this format: "[[rating]]", for example: "Rating: [[5]]".'
)
_BEGIN_GENERAL = "Begin your evaluation by providing a short explanation."
_BEGIN_MATH = (
    "Begin your evaluation by comparing the assistant's answer with the reference answer. "
    "Identify and correct any mistakes."
)
_SECOND_TURN = "You evaluation should focus on the assistant's answer to the second user question."
NEED_REFERENCE = ("math", "reasoning", "coding")


def xlsum_pairwise(language_name: str, text: str, summary_a: str, summary_b: str) -> Messages:
    """Fig. 11 with its placeholders filled, as one user message."""
    prompt = XLSUM_PAIRWISE.replace("[LANGUAGE]", language_name).replace("[TEXT]", text)
    prompt = prompt.replace("[SUMMARY_A]", summary_a).replace("[SUMMARY_B]", summary_b)
    return [{"role": "user", "content": prompt}]


def _first_turn(question: str, answer: str, reference: str | None) -> Messages:
    head = " ".join([_MATH if reference else _GENERAL, _BEGIN_MATH if reference else _BEGIN_GENERAL, _RATE])
    body = f"[Instruction]\n{head}\n\n[Question]\n{question}\n\n"
    if reference:
        body += f"[The Start of Reference Answer]\n{reference}\n[The End of Reference Answer]\n\n"
    body += f"[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
    return [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": body}]


def _conversation(questions: Sequence[str], answers: Sequence[str], who: str, label: str) -> str:
    turns = "".join(f"### User:\n{q}\n\n### {who}:\n{a}\n\n" for q, a in zip(questions, answers, strict=True))
    return f"<|The Start of {label}|>\n\n{turns}<|The End of {label}|>"


def _second_turn(questions: Sequence[str], answers: Sequence[str], references: Sequence[str]) -> Messages:
    system = " ".join(
        [
            _MATH if references else _GENERAL,
            _SECOND_TURN,
            _BEGIN_MATH if references else _BEGIN_GENERAL,
            _RATE,
        ]
    )
    body = ""
    if references:
        body = _conversation(questions, references, "Reference answer", "Reference Answer") + "\n\n\n"
    body += _conversation(questions, answers, "Assistant A", "Assistant A's Conversation with User")
    return [{"role": "system", "content": system + "\n\n"}, {"role": "user", "content": body}]


def mt_bench_single(
    turn: int, questions: Sequence[str], answers: Sequence[str], category: str, references: Sequence[str] = ()
) -> Messages:
    """FastChat's single-answer grading of turn 1 or 2; with references for math/reasoning/coding."""
    refs = tuple(references) if category in NEED_REFERENCE and len(references) >= turn else ()
    if turn == 1:
        return _first_turn(questions[0], answers[0], refs[0] if refs else None)
    return _second_turn(questions[:2], answers[:2], refs[:2])


_PREFERRED = re.compile(r"^\s*\**\s*preferred\s*\**\s*:\s*\**\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_VERDICTS = {"answer (a)": "A", "answer (b)": "B", "tie": "TIE"}


def parse_pairwise(reply: str) -> str | None:
    """``A``, ``B`` or ``TIE`` from a Fig. 11 reply; None when the verdict is missing or unclear."""
    found = _PREFERRED.findall(reply)
    lines = [line for line in reply.splitlines() if line.strip()]
    verdict = found[-1] if found else (lines[-1] if lines else "")
    return _VERDICTS.get(verdict.strip().strip("'\"‘’“”*.`").strip().lower())


def parse_rating(reply: str) -> float | None:
    """FastChat's rule: the first ``[[r]]``, else the first ``[r]``; None outside 1..10 or when absent."""
    match = re.search(r"\[\[(\d+\.?\d*)\]\]", reply) or re.search(r"\[(\d+\.?\d*)\]", reply)
    rating = float(match.group(1)) if match else None
    return rating if rating is not None and 1 <= rating <= 10 else None
