"""``train(cfg, inputs, sink, should_stop)``: LoRA preference training with any registered objective.

One code path for the CLI and the worker. The policy is the base model with
LoRA adapters; the base scores (the same model with adapters disabled) are
computed once before training, under the policy's precision (``train.bf16``
autocast, capo/precision.py), and cached for every objective: they are DPO's
reference and the baseline of ``rewards/accuracies_vs_base``. Evaluation runs at
step 0, every ``eval_every`` steps and at the last step, on each split of
``train.eval_splits`` (eval, validation; the train split too at step 0 and the last step). A fresh
adapter is the base model (LoRA's B starts at zero), so step 0's scores, per-token log-probs
included, come from the base scoring pass, never from a second forward pass over the same pairs.
Checkpoints every ``checkpoint_every`` steps, at the end, and when asked to stop.

Data parallel: in a process group (``train.num_processes`` ranks, started by
``worker.launch``) every rank scores its share of each batch, DDP averages the
LoRA gradients, and rank 0 alone logs the gathered results and checkpoints.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from transformers import get_scheduler

from capo.batching import epoch_order, length_grouped_order, token_micro_batches
from capo.checkpoints import load_checkpoint, save_checkpoint
from capo.config import RunConfig
from capo.cpu_memory import trim_heap_between_layers
from capo.distributed import World, barrier, current_world, gather_dicts, gather_lists, main_decides, shard
from capo.evaluation import PairScoreRow, aggregate, score_rows
from capo.flex_mask import train_without_flex_on_cpu
from capo.models import LoadedModel, add_lora, load_base_model, resolve_device
from capo.objectives import ObjectiveSpec, PairLogps, compute_objective, get_objective
from capo.packing import (
    PackedBatch,
    batch_response_logps,
    batch_token_logps,
    make_batch,
    pair_tokens,
    scoring_layout,
)
from capo.precision import bf16_autocast, keep_4bit_layers_differentiable, optimizer_for, paged_adamw
from capo.schedule import planned_steps, steps_per_epoch
from capo.scoring import (
    SequenceBatch,
    TokenizedPair,
    tokenize_pair,
)
from capo.templates import check_template


class PairInput(Protocol):
    pair_id: int
    direction: str
    prompt: str
    chosen: str
    rejected: str
    tie: bool  # chosen equals rejected as text, decided with the pair (``capo.data.triples.is_tie``)


class MetricSink(Protocol):
    def log_metrics(self, step: int, values: Mapping[str, float]) -> None: ...
    def log_pair_scores(self, step: int, split: str, rows: Sequence[PairScoreRow]) -> None: ...
    def log_checkpoint(self, step: int, path: Path) -> None: ...
    def log_progress(self, step: int, total_steps: int) -> None: ...
    def log_note(self, message: str) -> None: ...
    def log_base_scores(self, scores: Mapping[int, tuple[float, float]]) -> None: ...
    def log_token_pieces(self, pieces: Mapping[int, tuple[list[str], list[str]]]) -> None: ...


@dataclass(frozen=True)
class TrainInputs:
    train_pairs: Sequence[PairInput]
    eval_pairs: Sequence[PairInput]
    run_dir: Path
    model_cache_dir: Path
    resume_from: Path | None = None
    validation_pairs: Sequence[PairInput] = ()
    base_scores: Mapping[int, tuple[float, float]] = field(default_factory=dict)  # stored by earlier runs


@dataclass(frozen=True)
class RunResult:
    status: Literal["succeeded", "stopped"]
    step: int
    total_steps: int
    final_metrics: dict[str, float]
    # Wall seconds by phase (``PHASES``), as measured on this rank: where a run's time went.
    seconds: dict[str, float] = field(default_factory=dict)


# What ``RunResult.seconds`` times: loading (base model, LoRA, optimizer), tokenizing, base_scoring
# (the reference pass), eval_scoring (each evaluation's forward passes and rows), logging_scores
# (handing rows to the sink: the database), steps (forward, backward, optimizer; their metrics
# logged), checkpoints; ``total`` is all of ``train``.
PHASES = ("loading", "tokenizing", "base_scoring", "eval_scoring", "logging_scores", "steps", "checkpoints")


class _Clock:
    """Adds wall seconds per phase: ``with clock("steps"): ...``."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.started = time.perf_counter()
        self.open: dict[str, float] = {}

    def start(self, phase: str) -> None:
        self.open[phase] = time.perf_counter()

    def stop(self, phase: str) -> None:
        self.seconds[phase] += time.perf_counter() - self.open.pop(phase)

    @contextlib.contextmanager
    def __call__(self, phase: str):
        self.start(phase)
        try:
            yield
        finally:
            self.stop(phase)

    def result(self) -> dict[str, float]:
        return {**self.seconds, "total": time.perf_counter() - self.started}


