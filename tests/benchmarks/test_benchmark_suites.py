"""Each suite end to end on small fixtures in its upstream layout: loopback fetch, items, scores, metrics."""

from __future__ import annotations

import pytest

from capo.benchmarks.paired import compare_verdicts
from capo.benchmarks.suites import (
    chat_turns,
    mifeval_metrics,
    mt_bench_metrics,
    mt_bench_prompts,
    rouge_metrics,
    rouge_scores,
    score_mifeval,
    win_metrics,
    xlsum_comparison_prompts,
)
from capo_lab.benchmark_sources import fetch_benchmark, load_benchmark
from capo_lab.judge import (
    NO_JUDGE,
    Comparison,
    Judge,
    JudgeSettings,
    MemoryCache,
    grade_items,
    judge_pairs,
    make_judge,
)
from capo_lab.settings import Settings
from tests.benchmarks.test_benchmark_sources import jsonl, write, xlsum_archive

MIFEVAL_EN = [
    {
        "key": 1001,
        "prompt": "Write about rain. Do not use any commas.",
        "instruction_id_list": ["en:punctuation:no_comma"],
        "kwargs": [{}],
    },
    {
        "key": 1002,
        "prompt": "Give a title in double angular brackets and end with 'Is there anything else?'",
        "instruction_id_list": ["en:detectable_format:title", "en:startend:end_checker"],
        "kwargs": [{}, {"end_phrase": "Is there anything else?"}],
    },
]
MIFEVAL_JA = [
    {
        "key": 1,
        "prompt": "ひらがなだけで答えてください。",
        "instruction_id_list": ["ja:letters:hiragana_only"],
        "kwargs": [{}],
    },
]
XLSUM_EN = [
    {
        "id": "e1",
        "url": "u",
        "title": "t",
        "summary": "Skype saves laptop battery.",
        "text": "Skype will pause.",
    },
    {
        "id": "e2",
        "url": "u",
        "title": "t",
        "summary": "Rain falls in London.",
        "text": "It rained in London.",
    },
]
XLSUM_ZH = [{"id": "z1", "url": "u", "title": "t", "summary": "今天北京下雨。", "text": "北京今天全天下雨。"}]
MT_BENCH_EN = [{"question_id": 81, "category": "writing", "turns": ["Write a haiku.", "Now in French."]}]
MT_BENCH_DE = [
    {"question_id": 81, "category": "writing", "turns": ["Schreibe ein Haiku.", "Jetzt auf Französisch."]}
]


def serve_suites(static_server, monkeypatch: pytest.MonkeyPatch) -> None:
    """The three suites' small files in their upstream layouts on the loopback server, and the lab's
    source URLs pointing there (no local data folders)."""
    url, root, _ = static_server
    write(root, "m/data/en_input_data.jsonl", jsonl(MIFEVAL_EN))
    write(root, "m/data/ja_input_data.jsonl", jsonl(MIFEVAL_JA))
    write(root, "x/data/english_XLSum_v2.0.tar.bz2", xlsum_archive("english", XLSUM_EN))
    write(root, "x/data/chinese_simplified_XLSum_v2.0.tar.bz2", xlsum_archive("chinese_simplified", XLSUM_ZH))
    write(root, "b/fastchat/llm_judge/data/mt_bench/question.jsonl", jsonl(MT_BENCH_EN))
    write(root, "b/fastchat/llm_judge/data/de_mt_bench/question.jsonl", jsonl(MT_BENCH_DE))
    for name, prefix in (("MIFEVAL", "m"), ("XLSUM", "x"), ("MT_BENCH", "b")):
        monkeypatch.setenv(f"CAPO_LAB_{name}_URL", f"{url}/{prefix}")
    monkeypatch.delenv("CAPO_LAB_DATA_DIRS", raising=False)


@pytest.fixture
def fetched(static_server, lab_home, monkeypatch: pytest.MonkeyPatch) -> Settings:
    serve_suites(static_server, monkeypatch)
    settings = Settings()
    fetch_benchmark(settings, "m-ifeval", ["en", "ja"])
    fetch_benchmark(settings, "xlsum", ["en", "zh"])
    fetch_benchmark(settings, "mt-bench", ["en", "de"])
    return settings


def test_mifeval_suite(fetched: Settings) -> None:
    items = load_benchmark(fetched, "m-ifeval", ["en", "ja"])
    answers = {
        ("en", "1001"): "Rain falls softly. It keeps falling.",  # no comma: pass
        (
            "en",
            "1002",
        ): "<<Rain>>\nIt rains.\nIs there anything else?\nThanks",  # title yes; end strict no, loose yes
        ("ja", "1"): "あめがふっています。",  # hiragana and punctuation only: pass
    }
    _, scores = score_mifeval(items, answers)
    metrics = mifeval_metrics(scores)
    # en prompts: strict 1 of 2 (1002's end fails), loose 2 of 2; instructions: strict 2 of 3, loose 3 of 3
    assert metrics["benchmark/m-ifeval/prompt_strict/en"] == pytest.approx(1 / 2)
    assert metrics["benchmark/m-ifeval/prompt_loose/en"] == 1.0
    assert metrics["benchmark/m-ifeval/instruction_strict/en"] == pytest.approx(2 / 3)
    assert metrics["benchmark/m-ifeval/prompt_strict/ja"] == 1.0
    assert metrics["benchmark/m-ifeval/instructions_left_out/ja"] == 0


