"""The benchmark judge: any OpenAI-compatible chat-completions server (OpenAI, vLLM, llama.cpp).

Settings (``CAPO_LAB_JUDGE_``…): ``URL`` (the API base, e.g. ``http://127.0.0.1:8000/v1``), ``MODEL``,
``API_KEY_ENV`` (the variable holding the key, default ``OPENAI_API_KEY``; a local server needs none),
``MAX_REQUESTS`` (a job's budget of HTTP requests, retries included), ``RETRIES`` and
``BACKOFF_SECONDS`` (429 and 5xx replies and broken connections are retried after b, 2b, 4b… s).
Without a URL and a model there is no judge: judge-scored parts are skipped with ``NO_JUDGE``.

Replies are cached by prompt hash (``prompt_key``: sha256 of the model, messages and sampling
settings) through ``JudgeCache``; a rerun asks only what is not cached. Requests are sent at
temperature 0 with FastChat's 2048-token limit.

Pairwise (XLSum, paper Fig. 11): each comparison is asked in both orders. Mapped back to the arms,
two agreeing verdicts are the outcome; two that disagree are a tie and count as *inconsistent*; a
malformed verdict in either order leaves the item *unjudged*, never a win or a loss. Single grading
(MT-Bench): one 1–10 rating per turn, the item's score is their mean.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic_settings import BaseSettings, SettingsConfigDict

from capo.benchmarks.prompts import Messages, parse_pairwise, parse_rating
from capo_lab.database import Database
from capo_lab.errors import LabError
from storage import queries, writes

NO_JUDGE = "no judge configured (set CAPO_LAB_JUDGE_URL and CAPO_LAB_JUDGE_MODEL); judge-scored parts skipped"
MAX_TOKENS = 2048


class JudgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAPO_LAB_JUDGE_", extra="ignore")

    url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_requests: int = 2000
    retries: int = 4
    backoff_seconds: float = 2.0
    timeout_seconds: float = 120.0

    @property
    def configured(self) -> bool:
        return bool(self.url and self.model)


class JudgeError(LabError):
    """The judge cannot answer now (unreachable, 429/5xx after retries, budget spent): one line."""


class JudgeCache(Protocol):
    """Judge replies by prompt key: ``MemoryCache``, or ``StoredCache`` on the lab's database."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, model: str, messages: Messages, reply: str) -> None: ...


@dataclass
class MemoryCache:
    replies: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        return self.replies.get(key)

    def put(self, key: str, model: str, messages: Messages, reply: str) -> None:
        self.replies[key] = reply


@dataclass(frozen=True)
class StoredCache:
    """``JudgeCache`` on the lab's database (``judge_replies``): a rerun, another job or another worker
    asks only what no one has asked yet; a reply stored first by someone else is kept."""

    db: Database

    def get(self, key: str) -> str | None:
        with self.db.read() as session:
            return queries.judge_reply(session, key)

    def put(self, key: str, model: str, messages: Messages, reply: str) -> None:
        with self.db.write() as session:
            writes.add_judge_reply(session, key, model, messages, reply)


def prompt_key(model: str, messages: Messages) -> str:
    """sha256 of the canonical JSON of (model, messages, temperature 0, max tokens)."""
    payload = {"model": model, "messages": messages, "temperature": 0, "max_tokens": MAX_TOKENS}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass
