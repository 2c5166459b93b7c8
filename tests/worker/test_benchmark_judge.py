"""A benchmark job's judge through a chat-completions server on loopback: a failing judge leaves the
items unjudged with one line as the job's note (never a win or a loss), a malformed verdict leaves its
item unjudged, and a rerun judges from the stored cache what was judged before.

The model is the stand-in of test_benchmark_jobs (the adapter answers the reference, the base "News.")."""

from __future__ import annotations

import pytest

from capo_lab import benchmarks, lifecycle
from capo_lab.benchmark_sources import fetch_benchmark
from storage import writes
from tests.benchmarks.conftest import chat_server, static_server  # noqa: F401  (fixtures)
from tests.benchmarks.test_benchmark_sources import write, xlsum_archive
from tests.benchmarks.test_benchmark_suites import XLSUM_EN, XLSUM_ZH
from tests.worker.conftest import tiny_config
from worker import benchmark as worker_benchmark


@pytest.fixture
def queue(lab, static_server, chat_server, monkeypatch, tmp_path):  # noqa: F811
    """Queues an XLSum job (en e1, e2; zh z1) with the base, judged by ``chat_server``."""
    db, settings = lab
    url, root, _ = static_server
    write(root, "data/english_XLSum_v2.0.tar.bz2", xlsum_archive("english", XLSUM_EN))
    write(root, "data/chinese_simplified_XLSum_v2.0.tar.bz2", xlsum_archive("chinese_simplified", XLSUM_ZH))
    monkeypatch.setenv("CAPO_LAB_XLSUM_URL", url)
    monkeypatch.delenv("CAPO_LAB_DATA_DIRS", raising=False)
    for name, value in (("URL", chat_server.url), ("MODEL", "judge"), ("BACKOFF_SECONDS", "0")):
        monkeypatch.setenv(f"CAPO_LAB_JUDGE_{name}", value)
    fetch_benchmark(settings, "xlsum", ["en", "zh"])
    (run_id,) = lifecycle.submit(db, [tiny_config()], lambda _: None)
    with db.write() as session:
        writes.add_checkpoint(session, run_id, 2, str(tmp_path / "checkpoint-2"))
    references = {row["id"]: row["summary"] for row in XLSUM_EN + XLSUM_ZH}

    class Answerer(worker_benchmark.Answerer):
        def __init__(self, model, tokenizer, job, separator) -> None:
            self.job = job

        def answer(self, item, arm):
            made = type("Made", (), {"n_tokens": 1, "truncated": False})()
            made.text = references[item.item_id] if arm == "adapter" else "News."
            return [self._row(item, arm, 1, "p", made)]

    monkeypatch.setattr(worker_benchmark, "GenerationModels", lambda settings: Models())
    monkeypatch.setattr(worker_benchmark, "Answerer", Answerer)
    return lambda: benchmarks.queue_benchmark(db, run_id, lambda _: None, "xlsum", ["en", "zh"], base=True)


class Models:
    def get(self, cfg, checkpoint):
        return None, None


def prefers_the_reference(messages) -> str:
    return (
        "Preferred: Answer (B)" if "Answer (A): News." in messages[0]["content"] else "Preferred: Answer (A)"
    )


def test_a_rerun_judges_from_the_stored_cache_while_the_judge_is_failing(lab, queue, chat_server):  # noqa: F811
    db, settings = lab
    first = queue()
    assert first.judge_requests == 6  # 2 orders x 3 items, shown before the job starts
    chat_server.reply = prefers_the_reference
    assert worker_benchmark.run_benchmark(db, settings, first.id) == "succeeded"
    judged = benchmarks.benchmark_metrics(db, first.id)
    assert judged["benchmark/xlsum/win_rate_vs_base"] == 1.0 and judged["benchmark/xlsum/unjudged"] == 0
    asked = len(chat_server.bodies)
    chat_server.failures = [500] * 5
    second = queue()
    assert worker_benchmark.run_benchmark(db, settings, second.id) == "succeeded"
    assert len(chat_server.bodies) == asked  # every verdict from the stored cache: the judge is not asked
    assert benchmarks.benchmark_metrics(db, second.id) == judged


def test_a_judge_answering_500_is_one_line_and_nothing_counts_as_a_win(lab, queue, chat_server):  # noqa: F811
    db, settings = lab
    job = queue()
    chat_server.failures = [500] * 5  # retries 4: five tries
    assert worker_benchmark.run_benchmark(db, settings, job.id) == "succeeded"
    done = benchmarks.get_benchmark(db, job.id)
    assert done.note == f"the judge at {chat_server.url} answered HTTP 500 5 times; try again later"
    metrics = benchmarks.benchmark_metrics(db, job.id)
    assert metrics["benchmark/xlsum/unjudged"] == 3 and "benchmark/xlsum/win_rate_vs_base" not in metrics
    assert "benchmark/xlsum/rouge_l/zh" in metrics  # ROUGE is scored whatever the judge does
    verdicts = [i.scores["adapter/judge_vs_base"] for i in benchmarks.benchmark_items(db, job.id)]
    assert {v["value"] for v in verdicts} == {None} and {v["detail"]["outcome"] for v in verdicts} == {
        "unjudged"
    }


def test_a_malformed_verdict_leaves_its_item_unjudged(lab, queue, chat_server):  # noqa: F811
    db, settings = lab
    job = queue()
    chat_server.reply = lambda m: (
        "I cannot decide." if "北京" in m[0]["content"] else prefers_the_reference(m)
    )
    assert worker_benchmark.run_benchmark(db, settings, job.id) == "succeeded"
    metrics = benchmarks.benchmark_metrics(db, job.id)
    assert (
        metrics["benchmark/xlsum/unjudged/zh"] == 1 and metrics["benchmark/xlsum/win_rate_vs_base/en"] == 1.0
    )
    zh = next(i for i in benchmarks.benchmark_items(db, job.id) if i.language == "zh")
    assert zh.scores["adapter/judge_vs_base"]["detail"]["note"] == "malformed verdict"