def _log_timings(sink: MetricSink, step: int, clock: _Clock) -> None:
    """The wall seconds spent so far in each phase as ``seconds/<phase>`` metrics (``seconds/total``
    too), so an ETA can be estimated per phase from the run's own timings as they come."""
    sink.log_metrics(step, {f"seconds/{phase}": value for phase, value in clock.result().items()})


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the pairs."""


class _SilentSink:
    """What ranks other than 0 log to: nothing (rank 0 logs the gathered results)."""

    def log_metrics(self, step, values) -> None: ...
    def log_pair_scores(self, step, split, rows) -> None: ...
    def log_checkpoint(self, step, path) -> None: ...
    def log_progress(self, step, total_steps) -> None: ...
    def log_note(self, message) -> None: ...
    def log_base_scores(self, scores) -> None: ...
    def log_token_pieces(self, pieces) -> None: ...


class _PolicyLogps(torch.nn.Module):
    """The policy's summed response log-probs as a module, so DistributedDataParallel can wrap it."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: SequenceBatch | PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        out = batch_response_logps(self.model, batch)
        return out.chosen, out.rejected


class _Scorer:
    """Tokenised pairs, the policy, and cached reference log-probs, all scored under ``autocast``."""

    def __init__(
        self, cfg: RunConfig, loaded: LoadedModel, spec: ObjectiveSpec, world: World, autocast
    ) -> None:
        self.cfg, self.loaded, self.spec, self.world, self.autocast = cfg, loaded, spec, world, autocast
        self.model = loaded.model
        self.policy: torch.nn.Module = _PolicyLogps(loaded.model)
        if world.size > 1:
            device = loaded.device
            # Every rank loaded the same base weights: only the trainable (LoRA) parameters need DDP.
            frozen = [f"model.{n}" for n, p in loaded.model.named_parameters() if not p.requires_grad]
            buffers = [f"model.{n}" for n, _ in loaded.model.named_buffers()]
            DDP._set_params_and_buffers_to_ignore_for_model(self.policy, frozen + buffers)
            self.policy = DDP(
                self.policy,
                device_ids=[device.index] if device.type == "cuda" else None,
                broadcast_buffers=False,
            )
        self.reference: dict[int, tuple[float, float]] = {}
        # Per-token base log-probs (chosen, rejected) of the pairs scored with ``per_token``: step 0's
        # held-out rows, heat maps included, without a second pass (a fresh adapter is the base).
        self.reference_tokens: dict[int, tuple[tuple[float, ...], tuple[float, ...]]] = {}
        self.params = cfg.objective.model_dump()
        self.packed, self.layout_note = scoring_layout(cfg.train.scoring, loaded.model)

    def batch(self, pairs: Sequence[TokenizedPair]) -> SequenceBatch | PackedBatch:
        """The pairs as one batch on the device: packed blocks, one block a row, or padded rows."""
        per_row = 1 if self.cfg.train.scoring == "prompt_shared" else None
        pad_id = self.loaded.tokenizer.pad_token_id
        return make_batch(pairs, pad_id, self.packed, pairs_per_row=per_row).to(self.loaded.device)

    def tokenize(self, pairs: Sequence[PairInput]) -> list[TokenizedPair]:
        data = self.cfg.data
        return [
            tokenize_pair(
                self.loaded.tokenizer,
                p.pair_id,
                p.direction,
                p.prompt,
                p.chosen,
                p.rejected,
                data.max_length,
                data.response_separator,
                data.chat_template,
                tie=p.tie,
            )
            for p in pairs
        ]

    def logps(self, pairs: Sequence[TokenizedPair]) -> PairLogps:
        """Policy log-probs (through DDP when data-parallel) and the cached reference ones."""
        batch = self.batch(pairs)
        with self.autocast:
            chosen, rejected = self.policy(batch)
        b = batch.num_pairs
        return self._with_reference(pairs, chosen, rejected, batch.n_tokens[:b], batch.n_tokens[b:])

    def _with_reference(self, pairs, chosen, rejected, chosen_tokens, rejected_tokens) -> PairLogps:
        ref_w = ref_l = None
        if all(p.pair_id in self.reference for p in pairs):
            ref = [self.reference[p.pair_id] for p in pairs]
            ref_w = torch.tensor([r[0] for r in ref], device=chosen.device)
            ref_l = torch.tensor([r[1] for r in ref], device=chosen.device)
        return PairLogps(chosen, rejected, chosen_tokens, rejected_tokens, ref_w, ref_l)

    @torch.no_grad()
    def cache_reference(
        self, pairs: Sequence[TokenizedPair], batch_size: int, per_token: bool = False
    ) -> dict[int, tuple[float, float]]:
        """Base scores: the same weights with LoRA adapters disabled, scored once (DPO's reference);
        ``per_token`` keeps each token's log-prob too (``reference_tokens``), for step 0's rows.

        Pairs already known (``TrainInputs.base_scores``) are skipped; returns the newly scored ones."""
        known = set(self.reference)
        todo = sorted((p for p in pairs if p.pair_id not in self.reference), key=lambda p: p.length)
        todo = shard(todo, self.world)
        self.model.eval()
        with self.model.disable_adapter(), self.autocast:
            for start in range(0, len(todo), batch_size):
                chunk = todo[start : start + batch_size]
                batch = self.batch(chunk)
                out = batch_response_logps(self.model, batch, per_token=per_token)
                for p, w, r in zip(chunk, out.chosen.tolist(), out.rejected.tolist(), strict=True):
                    self.reference[p.pair_id] = (w, r)
                if per_token:
                    tokens = batch_token_logps(batch, out.token_logps.float())
                    b = len(chunk)
                    for i, p in enumerate(chunk):
                        self.reference_tokens[p.pair_id] = (tuple(tokens[i]), tuple(tokens[b + i]))
        self.reference = gather_dicts(self.reference, self.world)
        if per_token:
            self.reference_tokens = gather_dicts(self.reference_tokens, self.world)
        return {pid: scores for pid, scores in self.reference.items() if pid not in known}

    def has_base_tokens(self, pairs: Sequence[TokenizedPair]) -> bool:
        return all(p.pair_id in self.reference_tokens for p in pairs)

    @torch.no_grad()
    def base_rows(self, pairs: Sequence[TokenizedPair]) -> list[PairScoreRow]:
        """Step-0 scores of a fresh adapter from the base cache: LoRA's B starts at zero, so the policy
        is the base model and its log-probs are the cached ones (per token too, where cached)."""
        ref = torch.tensor([self.reference[p.pair_id] for p in pairs], dtype=torch.float32)
        counts = torch.tensor([[len(p.chosen_ids), len(p.rejected_ids)] for p in pairs])
        logps = PairLogps(ref[:, 0], ref[:, 1], counts[:, 0], counts[:, 1], ref[:, 0], ref[:, 1])
        rows = _rows(pairs, logps, compute_objective(self.spec.name, logps, self.params))
        tokens = self.reference_tokens
        return [
            replace(row, chosen_token_logps=tokens[p.pair_id][0], rejected_token_logps=tokens[p.pair_id][1])
            if p.pair_id in tokens
            else row
            for p, row in zip(pairs, rows, strict=True)
        ]

    @torch.no_grad()
    def evaluate(self, pairs: Sequence[TokenizedPair], batch_size: int) -> list[PairScoreRow]:
        """Scores of every pair, each rank scoring its share; every rank gets all rows."""
        self.model.eval()
        pairs = sorted(pairs, key=lambda p: p.length)  # similar lengths batched together: less padding
        pairs = shard(pairs, self.world)
        rows: list[PairScoreRow] = []
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            batch = self.batch(chunk)
            with self.autocast:
                out = batch_response_logps(self.model, batch, per_token=True)  # not through DDP: no gradient
            logps = self._with_reference(
                chunk, out.chosen, out.rejected, out.chosen_tokens, out.rejected_tokens
            )
            result = compute_objective(self.spec.name, logps, self.params)
            per_token = batch_token_logps(batch, out.token_logps.float())
            b = len(chunk)
            rows.extend(
                replace(
                    row, chosen_token_logps=tuple(per_token[i]), rejected_token_logps=tuple(per_token[b + i])
                )
                for i, row in enumerate(_rows(chunk, logps, result))
            )
        return gather_lists(rows, self.world)

    def token_pieces(self, pairs: Sequence[TokenizedPair]) -> dict[int, tuple[list[str], list[str]]]:
        """Each response's tokens as text, for heat maps drawn from storage (no tokenizer needed there)."""
        decode = self.loaded.tokenizer.decode
        return {
            p.pair_id: ([decode([t]) for t in p.chosen_ids], [decode([t]) for t in p.rejected_ids])
            for p in pairs
        }


