"""Do the trained adapters translate better? Greedy translations of a split, stored and scored.

``evaluate_translations`` loads the run's base model and its adapter at one step,
translates the split's source prompts (rendered with the run's prompt and chat
template), stores every generation, scores them with sacrebleu against the
post-edits, and stores the scores as metrics ``{split}_translation/<metric>[/<direction>]``:
``chrf``, ``bleu``, ``ter``, ``chrf_vs_mt`` (trained), ``base_…`` (base model), ``p_chrf``,
``p_bleu``, ``p_ter`` (paired bootstrap), ``truncated``, ``base_truncated`` and
``seconds_per_sentence``. It loads a model, so it runs in the CLI or on the worker,
never in the web process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from capo_lab.database import Database
from capo_lab.errors import LabError
from capo_lab.runs import get_run, run_config, split_pairs
from capo_lab.settings import Settings
from storage import queries, writes
from storage.records import CheckpointRecord, PairRecord

MODELS = ("adapter", "base")


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


def evaluate_translations(
    db: Database,
    settings: Settings,
    run_id: int | str,
    step: int | str = "last",
    split: str = "eval",
    base: bool = False,
    max_new_tokens: int = 160,
    on_progress: Callable[[int, int], None] | None = None,
) -> TranslationReport:
    """Translate, store and score; ``on_progress(done, total)`` counts sentences as they finish."""
    run = get_run(db, run_id)
    cfg = run_config(run)
    checkpoint = adapter_at(db, run.id, step)
    pairs = split_pairs(db, cfg, split)
    if not pairs:
        raise LabError(f"the {split} split of dataset {cfg.data.dataset!r} has no pairs to translate")
    started = time.perf_counter()
    outputs = _translate(cfg, settings, checkpoint, pairs, base, max_new_tokens, on_progress)
    seconds = (time.perf_counter() - started) / (len(pairs) * len(outputs))
    return _store_and_score(db, run.id, checkpoint.step, split, pairs, outputs, seconds)


def _translate(cfg, settings, checkpoint, pairs: list[PairRecord], base, max_new_tokens, on_progress):
    from peft import PeftModel

    from capo.generate import generate, stop_token_ids
    from capo.models import load_base_model, resolve_device
    from capo.templates import render_pair

    loaded = load_base_model(cfg.model, settings.home_dir / "models", resolve_device(cfg.train.device))
    model = PeftModel.from_pretrained(loaded.model, checkpoint.path)
    tok, data = loaded.tokenizer, cfg.data
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
            base=model_name == "base", on_progress=report,
        )  # fmt: skip
    return outputs


def _store_and_score(db, run_id, step, split, pairs, outputs, seconds_per_sentence) -> TranslationReport:
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
            TranslationRow(p.direction, p.chosen, p.rejected, g.text, base[i].text if base else None)
            for i, (p, g) in enumerate(zip(pairs, outputs["adapter"], strict=True))
        ]
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
        values = {**vars(q.trained), **{f"p_{k}": getattr(q, f"p_{k}") for k in ("chrf", "bleu", "ter")}}
        if q.base is not None:
            values.update({f"base_{k}": v for k, v in vars(q.base).items()})
        rows.extend((f"{prefix}{k}{suffix}", float(v)) for k, v in values.items() if v is not None)
    return rows