class Judge:
    """A configured judge with its cache; ``requests`` counts HTTP requests sent (retries included)."""

    settings: JudgeSettings
    cache: JudgeCache
    sleep: Callable[[float], None] = time.sleep
    requests: int = 0

    def __post_init__(self) -> None:
        import openai

        key = os.environ.get(self.settings.api_key_env) or "not-needed"
        self._client = openai.OpenAI(
            base_url=self.settings.url, api_key=key, max_retries=0, timeout=self.settings.timeout_seconds
        )

    def ask(self, messages: Messages) -> str:
        """The judge's reply to ``messages``: from the cache, else from the server (then cached)."""
        key = prompt_key(self.settings.model, messages)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        reply = self._request(messages)
        self.cache.put(key, self.settings.model, messages, reply)
        return reply

    def _request(self, messages: Messages) -> str:
        import openai

        for attempt in range(self.settings.retries + 1):
            if self.requests >= self.settings.max_requests:
                raise JudgeError(
                    f"judge.max_requests ({self.settings.max_requests}) reached; the rest is unjudged. "
                    "Raise CAPO_LAB_JUDGE_MAX_REQUESTS and rerun: judged items come from the cache"
                )
            self.requests += 1
            try:
                return self._complete(messages)
            except (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError) as err:
                last = err
                if attempt < self.settings.retries:
                    self.sleep(self.settings.backoff_seconds * 2**attempt)
            except openai.APIStatusError as err:
                raise JudgeError(_refused(self.settings, err.status_code)) from None
        raise JudgeError(_give_up(self.settings, last)) from None

    def _complete(self, messages: Messages) -> str:
        response = self._client.chat.completions.create(
            model=self.settings.model, messages=messages, temperature=0, max_tokens=MAX_TOKENS
        )
        return response.choices[0].message.content or ""


def _refused(settings: JudgeSettings, status: int) -> str:
    hint = f"; is the key in {settings.api_key_env} right?" if status in (401, 403) else ""
    return (
        f"the judge at {settings.url} refused the request with HTTP {status} (model {settings.model}){hint}"
    )


def _give_up(settings: JudgeSettings, err: Exception) -> str:
    tries = settings.retries + 1
    status = getattr(err, "status_code", None)
    if status is None:
        return (
            f"cannot reach the judge at {settings.url} ({type(err).__name__}, {tries} tries); is it running?"
        )
    return f"the judge at {settings.url} answered HTTP {status} {tries} times; try again later"


def make_judge(settings: JudgeSettings | None = None, cache: JudgeCache | None = None) -> Judge | None:
    """The configured judge, or None (then report ``NO_JUDGE``)."""
    settings = settings or JudgeSettings()
    return Judge(settings, cache if cache is not None else MemoryCache()) if settings.configured else None


@dataclass(frozen=True)
class PairVerdict:
    """One item judged in both orders. ``first`` is the verdict with arm a shown as Answer (A), ``second``
    with arm b shown as Answer (A); ``outcome`` is ``a``, ``b``, ``tie`` or ``unjudged``."""

    item_id: str
    language: str
    first: str | None
    second: str | None
    outcome: str
    inconsistent: bool = False
    note: str = ""


def combine(item_id: str, language: str, first: str | None, second: str | None) -> PairVerdict:
    """Both orders to one outcome: the arms each verdict picks (first: A→a; second: A→b) must agree;
    disagreeing is a tie and inconsistent; a malformed verdict (None) leaves the item unjudged."""
    if first is None or second is None:
        return PairVerdict(item_id, language, first, second, "unjudged", note="malformed verdict")
    picks = ({"A": "a", "B": "b", "TIE": "tie"}[first], {"A": "b", "B": "a", "TIE": "tie"}[second])
    if picks[0] != picks[1]:
        return PairVerdict(item_id, language, first, second, "tie", inconsistent=True)
    return PairVerdict(item_id, language, first, second, picks[0])


@dataclass(frozen=True)
class Comparison:
    """One item to judge pairwise: the messages of each order (built with ``prompts.xlsum_pairwise``)."""

    item_id: str
    language: str
    first: Messages
    second: Messages


@dataclass(frozen=True)
class JudgeRun:
    verdicts: tuple[PairVerdict, ...]
    note: str = ""  # why the judge stopped early, one line ("" when it did not)
    requests: int = 0


