"""Do the trained adapters translate better? The web side of translation evaluations: queue one,
cancel it, read what the worker stored.

The worker (``worker.evaluate``) loads the run's base model and its adapter at one step, translates
the split's source prompts (rendered with the run's prompt and chat template), and hands the
generations to ``store_and_score``, which stores them, scores them with sacrebleu against the
post-edits, and stores the scores as metrics ``{split}_translation/<metric>[/<direction>]``:
``chrf``, ``bleu``, ``ter``, ``chrf_vs_mt`` (trained), ``comet`` (when asked for), ``base_…`` (base
model), ``p_chrf``, ``p_bleu``, ``p_ter``, ``p_comet`` (two-sided paired test,
``capo.translation_quality``), ``truncated``, ``base_truncated`` and ``seconds_per_sentence``.
What is scored is a ``Scoring`` (``scoring``: the metrics, checked once, and the COMET checkpoint).
Nothing here loads a model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from capo_lab.database import Database
from capo_lab.errors import LabError
from capo_lab.lifecycle import cancel_job, enqueue_job
from capo_lab.runs import get_run, run_config
from capo_lab.settings import Settings
from storage import queries, writes
from storage.records import CheckpointRecord, EvaluationRecord, JobKind

MODELS = ("adapter", "base")
LEXICAL = ("chrf", "bleu", "ter")  # capo.translation_quality's, without importing sacrebleu here


@dataclass(frozen=True)
class Scoring:
    """What a translation evaluation scores: ``metrics`` (of ``capo.translation_quality.METRICS``)
    and, when they include ``comet``, the COMET checkpoint (``capo.comet_metric``)."""

    metrics: tuple[str, ...] = LEXICAL
    comet_checkpoint: str | None = None


def scoring(metrics: str = ",".join(LEXICAL), comet_checkpoint: str | None = None) -> Scoring:
    """``--metrics chrf,bleu,ter,comet`` and ``--comet-checkpoint`` (default ``CAPO_LAB_COMET_CHECKPOINT``),
    checked: one line for an unknown metric, for comet without a checkpoint (saying how to get one),
    or for a checkpoint that is not there."""
    from capo.comet_metric import HOW_TO_GET, checkpoint_file
    from capo.translation_quality import parse_metrics

    chosen = parse_metrics(metrics)
    if "comet" not in chosen:
        return Scoring(chosen)
    checkpoint = comet_checkpoint or Settings().comet_checkpoint
    if not checkpoint:
        raise LabError(HOW_TO_GET)
    return Scoring(chosen, str(checkpoint_file(checkpoint)))  # a missing file: one line, before any work


@dataclass(frozen=True)
class TranslationReport:
    run_id: int
    step: int
    split: str
    n_sentences: int
    truncated: dict[str, int]  # model → generations that hit max_new_tokens
    seconds_per_sentence: float
    quality: list  # capo.translation_quality.DirectionQuality, one per direction, then "all"


def adapter_at(db: Database, run_id: int, step: int | str) -> CheckpointRecord:
    """The checkpoint (adapter) saved at ``step`` (``last``: the newest); one line naming the steps."""
    with db.read() as session:
        steps = queries.checkpoint_steps(session, run_id)
        wanted = steps[-1] if steps and step == "last" else int(step) if str(step).isdigit() else None
        found = queries.checkpoint_at_or_before(session, run_id, wanted) if wanted is not None else None
    if found is None or found.step != wanted:
        have = ", ".join(map(str, steps)) or "none yet"
        raise LabError(f"run {run_id} has no adapter at step {step}; steps with one: {have}")
    return found


def store_and_score(
    db, run_id, step, split, pairs, outputs, seconds_per_sentence, metrics=LEXICAL, comet=None
) -> TranslationReport:
    """Store every generation (``outputs``: model name → generations, in ``pairs``' order) and the
    ``metrics`` against the post-edits as metrics (``comet``: the COMET scorer when they include it);
    the report of both."""
    from capo.translation_quality import TranslationRow, translation_quality

    with db.write() as session:
        for model_name, generations in outputs.items():
            rows = [
                {
                    "pair_id": p.pair_id,
                    "direction": p.direction,
                    "text": g.text,
                    "n_tokens": g.n_tokens,
                    "truncated": g.truncated,
                }
                for p, g in zip(pairs, generations, strict=True)
            ]
            writes.replace_generations(session, run_id, step, split, model_name, rows)
    base = outputs.get("base")
    quality = translation_quality(
        [
            TranslationRow(
                p.direction, p.chosen, p.rejected, g.text, base[i].text if base else None, p.source_text
            )
            for i, (p, g) in enumerate(zip(pairs, outputs["adapter"], strict=True))
        ],
        metrics,
        comet.scores if comet is not None else None,
    )
    truncated = {m: sum(g.truncated for g in gens) for m, gens in outputs.items()}
    report = TranslationReport(run_id, step, split, len(pairs), truncated, seconds_per_sentence, quality)
    with db.write() as session:
        writes.replace_metrics(session, run_id, step, f"{split}_translation/", metric_rows(report))
    return report


def metric_rows(report: TranslationReport) -> list[tuple[str, float]]:
    """The report as metric rows ``{split}_translation/<name>[/<direction>]``."""
    prefix = f"{report.split}_translation/"
    rows = [
        (prefix + "truncated", float(report.truncated["adapter"])),
        (prefix + "seconds_per_sentence", report.seconds_per_sentence),
    ]
    if "base" in report.truncated:
        rows.append((prefix + "base_truncated", float(report.truncated["base"])))
    for q in report.quality:
        suffix = "" if q.direction == "all" else f"/{q.direction}"
        values = {**vars(q.trained), **{f"p_{k}": getattr(q, f"p_{k}") for k in (*LEXICAL, "comet")}}
        if q.base is not None:
            values.update({f"base_{k}": v for k, v in vars(q.base).items()})
        rows.extend((f"{prefix}{k}{suffix}", float(v)) for k, v in values.items() if v is not None)
    return rows


def queue_evaluation(
    db: Database,
    run_id: int | str,
    enqueue: Callable[[int], None],
    step: int | str = "last",
    split: str = "eval",
    base: bool = True,
    max_new_tokens: int | None = None,
) -> int:
    """Record an evaluation job (checked first: the run, the split, the step's adapter) and queue it.

    ``max_new_tokens`` defaults to the run's ``train.generate_max_new_tokens``."""
    run = get_run(db, run_id)
    max_new_tokens = max_new_tokens or run_config(run).train.generate_max_new_tokens
    if split not in ("eval", "validation"):
        raise LabError(f"split must be eval or validation, got {split!r}")
    if str(step) != "last":
        adapter_at(db, run.id, step)
    with db.write() as session:
        evaluation_id = writes.add_evaluation(session, run.id, str(step), split, base, max_new_tokens)
    enqueue_job(db, JobKind.EVALUATION, evaluation_id, enqueue)
    return evaluation_id


def get_evaluation(db: Database, evaluation_id: int | str) -> EvaluationRecord:
    """An evaluation job by id; ``LabError`` (one line) when there is none."""
    if not str(evaluation_id).isdigit():
        raise LabError(f"evaluation ids are numbers, got {evaluation_id!r}")
    with db.read() as session:
        job = queries.get_evaluation(session, int(evaluation_id))
    if job is None:
        raise LabError(f"no evaluation {evaluation_id}")
    return job


def cancel_evaluation(db: Database, evaluation_id: int | str) -> str:
    """Cancel a queued evaluation now, or ask a running one to stop after its current batch of
    sentences (it then ends ``cancelled``); returns what happened, ``LabError`` for any other."""
    job = get_evaluation(db, evaluation_id)
    done = cancel_job(db, JobKind.EVALUATION, job.id, "after its current batch")
    if done is None:
        status = get_evaluation(db, job.id).status
        raise LabError(
            f"evaluation {job.id} is {status}; only queued or running evaluations can be cancelled"
        )
    return done


@dataclass(frozen=True)
class PairTranslations:
    """One pair's generated translations beside the MT and the post-edit, with sentence chrF each."""

    pair_id: int
    step: int
    split: str
    post_edit: str
    mt: str
    trained: str | None
    base: str | None
    chrf_trained: float | None  # sentence chrF against the post-edit
    chrf_base: float | None
    chrf_mt: float


@dataclass(frozen=True)
class DirectionChrf:
    """A bar of the per-direction chart: chrF base → trained and the paired test's p-value."""

    direction: str
    base: float | None
    trained: float
    p_value: float | None

    @property
    def difference(self) -> float | None:
        """trained − base in chrF points; 0 for equal scores (float noise aside); None without a base."""
        from capo.translation_quality import TIE

        if self.base is None:
            return None
        return 0.0 if abs(self.trained - self.base) <= TIE else self.trained - self.base


def pair_translations(
    db: Database, run_id: int, pair_id: int, split: str = "eval"
) -> PairTranslations | None:
    """The pair's generations at the latest evaluated step of ``split``; None when none were made."""
    from sacrebleu.metrics import CHRF

    with db.read() as session:
        steps = queries.generation_steps(session, run_id, split)
        if not steps:
            return None
        texts = {
            g.model: g.text
            for g in queries.generations(session, run_id, split, steps[-1])
            if g.pair_id == pair_id
        }
        pair = next(iter(queries.get_pairs(session, [pair_id])), None)
    if pair is None or not texts:
        return None

    def chrf(text: str | None) -> float | None:
        return None if text is None else CHRF().sentence_score(text, [pair.chosen]).score

    trained, base = texts.get("adapter"), texts.get("base")
    return PairTranslations(
        pair_id,
        steps[-1],
        split,
        pair.chosen,
        pair.rejected,
        trained,
        base,
        chrf(trained),
        chrf(base),
        chrf(pair.rejected),
    )


def direction_chrf(db: Database, run_id: int, split: str = "eval") -> list[DirectionChrf]:
    """Per-direction chrF at the latest evaluated step (metrics ``{split}_translation/…``)."""
    prefix = f"{split}_translation/"
    with db.read() as session:
        rows = [m for m in queries.metrics(session, run_id) if m.key.startswith(prefix)]
    if not rows:
        return []
    last = max(m.step for m in rows)
    values = {m.key[len(prefix) :]: m.value for m in rows if m.step == last}
    directions = sorted(k.split("/", 1)[1] for k in values if k.startswith("chrf/"))
    return _bars(values, directions)


def _bars(values: dict[str, float], directions: list[str]) -> list[DirectionChrf]:
    return [_bar(values, d, f"/{d}") for d in directions] + [_bar(values, "all", "")]


def _bar(values: dict[str, float], direction: str, suffix: str) -> DirectionChrf:
    bar = DirectionChrf(direction, *(values.get(f"{k}{suffix}") for k in ("base_chrf", "chrf", "p_chrf")))
    if bar.difference == 0 and bar.p_value is not None:
        return replace(bar, p_value=1.0)  # equal scores; stored before issue 19, they may say p = 0.001
    return bar
