"""The judge against a real chat-completions server on loopback."""

from __future__ import annotations

import pytest

from capo.benchmarks.prompts import mt_bench_single, parse_pairwise, parse_rating, xlsum_pairwise
from capo_lab.judge import (
    NO_JUDGE,
    Comparison,
    Judge,
    JudgeError,
    JudgeSettings,
    MemoryCache,
    combine,
    estimated_requests,
    grade_items,
    judge_pairs,
    make_judge,
    planned_requests,
    win_rate,
)


def settings(url: str, **extra) -> JudgeSettings:
    return JudgeSettings(url=url, model="judge-model", backoff_seconds=0.0, **extra)


def comparisons(outputs: dict[str, tuple[str, str]], language: str = "en") -> list[Comparison]:
    """Both orders of Fig. 11 per item: arm a's summary as Answer (A) first, then as Answer (B)."""
    return [
        Comparison(
            item_id,
            language,
            xlsum_pairwise("English", f"article {item_id}", a, b),
            xlsum_pairwise("English", f"article {item_id}", b, a),
        )
        for item_id, (a, b) in outputs.items()
    ]


def test_a_judge_that_always_says_answer_a_yields_only_ties(chat_server) -> None:
    chat_server.reply = lambda messages: "Answer (A)"
    judge = Judge(settings(chat_server.url), MemoryCache())
    run = judge_pairs(judge, comparisons({"1": ("good", "bad"), "2": ("short", "long"), "3": ("x", "y")}))
    assert [v.outcome for v in run.verdicts] == ["tie", "tie", "tie"]
    rate = win_rate(run.verdicts)
    assert (rate.wins, rate.losses, rate.ties, rate.unjudged) == (0, 0, 3, 0)
    assert rate.win_rate == 0.0 and rate.inconsistency_rate == 1.0  # 3 inconsistent of 3 judged
    assert run.requests == 6 and len(chat_server.bodies) == 6  # both orders of each item


def test_a_consistent_judge_decides_and_the_cache_answers_a_rerun(chat_server) -> None:
    # prefers whichever answer is the summary "good", wherever it is shown
    chat_server.reply = lambda messages: (
        "Comparison: one is better.\nPreferred: 'Answer (A)'"
        if "Answer (A): good" in messages[0]["content"]
        else "Comparison: the other.\nPreferred: Answer (B)"
    )
    cache = MemoryCache()
    run = judge_pairs(
        Judge(settings(chat_server.url), cache), comparisons({"1": ("good", "bad"), "2": ("bad", "good")})
    )
    assert [(v.first, v.second, v.outcome, v.inconsistent) for v in run.verdicts] == [
        ("A", "B", "a", False),
        ("B", "A", "b", False),
    ]
    assert chat_server.bodies[0]["model"] == "judge-model" and chat_server.bodies[0]["temperature"] == 0
    again = Judge(settings(chat_server.url), cache)
    assert estimated_requests([c.first for c in comparisons({"1": ("good", "bad")})], again) == 0
    assert judge_pairs(again, comparisons({"1": ("good", "bad")})).requests == 0  # from the cache
    assert len(chat_server.bodies) == 4


def test_a_malformed_verdict_leaves_the_item_unjudged(chat_server) -> None:
    chat_server.reply = lambda messages: "Both answers are fine, I cannot decide."
    run = judge_pairs(Judge(settings(chat_server.url), MemoryCache()), comparisons({"1": ("a", "b")}))
    assert run.verdicts[0].outcome == "unjudged" and run.verdicts[0].note == "malformed verdict"
    rate = win_rate(run.verdicts)
    assert (rate.judged, rate.win_rate, rate.inconsistency_rate) == (0, None, None)


def test_429_and_500_are_retried_with_backoff(chat_server) -> None:
    chat_server.failures = [429, 500]
    chat_server.reply = lambda messages: "Preferred: TIE"
    waits: list[float] = []
    judge = Judge(
        settings(chat_server.url, retries=2).model_copy(update={"backoff_seconds": 1.5}),
        MemoryCache(),
        waits.append,
    )
    assert judge.ask([{"role": "user", "content": "hi"}]) == "Preferred: TIE"
    assert waits == [1.5, 3.0] and judge.requests == 3  # b, then 2b


@pytest.mark.parametrize("status", [429, 500])
def test_429_or_500_after_every_retry_is_one_line_and_the_rest_unjudged(chat_server, status: int) -> None:
    chat_server.failures = [status] * 10
    judge = Judge(settings(chat_server.url, retries=1), MemoryCache())
    run = judge_pairs(judge, comparisons({"1": ("a", "b"), "2": ("c", "d")}))
    assert run.note == f"the judge at {chat_server.url} answered HTTP {status} 2 times; try again later"
    assert [v.outcome for v in run.verdicts] == ["unjudged", "unjudged"]


