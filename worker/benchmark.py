"""Benchmark jobs on the worker's side: load a run's base model and adapter once, answer each item of
the suite (every user turn, by the adapter and with ``base`` the base model), store the answers item
by item, then score them (``capo_lab.benchmark_scoring.store_and_score``).

It loads a model, so it runs in the worker or the CLI, never in the web process, which only queues
(``capo_lab.benchmarks.queue_benchmark``) and reads. Progress counts items; a cancel or a stop signal
takes effect after the current item, whose answers are stored. Generation (``capo.generate``), one
item at a time, uses the job's temperature (0: greedy) with a seed per answer
(``capo.benchmarks.suites.item_seed``: job seed, item and turn; stored with the answer), and stops at
the template's stop tokens and plain-text turn markers (``capo.benchmarks.render.stop_strings``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from capo.benchmarks.items import BenchmarkItem
from capo.benchmarks.suites import chat_turns, item_seed
from capo_lab.benchmark_scoring import store_and_score, stored_judge
from capo_lab.benchmark_sources import load_benchmark
from capo_lab.benchmarks import arms, get_benchmark
from capo_lab.database import Database
from capo_lab.lifecycle import JobStopped, WorkDone, claim_job, this_process, work_on
from capo_lab.runs import get_run, run_config
from capo_lab.settings import Settings
from capo_lab.translations import adapter_at
from storage import queries, writes
from storage.records import BenchmarkRecord, JobKind
from worker.evaluate import GenerationModels


class Answerer:
    """Answers items with one loaded model: the run's template, the job's temperature and a seed per
    answer, at most ``max_new_tokens``."""

    def __init__(self, model: Any, tokenizer: Any, job: BenchmarkRecord, separator: str) -> None:
        from capo.benchmarks.render import end_of_turn_ids, stop_strings
        from capo.generate import stop_token_ids

        self.model, self.tokenizer, self.job, self.separator = model, tokenizer, job, separator
        self.stops = stop_token_ids(tokenizer, end_of_turn_ids(tokenizer, job.template, separator))
        self.stop_strings = stop_strings(job.template)

    def answer(self, item: BenchmarkItem, arm: str) -> list[dict[str, Any]]:
        """One generation row per user turn; turn k sees the turns and answers before it."""
        from capo.benchmarks.render import render_conversation
        from capo.generate import generate

        rows: list[dict[str, Any]] = []
        for turn in range(len(item.turns)):
            conversation = chat_turns(item, [r["output"] for r in rows])[turn]
            prompt = render_conversation(self.tokenizer, conversation, self.job.template, self.separator)
            (made,) = generate(
                self.model, self.tokenizer, [prompt.ids], self.stops, self.job.max_new_tokens, 1,
                base=arm == "base", temperature=self.job.temperature, seeds=[self.seed(item, turn + 1)],
                stop_strings=self.stop_strings,
            )  # fmt: skip
            rows.append(self._row(item, arm, turn + 1, prompt.text, made))
        return rows

    def seed(self, item: BenchmarkItem, turn: int) -> int:
        """The answer's sampling seed: the same for both arms, from the job's seed, the item and turn."""
        return item_seed(self.job.seed, item.suite, item.language, item.item_id, turn)

    def _row(self, item: BenchmarkItem, arm: str, turn: int, prompt: str, made: Any) -> dict[str, Any]:
        job = self.job
        return {
            "language": item.language, "item_id": item.item_id, "arm": arm, "turn": turn, "prompt": prompt,
            "output": made.text, "n_tokens": made.n_tokens, "truncated": made.truncated,
            "max_new_tokens": job.max_new_tokens, "temperature": job.temperature,
            "seed": self.seed(item, turn), "template": job.template,
        }  # fmt: skip


def _answered(db: Database, job: BenchmarkRecord) -> set[tuple[str, str, str]]:
    """(language, item id, arm) already stored for this job: not generated again."""
    with db.read() as session:
        return {(g.language, g.item_id, g.arm) for g in queries.benchmark_generations(session, job.id)}


def answer_items(
    db: Database,
    job: BenchmarkRecord,
    items: Sequence[BenchmarkItem],
    answerer: Answerer,
    should_stop: Callable[[], bool],
) -> None:
    """Answer and store item after item, storing progress; ``JobStopped`` after an item once asked."""
    done = _answered(db, job)
    for index, item in enumerate(items, 1):
        rows = [
            row
            for arm in arms(job.base)
            if (item.language, item.item_id, arm) not in done
            for row in answerer.answer(item, arm)
        ]
        with db.write() as session:
            writes.add_benchmark_generations(session, job.id, job.run_id, rows)
            writes.update_benchmark(session, job.id, done=index, total=len(items))
        if index < len(items) and should_stop():
            raise JobStopped


def benchmark(
    db: Database,
    settings: Settings,
    job: BenchmarkRecord,
    should_stop: Callable[[], bool] = lambda: False,
    models: GenerationModels | None = None,
    device: str | None = None,
) -> WorkDone:
    """Answer, store and score one job; the fields its row gets as it finishes."""
    run = get_run(db, job.run_id)
    cfg = run_config(run, device)
    checkpoint = adapter_at(db, run.id, job.step)
    items = load_benchmark(settings, job.suite, job.languages, job.limit, job.seed)
    model, tokenizer = (models or GenerationModels(settings)).get(cfg, checkpoint)
    answer_items(db, job, items, Answerer(model, tokenizer, job, cfg.data.response_separator), should_stop)
    scored = store_and_score(db, job, checkpoint.step, items, stored_judge(db))
    note = " ".join(scored.notes) or None
    return WorkDone(
        True, {"evaluated_step": checkpoint.step, "done": len(items), "total": len(items), "note": note}
    )


def run_benchmark(
    db: Database,
    settings: Settings,
    benchmark_id: int,
    worker: str | None = None,
    stop_event: threading.Event | None = None,
    device: str | None = None,
    models: GenerationModels | None = None,
) -> str:
    """What a worker does with one benchmark id, in the job lifecycle (``capo_lab.lifecycle``): claim it
    for ``worker`` (default: this process), answer and score under a heartbeat on ``device``, and
    finish it: succeeded, failed (one line stored, the traceback logged), cancelled, or interrupted
    when ``stop_event`` (a signal) is set."""
    if not claim_job(db, JobKind.BENCHMARK, benchmark_id, worker or this_process()):
        return f"skipped (benchmark {benchmark_id} is not queued)"
    job = get_benchmark(db, benchmark_id)

    def work(should_stop: Callable[[], bool]) -> WorkDone:
        return benchmark(db, settings, job, should_stop, models, device)

    stop = stop_event or threading.Event()
    status = work_on(db, JobKind.BENCHMARK, benchmark_id, stop, settings.heartbeat_seconds, work)
    return status or f"lost (benchmark {benchmark_id} became {get_benchmark(db, benchmark_id).status})"