def _rows(pairs: Sequence[TokenizedPair], logps: PairLogps, out) -> list[PairScoreRow]:
    return score_rows(
        [p.pair_id for p in pairs],
        [p.direction for p in pairs],
        logps,
        out,
        ties=[p.tie for p in pairs],
        truncated_identical=[p.truncated_identical for p in pairs],
    )


def _check_finite(loss: torch.Tensor, step: int, pairs: Sequence[TokenizedPair], world: World) -> None:
    """Raise on every rank when any rank's loss is NaN or infinite (so no rank waits forever)."""
    bad = [p.pair_id for p, v in zip(pairs, loss.tolist(), strict=True) if not math.isfinite(v)]
    bad = gather_lists(bad, world)
    if bad:
        raise NonFiniteLossError(f"loss is not finite at step {step + 1} for pair(s) {sorted(bad)}")


def _optimizer(cfg: RunConfig, model: torch.nn.Module, device: torch.device, sink: MetricSink):
    """torch AdamW (fused where ``optimizer_for`` says so), or bitsandbytes' paged AdamW where asked and
    it steps on ``device``."""
    params = [p for p in model.parameters() if p.requires_grad]
    lr, weight_decay = cfg.optim.lr, cfg.optim.weight_decay
    name = optimizer_for(cfg.optim.optimizer, device)
    if name == "paged_adamw":
        optimizer, notes = paged_adamw(params, lr, weight_decay, device)
        for note in notes:
            sink.log_note(note)
        if optimizer is not None:
            return optimizer
    fused = True if name == "adamw_fused" else None  # None: torch's default (foreach where it can)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused)