def consistent_judge(chat_server, good: str) -> None:
    """Prefers the summary ``good`` in whichever position it is shown."""
    chat_server.reply = lambda messages: (
        "Comparison: A.\nPreferred: Answer (A)"
        if f"Answer (A): {good}" in messages[0]["content"]
        else "Preferred: Answer (B)"
    )


def test_xlsum_suite_rouge_and_judge(fetched: Settings, chat_server) -> None:
    items = load_benchmark(fetched, "xlsum", ["en", "zh"])
    capo = {
        ("en", "e1"): "Skype saves battery.",
        ("en", "e2"): "London had rain.",
        ("zh", "z1"): "北京下雨。",
    }
    base = {("en", "e1"): "Microsoft news.", ("en", "e2"): "Rain falls in London.", ("zh", "z1"): "天气。"}
    rouge = rouge_scores(items, capo)
    # e1: skype saves battery vs skype saves laptop battery: LCS 3, P 3/3, R 3/4 -> F 2(1)(3/4)/(7/4) = 6/7
    assert rouge[("en", "e1")] == pytest.approx(6 / 7)
    assert rouge[("zh", "z1")] > 0  # 北 京 下 雨 within 今 天 北 京 下 雨: P 4/4, R 4/6
    assert rouge_metrics(rouge)["benchmark/xlsum/rouge_l/zh"] == pytest.approx(2 * 1 * (4 / 6) / (1 + 4 / 6))

    consistent_judge(chat_server, "London had rain.")
    judge = Judge(JudgeSettings(url=chat_server.url, model="m", backoff_seconds=0), MemoryCache())
    asks = [
        Comparison(
            i.item_id,
            i.language,
            *xlsum_comparison_prompts(i, capo[(i.language, i.item_id)], base[(i.language, i.item_id)]),
        )
        for i in items
    ]
    assert (
        "Generate a one sentence summary of the text below in Chinese.\n\n北京今天全天下雨。"
        in asks[-1].first[0]["content"]
    )
    run = judge_pairs(judge, asks)
    outcomes = {(v.language, v.item_id): v.outcome for v in run.verdicts}
    # e2: capo's "London had rain." wins in both orders; e1, z1: B then B, a contradiction -> tie
    assert outcomes == {("en", "e1"): "tie", ("en", "e2"): "a", ("zh", "z1"): "tie"}
    metrics = win_metrics(outcomes, {(v.language, v.item_id): v.inconsistent for v in run.verdicts}, "base")
    assert metrics["benchmark/xlsum/win_rate_vs_base/en"] == pytest.approx(1 / 2)
    assert metrics["benchmark/xlsum/inconsistency_rate"] == pytest.approx(2 / 3)


def test_xlsum_with_an_always_a_judge_no_arm_wins(fetched: Settings, chat_server) -> None:
    items = load_benchmark(fetched, "xlsum", ["en", "zh"])
    chat_server.reply = lambda messages: "Answer (A)"
    judge = Judge(JudgeSettings(url=chat_server.url, model="m", backoff_seconds=0), MemoryCache())
    asks = [Comparison(i.item_id, i.language, *xlsum_comparison_prompts(i, "one", "two")) for i in items]
    run = judge_pairs(judge, asks)
    outcomes = {(v.language, v.item_id): v.outcome for v in run.verdicts}
    metrics = win_metrics(outcomes, {(v.language, v.item_id): v.inconsistent for v in run.verdicts}, "base")
    assert metrics["benchmark/xlsum/win_rate_vs_base"] == 0.0
    assert metrics["benchmark/xlsum/tie_rate_vs_base"] == 1.0
    assert metrics["benchmark/xlsum/inconsistency_rate"] == 1.0
    overall = compare_verdicts(outcomes)[-1]
    assert (overall.wins, overall.losses, overall.p_value) == (0, 0, 1.0)


def test_mt_bench_suite_with_a_judge(fetched: Settings, chat_server) -> None:
    items = load_benchmark(fetched, "mt-bench", ["en", "de"])
    de = next(i for i in items if i.language == "de")
    conversation = chat_turns(de, ["Herbstlaub fällt"])
    assert [m["role"] for m in conversation[1]] == ["user", "assistant", "user"]
    chat_server.reply = lambda messages: (
        "Rating: [[6]]" if "second user question" in messages[0]["content"] else "Rating: [[9]]"
    )
    judge = Judge(JudgeSettings(url=chat_server.url, model="m", backoff_seconds=0), MemoryCache())
    answers = {("en", "81"): ["Leaves fall.", "Les feuilles."], ("de", "81"): ["Blätter.", "Feuilles."]}
    run = grade_items(
        judge, [(i.item_id, i.language, mt_bench_prompts(i, answers[(i.language, i.item_id)])) for i in items]
    )
    metrics = mt_bench_metrics({(g.language, g.item_id): g.ratings for g in run.grades})
    # turn 1 rated 9, turn 2 rated 6: each item scores (9 + 6)/2 = 7.5
    assert metrics["benchmark/mt-bench/score/de"] == 7.5 and metrics["benchmark/mt-bench/score"] == 7.5
    assert (metrics["benchmark/mt-bench/score_turn1"], metrics["benchmark/mt-bench/score_turn2"]) == (9, 6)


def test_without_a_judge_rouge_still_runs(fetched: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAPO_LAB_JUDGE_URL", raising=False)
    assert make_judge() is None and NO_JUDGE.startswith("no judge configured")
    items = load_benchmark(fetched, "xlsum", ["zh"])
    assert rouge_scores(items, {("zh", "z1"): "北京下雨。"})[("zh", "z1")] > 0