def test_a_refused_request_is_not_retried_and_is_one_line(chat_server) -> None:
    chat_server.failures = [401]
    judge = Judge(settings(chat_server.url), MemoryCache())
    with pytest.raises(JudgeError) as err:
        judge.ask([{"role": "user", "content": "hi"}])
    assert str(err.value) == (
        f"the judge at {chat_server.url} refused the request with HTTP 401 (model judge-model); "
        "is the key in OPENAI_API_KEY right?"
    )
    assert judge.requests == 1


def test_an_unreachable_judge_is_one_line() -> None:
    judge = Judge(settings("http://127.0.0.1:9/v1", retries=1), MemoryCache())
    with pytest.raises(JudgeError) as err:
        judge.ask([{"role": "user", "content": "hi"}])
    assert (
        str(err.value)
        == "cannot reach the judge at http://127.0.0.1:9/v1 (APIConnectionError, 2 tries); is it running?"
    )


def test_max_requests_bounds_a_run_and_what_was_judged_is_kept(chat_server) -> None:
    chat_server.reply = lambda messages: "Preferred: Answer (A)"
    run = judge_pairs(
        Judge(settings(chat_server.url, max_requests=3), MemoryCache()),
        comparisons({"1": ("a", "b"), "2": ("c", "d")}),
    )
    # item 1 took requests 1 and 2; item 2's second order would be request 4
    assert [v.outcome for v in run.verdicts] == ["tie", "unjudged"]
    assert run.note.startswith("judge.max_requests (3) reached") and len(chat_server.bodies) == 3


def test_mt_bench_ratings_per_turn_and_their_mean(chat_server) -> None:
    ratings = iter(["Good. Rating: [[8]]", "Weaker. Rating: [[5]]", "no rating here", "Rating: [[9]]"])
    chat_server.reply = lambda messages: next(ratings)
    questions, answers = ("Q1", "Q2"), ("A1", "A2")
    asks = [
        (i, "de", [mt_bench_single(t, questions, answers, "writing") for t in (1, 2)]) for i in ("81", "82")
    ]
    # item 82's prompts equal item 81's: the cache answers them, so the server is asked twice only
    run = grade_items(Judge(settings(chat_server.url), MemoryCache()), asks)
    assert [g.ratings for g in run.grades] == [(8.0, 5.0), (8.0, 5.0)]
    assert run.grades[0].score == (8 + 5) / 2 and len(chat_server.bodies) == 2
    other = [("83", "de", [mt_bench_single(t, ("Q3", "Q4"), answers, "writing") for t in (1, 2)])]
    graded = grade_items(Judge(settings(chat_server.url), MemoryCache()), other).grades[0]
    assert graded.ratings == (None, 9.0) and graded.score is None and graded.note == "malformed rating"


def test_no_judge_configured_means_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAPO_LAB_JUDGE_URL", raising=False)
    monkeypatch.delenv("CAPO_LAB_JUDGE_MODEL", raising=False)
    assert make_judge() is None and "judge-scored parts skipped" in NO_JUDGE


def test_verdict_and_rating_parsing() -> None:
    assert parse_pairwise("Comparison: A is fluent.\nPreferred: Answer (B)") == "B"
    assert parse_pairwise("Comparison: x\n**Preferred:** 'TIE'") == "TIE"
    assert parse_pairwise("Answer (A)") == "A"
    assert parse_pairwise("Preferred: Answer (C)") is None and parse_pairwise("") is None
    assert (
        parse_rating("Rating: [[7.5]]") == 7.5
        and parse_rating("[[11]]") is None
        and parse_rating("7") is None
    )
    assert (
        combine("1", "en", "TIE", "TIE").outcome == "tie"
        and not combine("1", "en", "TIE", "TIE").inconsistent
    )
    assert combine("1", "en", "A", "TIE").inconsistent  # a win one way, a tie the other: a tie


def test_planned_requests_arithmetic() -> None:
    assert planned_requests("xlsum", items=50, arms=3) == 2 * 50 * 2  # two orders, two arms vs the first
    assert planned_requests("mt-bench", items=80, arms=2) == 2 * 80 * 2  # two turns per answer
    assert planned_requests("m-ifeval", items=541, arms=2) == 0


def test_fig_11_prompt_and_fastchat_reference_prompt() -> None:
    prompt = xlsum_pairwise("French", "Le texte.", "Résumé un.", "Résumé deux.")[0]["content"]
    assert prompt.startswith(
        "Which of the following answers is the best one for given instruction in French."
    )
    assert "Instruction: Generate a one sentence summary of the text below in French.\n\nLe texte." in prompt
    assert "Answer (A): Résumé un.\nAnswer (B): Résumé deux." in prompt
    math = mt_bench_single(1, ("2+2?",), ("4",), "math", ("4",))
    assert "[The Start of Reference Answer]\n4\n[The End of Reference Answer]" in math[1]["content"]
    assert "Reference" not in mt_bench_single(1, ("Write",), ("ok",), "writing", ("ref",))[1]["content"]