def train(
    cfg: RunConfig,
    inputs: TrainInputs,
    sink: MetricSink,
    should_stop: Callable[[], bool] = lambda: False,
    loaded: LoadedModel | None = None,
) -> RunResult:
    """Train LoRA adapters on ``inputs.train_pairs``; raises on a non-finite loss.

    ``loaded`` passes a base model already in memory (benchmarks); otherwise ``cfg.model`` is loaded.
    """
    if not inputs.train_pairs:
        raise ValueError("the train split is empty")
    torch.manual_seed(cfg.train.seed)  # the same seed on every rank: identical LoRA initialisation
    world = current_world()
    if not world.is_main:
        sink = _SilentSink()
    clock = _Clock()
    clock.start("loading")
    device = resolve_device(cfg.train.device)
    loaded = loaded or load_base_model(cfg.model, inputs.model_cache_dir, device)
    autocast, precision_notes = bf16_autocast(cfg.train.bf16, loaded.model, device)
    flex_note = train_without_flex_on_cpu(loaded.model)
    for note in loaded.notes + precision_notes + ([flex_note] if flex_note else []):
        sink.log_note(note)
    keep_4bit_layers_differentiable(loaded.model)  # the step-0 evaluation must not break 4-bit backward
    loaded.model = add_lora(loaded.model, cfg.lora, cfg.train.seed)
    if cfg.train.gradient_checkpointing:
        loaded.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.train.trim_cpu_heap and device.type == "cpu":
        trim_heap_between_layers(loaded.model)
    check_template(loaded.tokenizer, cfg.data.chat_template, loaded.name)
    spec = get_objective(cfg.objective.name)
    scorer = _Scorer(cfg, loaded, spec, world, autocast)
    clock.stop("loading")
    if scorer.layout_note:
        sink.log_note(scorer.layout_note)
    with clock("tokenizing"):
        train_set = scorer.tokenize(inputs.train_pairs)
        held_out = {
            "eval": scorer.tokenize(inputs.eval_pairs),
            "validation": scorer.tokenize(inputs.validation_pairs),
        }
    held_out = {split: held_out[split] for split in cfg.train.eval_splits}
    every_pair = train_set + [p for pairs in held_out.values() for p in pairs]
    truncated = sum(p.truncated for p in every_pair)
    if truncated:
        sink.log_note(f"{truncated} pair(s) longer than max_length={cfg.data.max_length} were truncated")
    identical = sum(p.truncated_identical for p in every_pair)
    if identical:
        sink.log_note(
            f"{identical} pair(s) have different texts but the same response tokens within "
            f"max_length={cfg.data.max_length}: not ties, but their accuracy is float noise "
            "(rewards/truncated_identical_fraction)"
        )
    eval_bs = cfg.train.eval_batch_size or cfg.train.batch_size
    scorer.reference.update(inputs.base_scores)
    # Held-out pairs keep their per-token base log-probs: step 0 evaluates them from this pass.
    fresh_start = inputs.resume_from is None and cfg.train.evaluate
    with clock("base_scoring"):
        for split, per_token in ((train_set, False), *((p, fresh_start) for p in held_out.values())):
            new = scorer.cache_reference(split, eval_bs, per_token)  # batched as evaluate() batches them
            if new:
                sink.log_base_scores(new)

    with clock("loading"):
        total = planned_steps(cfg, len(train_set))
        lengths = [p.length for p in train_set]
        pair_token_counts = [pair_tokens(p) for p in train_set]
        per_epoch = steps_per_epoch(len(train_set), cfg.train.batch_size, cfg.train.grad_accum)
        optimizer = _optimizer(cfg, loaded.model, device, sink)
        scheduler = get_scheduler(
            cfg.optim.scheduler,
            optimizer,
            num_warmup_steps=int(cfg.optim.warmup_ratio * total),
            num_training_steps=total,
        )
        step = (
            load_checkpoint(inputs.resume_from, loaded.model, optimizer, scheduler)
            if inputs.resume_from
            else 0
        )

    def evaluate(at_step: int, with_train: bool) -> dict[str, float]:
        metrics: dict[str, float] = {}
        splits = {**held_out, "train": train_set} if with_train else held_out
        for split, pairs in splits.items():
            # A fresh adapter is the base: its scores are the cached ones, no forward pass (the train
            # split's without per-token log-probs, which only held-out heat maps draw).
            fresh = at_step == 0 and (split == "train" or scorer.has_base_tokens(pairs))
            with clock("eval_scoring"):
                rows = scorer.base_rows(pairs) if fresh else scorer.evaluate(pairs, eval_bs)
            with clock("logging_scores"):
                sink.log_pair_scores(at_step, split, rows)
            metrics.update(aggregate(rows, spec.name, scorer.params, prefix=f"{split}_"))
        sink.log_metrics(at_step, metrics)
        return metrics

    if cfg.train.evaluate:
        sink.log_token_pieces(scorer.token_pieces([p for pairs in held_out.values() for p in pairs]))
    if step == 0 and cfg.train.evaluate:
        evaluate(0, with_train=cfg.train.score_train_split)
    if step == 0:  # a resumed run's start step already has its timings
        _log_timings(sink, step, clock)
    sink.log_progress(step, total)
    final: dict[str, float] = {}
    while step < total:
        started = time.perf_counter()
        clock.start("steps")
        epoch, position = divmod(step, per_epoch)
        bs, accum = cfg.train.batch_size, cfg.train.grad_accum
        order = (
            length_grouped_order(lengths, bs, cfg.train.seed, epoch)
            if cfg.train.group_by_length
            else epoch_order(len(train_set), cfg.train.seed, epoch)
        )
        step_pairs = order[position * accum * bs : (position + 1) * accum * bs]
        micro = (
            token_micro_batches(step_pairs, pair_token_counts, cfg.train.micro_batch_tokens)
            if cfg.train.micro_batch_tokens
            else [step_pairs[i : i + bs] for i in range(0, len(step_pairs), bs)]
        )
        n_step = sum(len(m) for m in micro)
        loaded.model.train()
        rows: list[PairScoreRow] = []
        for indices in micro:
            # Each rank takes its share; DDP averages gradients over ranks, hence × world.size.
            pairs = shard([train_set[i] for i in indices], world)
            weight = 1.0
            if not pairs:  # fewer pairs than ranks: score one with weight 0 so gradients still sync
                pairs, weight = [train_set[indices[0]]], 0.0
            logps = scorer.logps(pairs)  # under autocast; the loss is computed in float32
            out = compute_objective(spec.name, logps, scorer.params)
            _check_finite(out.loss.detach(), step, pairs, world)
            (out.loss.sum() * (weight * world.size / n_step)).backward()
            if weight:
                rows.extend(_rows(pairs, logps, out))
        rows = gather_lists(rows, world)
        grad_norm = (
            torch.nn.utils.clip_grad_norm_(loaded.model.parameters(), cfg.optim.max_grad_norm)
            if cfg.optim.max_grad_norm
            else torch.tensor(float("nan"))
        )
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        elapsed = time.perf_counter() - started
        sink.log_metrics(
            step,
            {
                **aggregate(rows, spec.name, scorer.params),
                "learning_rate": lr,
                "grad_norm": float(grad_norm),
                "epoch": step / per_epoch,
                "throughput/pairs_per_second": n_step / elapsed,
            },
        )
        clock.stop("steps")
        if cfg.train.evaluate and (step % cfg.train.eval_every == 0 or step == total):
            final = evaluate(step, with_train=step == total and cfg.train.score_train_split)
        stop = main_decides(should_stop() if world.is_main else False, world)
        if step % cfg.train.checkpoint_every == 0 or step == total or stop:
            with clock("checkpoints"):
                if world.is_main:
                    sink.log_checkpoint(
                        step, save_checkpoint(inputs.run_dir, step, loaded.model, optimizer, scheduler)
                    )
                barrier(world)
        _log_timings(sink, step, clock)
        sink.log_progress(step, total)
        if stop and step < total:
            return RunResult("stopped", step, total, final, clock.result())
    return RunResult("succeeded", step, total, final, clock.result())