def judge_pairs(judge: Judge, comparisons: Sequence[Comparison]) -> JudgeRun:
    """Each comparison in both orders; when the judge fails, the rest is unjudged with its one line."""
    verdicts: list[PairVerdict] = []
    for index, comparison in enumerate(comparisons):
        try:
            first = parse_pairwise(judge.ask(comparison.first))
            second = parse_pairwise(judge.ask(comparison.second))
        except JudgeError as err:
            rest = [
                PairVerdict(c.item_id, c.language, None, None, "unjudged", note=str(err))
                for c in comparisons[index:]
            ]
            return JudgeRun(tuple(verdicts + rest), str(err), judge.requests)
        verdicts.append(combine(comparison.item_id, comparison.language, first, second))
    return JudgeRun(tuple(verdicts), "", judge.requests)


@dataclass(frozen=True)
class WinRate:
    """Outcomes over judged items; rates are shares of judged items (None when none was judged)."""

    language: str
    wins: int
    losses: int
    ties: int
    unjudged: int
    inconsistent: int

    @property
    def judged(self) -> int:
        return self.wins + self.losses + self.ties

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.judged if self.judged else None

    @property
    def inconsistency_rate(self) -> float | None:
        return self.inconsistent / self.judged if self.judged else None


def win_rate(verdicts: Sequence[PairVerdict], language: str | None = None) -> WinRate:
    """Arm a's wins, losses and ties against arm b over ``language``'s verdicts (all when None)."""
    mine = [v for v in verdicts if language is None or v.language == language]
    count = [v.outcome for v in mine].count
    return WinRate(
        language or "all",
        count("a"),
        count("b"),
        count("tie"),
        count("unjudged"),
        sum(v.inconsistent for v in mine),
    )


@dataclass(frozen=True)
class TurnGrades:
    """MT-Bench single grades of one item: a rating per turn (None: malformed or not judged)."""

    item_id: str
    language: str
    ratings: tuple[float | None, ...]
    note: str = ""

    @property
    def score(self) -> float | None:
        """The mean of the turns' ratings (the paper averages the two); None if any is missing."""
        if not self.ratings or any(r is None for r in self.ratings):
            return None
        return sum(self.ratings) / len(self.ratings)


def grade_turns(judge: Judge, item_id: str, language: str, prompts: Sequence[Messages]) -> TurnGrades:
    """One rating per turn prompt (``prompts.mt_bench_single``); a ``JudgeError`` propagates."""
    ratings = tuple(parse_rating(judge.ask(messages)) for messages in prompts)
    note = "malformed rating" if any(r is None for r in ratings) else ""
    return TurnGrades(item_id, language, ratings, note)


@dataclass(frozen=True)
class GradeRun:
    grades: tuple[TurnGrades, ...]
    note: str = ""  # why the judge stopped early, one line
    requests: int = 0


def grade_items(judge: Judge, asks: Sequence[tuple[str, str, Sequence[Messages]]]) -> GradeRun:
    """(item id, language, turn prompts) each graded; when the judge fails, the rest is ungraded."""
    grades: list[TurnGrades] = []
    for index, (item_id, language, prompts) in enumerate(asks):
        try:
            grades.append(grade_turns(judge, item_id, language, prompts))
        except JudgeError as err:
            rest = [TurnGrades(i, lang, (None,) * len(p), str(err)) for i, lang, p in asks[index:]]
            return GradeRun(tuple(grades + rest), str(err), judge.requests)
    return GradeRun(tuple(grades), "", judge.requests)


def estimated_requests(prompts: Sequence[Messages], judge: Judge) -> int:
    """Requests a job would send: its distinct prompts not already in the cache (retries not counted)."""
    keys = {prompt_key(judge.settings.model, messages) for messages in prompts}
    return sum(judge.cache.get(key) is None for key in keys)


def planned_requests(suite: str, items: int, arms: int, turns: int = 2) -> int:
    """Before generating: XLSum 2 orders × items × arm pairs (each arm against the first: arms − 1);
    MT-Bench turns × items × arms; M-IFEval 0."""
    if suite == "xlsum":
        return 2 * items * max(arms - 1, 0)
    if suite == "mt-bench":
        return turns * items * arms
    return 0
