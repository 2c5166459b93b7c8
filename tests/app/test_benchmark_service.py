"""The lab service's benchmark methods on a real SQLite database: a plan with the judge's estimate before
queueing, a queued job, a read-only service refusing, one line for an unknown suite, language or id, and
the stored answers, scores and paired comparisons read back.

``store_job`` writes a finished job's rows as the worker stores them (the tab's tests use it too); the
suites' files are mirrored in a ``CAPO_LAB_DATA_DIRS`` folder in their upstream layout."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from capo.benchmarks.ifeval import InstructionResult
from capo.errors import UserError
from capo_lab import lifecycle
from capo_lab.errors import LabError
from capo_lab.judge import NO_JUDGE, combine
from capo_lab.service import LabService
from capo_lab.service_benchmarks import READ_ONLY, RULE_CHECKED, XLSUM_NEEDS_BASE
from capo_lab.settings import Settings
from storage import writes
from tests.benchmarks.test_benchmark_sources import jsonl, write, xlsum_archive
from tests.benchmarks.test_benchmark_suites import (
    MIFEVAL_EN,
    MIFEVAL_JA,
    MT_BENCH_EN,
    XLSUM_EN,
    XLSUM_ZH,
)
from tests.worker.conftest import lab, tiny_config  # noqa: F401  (a fixture)

JUDGE_VARIABLES = ("CAPO_LAB_JUDGE_URL", "CAPO_LAB_JUDGE_MODEL", "CAPO_LAB_JUDGE_MAX_REQUESTS")


def mirror_suites(folder: Path) -> Path:
    """M-IFEval en and ja, XLSum en and zh, MT-Bench en, each at its mirror path under ``folder``."""
    write(folder, "m-ifeval/data/en_input_data.jsonl", jsonl(MIFEVAL_EN))
    write(folder, "m-ifeval/data/ja_input_data.jsonl", jsonl(MIFEVAL_JA))
    write(folder, "xlsum/data/english_XLSum_v2.0.tar.bz2", xlsum_archive("english", XLSUM_EN))
    zh = xlsum_archive("chinese_simplified", XLSUM_ZH)
    write(folder, "xlsum/data/chinese_simplified_XLSum_v2.0.tar.bz2", zh)
    write(folder, "mt-bench/fastchat/llm_judge/data/mt_bench/question.jsonl", jsonl(MT_BENCH_EN))
    return folder


@pytest.fixture
def lab_service(lab, tmp_path, monkeypatch):  # noqa: F811
    """(a service whose benchmark queue records the ids it is given, those ids, a run with an adapter
    at step 2); no judge configured."""
    db, _ = lab
    monkeypatch.setenv("CAPO_LAB_DATA_DIRS", str(mirror_suites(tmp_path / "mirror")))
    for variable in JUDGE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    queued: list[int] = []
    service = LabService(Settings(), enqueue_benchmark=queued.append)
    run_id = with_adapter(service)
    return service, queued, run_id


def with_adapter(service: LabService, step: int = 2) -> int:
    """A new run (of the tiny dataset) with a checkpoint at ``step``."""
    (run_id,) = lifecycle.submit(service.db, [tiny_config()], lambda _: None)
    with service.db.write() as session:
        writes.add_checkpoint(session, run_id, step, f"/nowhere/checkpoint-{step}")
    return run_id


def store_job(service, run_id, suite, generations, scores, metrics=(), base=True, note=None) -> int:
    """A succeeded job evaluated at step 2 with these answers, per-item scores and metrics."""
    languages = sorted({g["language"] for g in generations})
    request = {
        "step": "last", "suite": suite, "languages": languages, "limit": None, "seed": 0, "base": base,
        "max_new_tokens": 64, "temperature": 0.0, "template": "none", "judge_requests": 0,
    }  # fmt: skip
    items = len({(g["language"], g["item_id"]) for g in generations})
    with service.db.write() as session:
        job = writes.add_benchmark(session, run_id, request)
        writes.add_benchmark_generations(session, job, run_id, generations)
        writes.replace_benchmark_scores(session, job, run_id, scores)
        writes.replace_metrics(session, run_id, 2, f"benchmark/{suite}/", list(metrics))
        writes.update_benchmark(
            session, job, status="succeeded", done=items, total=items, evaluated_step=2, note=note
        )
    return job


def answer(language, item_id, arm, output, turn=1, prompt=None) -> dict:
    return {
        "language": language, "item_id": item_id, "arm": arm, "turn": turn,
        "prompt": prompt or f"<user> item {item_id} turn {turn}", "output": output, "n_tokens": 3,
        "truncated": False, "max_new_tokens": 64, "temperature": 0.0, "seed": 0, "template": "none",
    }  # fmt: skip


def score(language, item_id, arm, metric, value, detail=None) -> dict:
    return {"language": language, "item_id": item_id, "arm": arm, "metric": metric, "value": value,
            "detail": detail or {}}  # fmt: skip


# XLSum, adapter and base: ROUGE-L per item, and the judge's verdicts (adapter shown first, then second).
XLSUM_ROUGE = {  # (language, item) → (adapter, base)
    ("en", "e1"): (0.5, 0.25),
    ("en", "e2"): (0.25, 0.25),
    ("zh", "z1"): (0.75, 0.5),
}
XLSUM_VERDICTS = {  # first: adapter as Answer (A); second: base as Answer (A)
    ("en", "e1"): ("A", "B"),  # both pick the adapter: a win
    ("en", "e2"): ("A", "A"),  # each picks whoever came first: a tie, inconsistent
    ("zh", "z1"): (None, "B"),  # a malformed verdict: unjudged
}


def xlsum_job(service, run_id, base=True, rouge=XLSUM_ROUGE, summary="A summary.") -> int:
    arms = ("adapter", "base") if base else ("adapter",)
    generations = [answer(lang, i, arm, f"{summary} ({arm})") for (lang, i) in rouge for arm in arms]
    scores = [
        score(lang, i, arm, "rouge_l", values[n])
        for (lang, i), values in rouge.items()
        for n, arm in enumerate(arms)
    ]
    if base:
        verdicts = [combine(i, lang, *XLSUM_VERDICTS[(lang, i)]) for (lang, i) in rouge]
        value = {"a": 1.0, "tie": 0.5, "b": 0.0, "unjudged": None}
        scores += [
            score(v.language, v.item_id, "adapter", "judge_vs_base", value[v.outcome], asdict(v))
            for v in verdicts
        ]
    metrics = [("benchmark/xlsum/rouge_l", 0.5), ("benchmark/xlsum/rouge_l/en", 0.375)]
    return store_job(service, run_id, "xlsum", generations, scores, metrics, base)


def test_a_plan_before_queueing_says_what_the_judge_will_be_asked(lab_service, monkeypatch):
    service, _, _ = lab_service
    rules = service.benchmark_plan("m-ifeval", ["en", "ja"], None, True)
    assert (rules.items, rules.arms, rules.judge_requests, rules.note) == (
        3,
        ("adapter", "base"),
        0,
        RULE_CHECKED,
    )
    unjudged = service.benchmark_plan("xlsum", "en, zh", "", True)
    assert (unjudged.items, unjudged.judge_requests, unjudged.judge_configured) == (3, 0, False)
    assert unjudged.temperature == 0.7  # the paper's sampling temperature
    assert unjudged.note.startswith(NO_JUDGE) and "ROUGE-L still runs" in unjudged.note
    monkeypatch.setenv("CAPO_LAB_JUDGE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("CAPO_LAB_JUDGE_MODEL", "judge-model")
    monkeypatch.setenv("CAPO_LAB_JUDGE_MAX_REQUESTS", "5")
    judged = service.benchmark_plan("xlsum", ["en", "zh"], 2.0, True)
    assert judged.judge_requests == 2 * 3 * 1  # both orders × 3 items (2 en, 1 zh) × one arm pair
    assert "gets up to 6 requests, more than its budget of 5" in judged.note
    assert service.benchmark_plan("xlsum", ["en"], 1, False).note == XLSUM_NEEDS_BASE
    graded = service.benchmark_plan("mt-bench", ["en"], None, True)
    assert graded.judge_requests == 2 * 1 * 2  # two turns × one question × two arms


def test_run_benchmark_records_the_job_and_queues_its_id(lab_service):
    service, queued, run_id = lab_service
    job_id = service.run_benchmark(str(run_id), "m-ifeval", "ja", 1.0, base=False)
    assert queued == [job_id]
    (job,) = service.benchmarks(run_id)
    assert (job.id, job.suite, job.languages, job.limit, job.base, job.status, job.total) == (
        job_id, "m-ifeval", ("ja",), 1, False, "queued", 1
    )  # fmt: skip
    assert job.temperature == 0.0  # the suite's paper setting: greedy
    assert service.cancel_benchmark(job_id) == "cancelled before it started"
    assert service.benchmark(job_id).status == "cancelled"
    sampled = service.run_benchmark(run_id, "xlsum", ["zh"], None, True, "2", temperature=0.3)
    assert (service.benchmark(sampled).temperature, service.benchmark(sampled).step) == (0.3, "2")
    with pytest.raises(LabError, match="^--temperature must be between 0 \\(greedy\\) and 2.0, not 5$"):
        service.run_benchmark(run_id, "xlsum", ["zh"], temperature=5)
    assert queued == [job_id, sampled]


def test_a_read_only_service_refuses_to_queue_in_one_line(lab_service):
    service, _, run_id = lab_service
    reader = LabService(service.settings)
    with pytest.raises(LabError, match=f"^{READ_ONLY}$"):
        reader.run_benchmark(run_id, "m-ifeval")
    assert reader.benchmarks(run_id) == []  # reading is allowed


@pytest.mark.parametrize(
    ("suite", "languages", "limit", "message"),
    [
        ("hellaswag", None, None, "^unknown suite 'hellaswag'; choose from m-ifeval, xlsum, mt-bench$"),
        ("m-ifeval", ["en", "de"], None, "^m-ifeval has no language 'de'; choose from en, es, fr, ja$"),
        ("xlsum", "ko", None, "^xlsum has no language 'ko'; choose from en, zh, vi, ar, uk, tr, fr, ja, es$"),
        ("m-ifeval", None, 0, "^the item limit must be a whole number from 1 to 2\\^63 - 1, got 0$"),
        ("m-ifeval", None, 2.5, "^the item limit must be a whole number from 1 to 2\\^63 - 1, got 2.5$"),
        ("m-ifeval", ["es"], None, "^m-ifeval:es is not fetched; run `capo-lab data fetch m-ifeval"),
    ],
)
def test_bad_choices_are_one_line_and_queue_nothing(lab_service, suite, languages, limit, message):
    service, queued, run_id = lab_service
    for attempt in (
        lambda: service.benchmark_plan(suite, languages, limit),
        lambda: service.run_benchmark(run_id, suite, languages, limit),
    ):
        with pytest.raises(UserError, match=message) as caught:
            attempt()
        assert "\n" not in str(caught.value)
    assert queued == [] and service.benchmarks(run_id) == []


def test_unknown_ids_and_a_run_without_an_adapter_are_one_line(lab_service):
    service, queued, _ = lab_service
    (bare,) = lifecycle.submit(service.db, [tiny_config()], lambda _: None)
    with pytest.raises(LabError, match=f"^run {bare} has no adapter at step last; steps with one: none yet$"):
        service.run_benchmark(bare, "m-ifeval")
    with pytest.raises(LabError, match="^no benchmark 42$"):
        service.benchmark_items(42)
    with pytest.raises(LabError, match="^benchmark id must be a whole number, got 'x'$"):
        service.benchmark_metrics("x")
    with pytest.raises(LabError, match="^no run 999; see"):
        service.run_benchmark(999, "m-ifeval")
    assert queued == []


def test_stored_items_read_back_with_answers_checks_and_verdicts(lab_service):
    service, _, run_id = lab_service
    job = xlsum_job(service, run_id)
    items = service.benchmark_items(job)
    assert [(i.language, i.item_id) for i in items] == [("en", "e1"), ("en", "e2"), ("zh", "z1")]
    first = items[0]
    assert first.answers == {"adapter": ("A summary. (adapter)",), "base": ("A summary. (base)",)}
    verdict = first.scores["adapter/judge_vs_base"]
    assert (verdict["value"], verdict["detail"]["first"], verdict["detail"]["second"]) == (1.0, "A", "B")
    assert items[1].scores["adapter/judge_vs_base"]["detail"]["inconsistent"] is True
    assert items[2].scores["adapter/judge_vs_base"]["value"] is None  # unjudged, never a win or a loss
    assert service.benchmark_metrics(job) == {
        "benchmark/xlsum/rouge_l": 0.5,
        "benchmark/xlsum/rouge_l/en": 0.375,
    }


def test_the_adapter_against_its_base_and_against_another_run(lab_service):
    service, _, run_id = lab_service
    job = xlsum_job(service, run_id)
    vs_base = service.compare_benchmark(job)
    overall = vs_base.scores[-1]
    assert (overall.language, overall.arm_a, overall.arm_b) == ("all", f"run {run_id}", f"run {run_id} base")
    assert overall.mean_a == pytest.approx((0.5 + 0.25 + 0.75) / 3)
    assert overall.mean_b == pytest.approx((0.25 + 0.25 + 0.5) / 3)
    assert overall.difference.low <= overall.difference.estimate <= overall.difference.high
    assert [(w.language, w.judged, w.wins, w.losses) for w in vs_base.verdicts] == [
        ("en", 2, 1, 0),  # e1 won, e2 a tie; zh's only item unjudged, so no zh row
        ("all", 2, 1, 0),
    ]
    other_run = with_adapter(service)
    other = xlsum_job(service, other_run, base=False, rouge={k: (0.25,) for k in XLSUM_ROUGE})
    versus = service.compare_benchmark(job, float(other))
    en = versus.scores[0]
    assert (en.language, en.arm_b, en.mean_a, en.mean_b) == ("en", f"run {other_run} adapter", 0.375, 0.25)
    assert versus.verdicts == ()  # the judge compared each job with its own base only
    assert [j.id for j in service.comparable_benchmarks(job)] == [other]
    mifeval = store_job(service, run_id, "m-ifeval", [answer("en", "1001", "adapter", "x")], [])
    assert service.comparable_benchmarks(mifeval) == []  # no other M-IFEval job
    with pytest.raises(LabError, match=f"^benchmark {job} is xlsum and benchmark {mifeval} is m-ifeval$"):
        service.compare_benchmark(job, mifeval)


def test_ifeval_check_details_are_kept_per_instruction(lab_service):
    service, _, run_id = lab_service
    checks = [asdict(InstructionResult("en:punctuation:no_comma", "checked", True, True))]
    job = store_job(
        service, run_id, "m-ifeval", [answer("en", "1001", "adapter", "Rain falls.")],
        [score("en", "1001", "adapter", "prompt_strict", 1.0, {"instructions": checks})], base=False,
    )  # fmt: skip
    (item,) = service.benchmark_items(job)
    assert item.scores["adapter/prompt_strict"]["detail"]["instructions"][0]["strict"] is True
