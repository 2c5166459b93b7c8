"""Translation evaluations on the worker's side: load a run's base model and adapter, translate a
split's sources greedily, then store and score them (``capo_lab.translations.store_and_score``).

It loads a model, so it runs in the worker or the CLI, never in the web process, which only queues
(``capo_lab.translations.queue_evaluation``) and reads. ``GenerationModels`` loads the base and an
adapter once per job, on the worker's device (its ``--device`` overrides the run's
``train.device``), and keeps them for every split the job translates (``evaluate_at_end``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from capo.config import RunConfig
from capo_lab.database import Database
from capo_lab.errors import LabError
from capo_lab.lifecycle import JobStopped, WorkDone, claim_job, this_process, work_on
from capo_lab.runs import get_run, run_config, split_pairs
from capo_lab.settings import Settings
from capo_lab.translations import (
    MODELS,
    Scoring,
    TranslationReport,
    adapter_at,
    get_evaluation,
    queue_evaluation,
    store_and_score,
)
from storage import writes
from storage.records import CheckpointRecord, JobKind, PairRecord


class GenerationModels:
    """The base model with one adapter, loaded on first use and kept while the adapter is the same,
    with the fastest generation kernels the device has (``capo.generate.load_generation_model``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loaded_for: str | None = None
        self.model: Any = None
        self.tokenizer: Any = None

    def get(self, cfg: RunConfig, checkpoint: CheckpointRecord) -> tuple[Any, Any]:
        if self.loaded_for != checkpoint.path:
            from capo.generate import load_generation_model
            from capo.models import resolve_device

            device = resolve_device(cfg.train.device)
            cache = self.settings.home_dir / "models"
            self.model, self.tokenizer = load_generation_model(cfg.model, cache, device, checkpoint.path)
            self.loaded_for = checkpoint.path
        return self.model, self.tokenizer


def evaluate_translations(
    db: Database,
    settings: Settings,
    run_id: int | str,
    step: int | str = "last",
    split: str = "eval",
    base: bool = False,
    max_new_tokens: int = 160,
    on_progress: Callable[[int, int], None] | None = None,
    models: GenerationModels | None = None,
    device: str | None = None,
    n_pairs: int | None = None,
    scoring: Scoring | None = None,
) -> TranslationReport:
    """Translate, store and score; ``on_progress(done, total)`` counts sentences as they finish;
    ``n_pairs`` translates that fixed subset of the split (``translation_subset``), None all of it;
    ``scoring`` says which metrics (COMET's checkpoint is loaded first: a bad one fails in seconds)."""
    run = get_run(db, run_id)
    cfg = run_config(run, device)
    checkpoint = adapter_at(db, run.id, step)
    pairs = translation_subset(split_pairs(db, cfg, split), n_pairs)
    if not pairs:
        raise LabError(f"the {split} split of dataset {cfg.data.dataset!r} has no pairs to translate")
    scoring = scoring or Scoring()
    comet = comet_scorer(scoring, cfg.train.device)
    model, tok = (models or GenerationModels(settings)).get(cfg, checkpoint)
    started = time.perf_counter()
    outputs = translate(cfg, model, tok, pairs, base, max_new_tokens, on_progress)
    seconds = (time.perf_counter() - started) / (len(pairs) * len(outputs))
    return store_and_score(
        db, run.id, checkpoint.step, split, pairs, outputs, seconds, scoring.metrics, comet
    )


def comet_scorer(scoring: Scoring, device: str):
    """The COMET model ``scoring`` asks for, on ``device`` (``auto``: CUDA when there is one); None
    when it asks for none."""
    if "comet" not in scoring.metrics or scoring.comet_checkpoint is None:
        return None
    from capo.comet_metric import CometScorer
    from capo.models import resolve_device

    return CometScorer(scoring.comet_checkpoint, str(resolve_device(device)))


def translation_subset(pairs: list[PairRecord], n_pairs: int | None) -> list[PairRecord]:
    """``n_pairs`` of ``pairs``, the same ones every time: in pair-id order, one from each direction
    in turn (directions in order of their first pair), so every direction is translated; None: all."""
    if n_pairs is None or n_pairs >= len(pairs):
        return pairs
    by_direction: dict[str, list[PairRecord]] = {}
    for pair in sorted(pairs, key=lambda p: p.pair_id):
        by_direction.setdefault(pair.direction, []).append(pair)
    queues = list(by_direction.values())
    chosen: list[PairRecord] = []
    for rank in range(max(len(q) for q in queues)):
        chosen.extend(q[rank] for q in queues if rank < len(q))
    return sorted(chosen[:n_pairs], key=lambda p: p.pair_id)


def translate(cfg: RunConfig, model, tok, pairs: list[PairRecord], base: bool, max_new_tokens, on_progress):
    """Greedy generations of the pairs' prompts by the adapter (and, with ``base``, the base model),
    ending at the template's end-of-turn token or at a turn marker it writes as text (zephyr's
    ``<|user|>``…, cut from the text): a base model that runs on into a next turn would otherwise
    write to ``max_new_tokens``."""
    from capo.benchmarks.render import stop_strings
    from capo.generate import generate, stop_token_ids
    from capo.templates import render_pair

    data = cfg.data
    rendered = [
        render_pair(tok, p.prompt, p.chosen, p.rejected, data.chat_template, data.response_separator)
        for p in pairs
    ]
    prompts = [r.prompt.ids for r in rendered]
    stops = stop_token_ids(tok, rendered[0].chosen.ids)
    total = len(pairs) * (2 if base else 1)
    outputs = {}
    for done_before, model_name in enumerate(MODELS[: 2 if base else 1]):
        report = (lambda n, b=done_before: on_progress(b * len(pairs) + n, total)) if on_progress else None
        outputs[model_name] = generate(
            model, tok, prompts, stops, max_new_tokens, cfg.train.eval_batch_size or cfg.train.batch_size,
            base=model_name == "base", on_progress=report, stop_strings=stop_strings(data.chat_template),
        )  # fmt: skip
    return outputs


def run_evaluation(
    db: Database,
    settings: Settings,
    evaluation_id: int,
    worker: str | None = None,
    stop_event: threading.Event | None = None,
    device: str | None = None,
    models: GenerationModels | None = None,
    n_pairs: int | None = None,
) -> str:
    """What a worker does with one evaluation id, in the job lifecycle (``capo_lab.lifecycle``):
    claim it for ``worker`` (default: this process), translate and score under a heartbeat on
    ``device`` (the worker's ``--device``), and finish it: succeeded, failed (one line stored, the
    traceback logged), cancelled, or interrupted when ``stop_event`` (a signal) is set."""
    if not claim_job(db, JobKind.EVALUATION, evaluation_id, worker or this_process()):
        return f"skipped (evaluation {evaluation_id} is not queued)"
    job = get_evaluation(db, evaluation_id)

    def evaluate(should_stop: Callable[[], bool]) -> WorkDone:
        progress = ProgressWriter(db, evaluation_id, should_stop)
        report = evaluate_translations(
            db, settings, job.run_id, job.step, job.split, job.base, job.max_new_tokens, progress,
            models, device, n_pairs,
        )  # fmt: skip
        done = report.n_sentences * len(report.truncated)
        return WorkDone(True, {"evaluated_step": report.step, "done": done, "total": done})

    stop = stop_event or threading.Event()
    status = work_on(db, JobKind.EVALUATION, evaluation_id, stop, settings.heartbeat_seconds, evaluate)
    return status or f"lost (evaluation {evaluation_id} became {get_evaluation(db, evaluation_id).status})"


class ProgressWriter:
    """``on_progress`` for a job: stores sentences done, at most every ``every`` seconds, and raises
    ``JobStopped`` once ``should_stop`` says so (checked after every batch), storing how far it got."""

    def __init__(
        self, db: Database, evaluation_id: int, should_stop: Callable[[], bool], every: float = 2.0
    ) -> None:
        self.db, self.evaluation_id, self.should_stop = db, evaluation_id, should_stop
        self.every, self.last = every, 0.0

    def __call__(self, done: int, total: int) -> None:
        stopping = self.should_stop()
        if stopping or done == total or time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            with self.db.write() as session:
                writes.update_evaluation(session, self.evaluation_id, done=done, total=total)
        if stopping:
            raise JobStopped


def evaluate_at_end(
    db: Database,
    settings: Settings,
    run_id: int,
    splits: tuple[str, ...],
    max_new_tokens: int,
    worker: str | None = None,
    stop_event: threading.Event | None = None,
    device: str | None = None,
) -> None:
    """``train.generate_at_end``: evaluate the last adapter (and the base) on each split, in this
    process, loading the model once for all of them; ``train.generate_at_end_pairs`` of each split."""
    n_pairs = run_config(get_run(db, run_id)).train.generate_at_end_pairs
    models = GenerationModels(settings)
    for split in splits:
        evaluation_id = queue_evaluation(db, run_id, lambda _id: None, "last", split, True, max_new_tokens)
        run_evaluation(db, settings, evaluation_id, worker, stop_event, device, models, n_pairs)
