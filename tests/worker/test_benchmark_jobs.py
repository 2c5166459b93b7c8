"""Benchmark jobs in the one job lifecycle: claimed once, progress per item, a cancel while queued or
after the current item, a stop signal leaves them interrupted, and what was answered is kept.

The model is replaced by a stand-in ``Answerer`` (the real one is exercised end to end by
tests/cli/test_benchmark_cli.py); the items come through the loopback fetch in M-IFEval's layout."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from capo_lab import benchmarks, lifecycle
from capo_lab.benchmark_sources import fetch_benchmark
from capo_lab.errors import LabError
from capo_lab.runs import now
from storage import queries, writes
from storage.records import JobKind
from tests.benchmarks.conftest import static_server  # noqa: F401  (a fixture)
from tests.benchmarks.test_benchmark_sources import jsonl, write
from tests.benchmarks.test_benchmark_suites import MIFEVAL_EN, MIFEVAL_JA
from tests.worker.conftest import serve_one_job, tiny_config
from worker import benchmark as worker_benchmark


@pytest.fixture
def job(lab, static_server, monkeypatch, tmp_path):  # noqa: F811
    """A queued M-IFEval benchmark (3 items: ja 1; en 1001, 1002) of a run with an adapter at step 2."""
    db, settings = lab
    url, root, _ = static_server
    write(root, "data/en_input_data.jsonl", jsonl(MIFEVAL_EN))
    write(root, "data/ja_input_data.jsonl", jsonl(MIFEVAL_JA))
    monkeypatch.setenv("CAPO_LAB_MIFEVAL_URL", url)
    monkeypatch.delenv("CAPO_LAB_DATA_DIRS", raising=False)
    fetch_benchmark(settings, "m-ifeval", ["en", "ja"])
    (run_id,) = lifecycle.submit(db, [tiny_config()], lambda _: None)
    with db.write() as session:
        writes.add_checkpoint(session, run_id, 2, str(tmp_path / "checkpoint-2"))
    return benchmarks.queue_benchmark(db, run_id, lambda _: None, "m-ifeval", ["en", "ja"], base=True).id


class Models:
    def __init__(self, settings) -> None:
        pass

    def get(self, cfg, checkpoint):
        return None, None


def stand_in(monkeypatch, during=lambda item, arm: None) -> list[tuple[str, str]]:
    """Answers every item "Rain falls." (no comma); records (item id, arm) as answered."""
    answered: list[tuple[str, str]] = []

    class Answerer(worker_benchmark.Answerer):
        def __init__(self, model, tokenizer, job, separator) -> None:
            self.job = job

        def answer(self, item, arm):
            during(item, arm)
            answered.append((item.item_id, arm))
            return [self._row(item, arm, 1, f"prompt {item.item_id}", Made())]

    monkeypatch.setattr(worker_benchmark, "GenerationModels", Models)
    monkeypatch.setattr(worker_benchmark, "Answerer", Answerer)
    return answered


class Made:
    text, n_tokens, truncated = "Rain falls.", 2, False


def stored(db, job_id: int):
    with db.read() as session:
        return queries.get_benchmark(session, job_id), queries.benchmark_generations(session, job_id)


def test_a_finished_benchmark_records_progress_answers_and_metrics(lab, job, monkeypatch):
    db, settings = lab
    answered = stand_in(monkeypatch)
    assert worker_benchmark.run_benchmark(db, settings, job, "host:1") == "succeeded"
    done, generations = stored(db, job)
    assert (done.status, done.worker, done.done, done.total, done.evaluated_step) == (
        "succeeded",
        "host:1",
        3,
        3,
        2,
    )
    assert len(answered) == len(generations) == 6  # 3 items x adapter and base
    assert {(g.temperature, g.max_new_tokens, g.template) for g in generations} == {(0.0, 1024, "none")}
    metrics = benchmarks.benchmark_metrics(db, job)
    assert metrics["benchmark/m-ifeval/prompt_strict/en"] == 0.5  # 1001 passes, 1002 has no title
    assert metrics["benchmark/m-ifeval/base_prompt_strict/en"] == 0.5
    items = benchmarks.benchmark_items(db, job)
    first = items[0]
    assert (first.language, first.item_id, first.answers["base"]) == ("en", "1001", ("Rain falls.",))
    assert first.scores["adapter/prompt_strict"]["value"] == 1.0
    assert first.scores["adapter/prompt_strict"]["detail"]["instructions"][0]["strict"] is True
    assert worker_benchmark.run_benchmark(db, settings, job).startswith("skipped")  # claimed once only


def test_a_cancelled_queued_benchmark_never_starts(lab, job, monkeypatch):
    db, settings = lab
    answered = stand_in(monkeypatch)
    assert benchmarks.cancel_benchmark(db, job) == "cancelled before it started"
    assert worker_benchmark.run_benchmark(db, settings, job).startswith("skipped")
    assert answered == [] and stored(db, job)[0].status == "cancelled"
    with pytest.raises(LabError, match=f"^benchmark {job} is cancelled; only queued or running"):
        benchmarks.cancel_benchmark(db, job)
    with pytest.raises(LabError, match="^no benchmark 999$"):
        benchmarks.cancel_benchmark(db, 999)


def test_a_running_benchmark_stops_after_its_current_item_when_cancelled(lab, job, monkeypatch):
    db, settings = lab
    said = []
    answered = stand_in(
        monkeypatch,
        lambda item, arm: item.item_id == "1001" and said.append(benchmarks.cancel_benchmark(db, job)),
    )
    assert worker_benchmark.run_benchmark(db, settings, job) == "cancelled"
    assert said[0] == "asked to stop after its current item"
    # items in id order: ja 1, then en 1001 (cancelled while answered), 1002 (never answered)
    assert answered == [("1", "adapter"), ("1", "base"), ("1001", "adapter"), ("1001", "base")]
    stopped, generations = stored(db, job)
    assert (stopped.status, stopped.done, stopped.total, len(generations)) == ("cancelled", 2, 3, 4)
    assert benchmarks.benchmark_metrics(db, job) == {}  # nothing scored from a partial job


def test_a_stop_signal_leaves_a_running_benchmark_interrupted(lab, job, monkeypatch):
    db, settings = lab
    stop = threading.Event()
    answered = stand_in(monkeypatch, lambda item, arm: stop.set())
    assert worker_benchmark.run_benchmark(db, settings, job, "w", stop) == "interrupted"
    assert len(answered) == 2 and stored(db, job)[0].status == "interrupted"


def test_a_failure_is_one_stored_line(lab, job, monkeypatch):
    db, settings = lab

    def fail(item, arm):
        raise RuntimeError("the tokenizer said:\n  no")

    stand_in(monkeypatch, fail)
    assert worker_benchmark.run_benchmark(db, settings, job) == "failed"
    assert stored(db, job)[0].error == "RuntimeError: the tokenizer said: no"


def test_arms_are_compared_item_by_item_within_a_job_and_across_jobs(lab, job, monkeypatch):
    db, settings = lab
    stand_in(monkeypatch)
    assert worker_benchmark.run_benchmark(db, settings, job) == "succeeded"
    within = benchmarks.compare_benchmark(db, job)
    strict = [
        (r.language, r.mean_a, r.mean_b, r.only_a) for r in within.scores if r.metric == "prompt_strict"
    ]
    # both arms answered "Rain falls.": en 1001 passes (no comma), 1002 fails (no title); not hiragana
    assert strict == [("en", 0.5, 0.5, 0), ("ja", 0.0, 0.0, 0), ("all", 1 / 3, 1 / 3, 0)]
    assert within.arms == ("run 1", "run 1 base") and within.verdicts == ()
    run_id = benchmarks.get_benchmark(db, job).run_id
    other = benchmarks.queue_benchmark(db, run_id, lambda _: None, "m-ifeval", ["en"]).id
    assert worker_benchmark.run_benchmark(db, settings, other) == "succeeded"
    across = benchmarks.compare_benchmark(db, job, other)
    assert across.arms == ("run 1", "run 1 adapter") and [r.language for r in across.scores][:2] == [
        "en",
        "all",
    ]
    assert across.scores[0].missing == 0 and across.scores[-1].missing == 1  # ja only in the first job
    with pytest.raises(LabError, match="^no benchmark 7$"):
        benchmarks.compare_benchmark(db, job, 7)


def test_a_refused_queue_fails_the_job_in_one_line_and_stale_ones_are_reaped(lab, job):
    db, _ = lab
    run_id = benchmarks.get_benchmark(db, job).run_id

    def refuse(_id: int) -> None:
        raise ConnectionError("redis is down")

    with pytest.raises(LabError, match="^the queue refused benchmark 2: redis is down$"):
        benchmarks.queue_benchmark(db, run_id, refuse, "m-ifeval", ["en"])
    refused = benchmarks.get_benchmark(db, 2)
    assert (refused.status, refused.error) == (
        "failed",
        "could not be queued: ConnectionError: redis is down",
    )
    with db.write() as session:
        writes.update_benchmark(session, job, status="running", heartbeat_at=now() - timedelta(seconds=120))
    assert lifecycle.reap_stale_jobs(db, 30) == [(JobKind.BENCHMARK, job)]
    assert "no heartbeat for over 30 s" in benchmarks.get_benchmark(db, job).error
    assert [b.id for b in benchmarks.benchmarks(db, run_id)] == [2, job]  # newest first


def test_the_worker_runs_a_queued_benchmark_task(lab, job, monkeypatch):
    """``capo_lab.benchmark`` through the queue and the worker's loop, as ``--queue`` and the UI send it."""
    from worker import tasks
    from worker.huey_app import huey

    db, _ = lab
    stand_in(monkeypatch)
    huey.flush()
    run_id = benchmarks.get_benchmark(db, job).run_id
    queued = benchmarks.queue_benchmark(db, run_id, tasks.enqueue_benchmark, "m-ifeval", ["ja"])
    serve_one_job()
    done = benchmarks.get_benchmark(db, queued.id)
    assert (done.status, done.done, done.error) == ("succeeded", 1, None)
    assert benchmarks.get_benchmark(db, job).status == "queued"  # only the enqueued one ran
