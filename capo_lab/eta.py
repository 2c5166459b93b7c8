"""A training run's time left, phase by phase, from its own timings as they come; pure functions.

The trainer logs the wall seconds spent so far in each phase as metric rows ``seconds/<phase>`` at
step 0 and after every step (``capo.train.PHASES``; a resumed run's clock restarts from 0 at its
resume step). Spreading everything over the steps (elapsed / steps done × steps left) counts the
base scoring pass, which happens once, as if it recurred every step, and says nothing before the
first step. Here each phase is estimated on its own:

- steps: the run's mean step so far × steps left (before the first: ``STEP_PASSES`` base passes a pair);
- evaluations (``train.eval_every`` and the last step; the held-out splits, and the train split at
  the end when ``train.score_train_split``): the mean measured evaluation pair once one has run;
  before, ``EVAL_PASSES`` of the pair's base scoring pass (the adapter is on now), plus storing
  its rows at the rate step 0's rows were stored;
- checkpoints (``train.checkpoint_every`` and the last step): the mean measured one, else
  ``CHECKPOINT_SECONDS``;
- the end-of-run translation (``train.generate_at_end``: the adapter and the base each translate
  ``generate_at_end_pairs`` of every held-out split, in batches): loading the generation model
  (``GENERATION_LOAD_SHARE`` of the run's own loading) and ``max_new_tokens`` decoding steps a
  batch, each ``DECODE_STEP_PASSES`` of a pair's base scoring pass (which averages in the
  translations that stop early).

The ratios are measured in one whole paper-cpu run on the development machine
(``bench/run_overhead.py --full``, evaluated at steps 0, 8 and 16, at a load average of about 2;
``bench/README.md``, "A run's overhead"): base scoring 0.739 s a pair, evaluation with the adapter
on 0.831 s a pair, a step of 8 pairs 14.8 s, 4 translation batches of 8 (generations ending at EOS
or a turn marker, at most 160 tokens) in 59.5 s, the generation model loaded in 10.5 s against the
trainer's 64.1 s. That is a different run from the one ``tests/capo_lab/test_eta_recorded.py``
checks against (the README's first run, evaluated at 0 and 16).

Before a run has logged anything (queued, or still loading) the same plan is priced at
``SECONDS_PER_PAIR_TOKEN``, a rough rate per scored pair-token for each built-in model on the
development machine (2 CPU cores, idle; other sessions' load made every figure up to 4× slower):
an order of magnitude, marked ``rough``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from capo.config import RunConfig
from storage.records import DatasetInfo, MetricRow, RunRecord

TIMING_PREFIX = "seconds/"
ONE_OFF_PHASES = ("loading", "tokenizing", "base_scoring")  # all spent before step 0's row

# In units of one pair's base scoring pass (bench/README.md's run, see above):
STEP_PASSES = 2.5  # a training step, per pair: forward and backward (14.8 s / 8 pairs / 0.739 s)
EVAL_PASSES = 1.12  # an evaluation, per pair: the adapter's unmerged LoRA products on (0.831 / 0.739)
# One of a batch's max_new_tokens decoding steps, generations that stop early averaged in
# (59.5 s / (4 batches × 160 steps) / 0.739 s).
DECODE_STEP_PASSES = 0.126
GENERATION_LOAD_SHARE = 0.16  # loading the generation model, of the trainer's loading (10.5 / 64.1)
# Saving a LoRA adapter and the optimizer state: seconds, until the run has saved one itself.
CHECKPOINT_SECONDS = 2.0
# Rough rates for queued runs, per pair-token of a base scoring pass (about 0.55 s a Gemma pair on
# the idle development machine), and the one-off load; a model not listed here gets no estimate
# before its run has logged its own timings.
SECONDS_PER_PAIR_TOKEN = {"gemma-3-270m": 3.5e-3, "tiny-random-llama": 5e-4}
LOAD_SECONDS = {"gemma-3-270m": 60.0, "tiny-random-llama": 5.0}
# Tokens of one [prompt | chosen | rejected] pair of sentence-level MTPE data, at most max_length.
TYPICAL_PAIR_TOKENS = 160


@dataclass(frozen=True)
class RunPlan:
    """What a run does from start to end, from its config and its dataset's split sizes."""

    model: str
    total_steps: int
    pairs_per_step: int
    train_pairs: int
    held_out_pairs: int  # summed over train.eval_splits
    eval_steps: tuple[int, ...]  # evaluations after step 0 (step 0 reuses the base scoring pass)
    score_train_at_end: bool
    checkpoint_steps: tuple[int, ...]
    translated: tuple[int, ...]  # end of run: pairs of each held-out split, each by adapter and base
    max_new_tokens: int
    generation_batch: int
    tokens_per_pair: int


def plan_run(cfg: RunConfig, split_sizes: Mapping[str, int], total_steps: int) -> RunPlan:
    """The run's plan; ``split_sizes``: pairs per split (train, eval, validation) of its dataset
    (directions it leaves out excluded); ``total_steps``: its planned steps."""
    train = cfg.train
    steps = range(1, total_steps + 1)
    held_out = [split_sizes.get(split, 0) for split in train.eval_splits]
    at_end = train.generate_at_end_pairs
    return RunPlan(
        model=cfg.model.name_or_path,
        total_steps=total_steps,
        pairs_per_step=train.batch_size * train.grad_accum,
        train_pairs=split_sizes.get("train", 0),
        held_out_pairs=sum(held_out),
        eval_steps=tuple(s for s in steps if s % train.eval_every == 0 or s == total_steps)
        if train.evaluate
        else (),
        score_train_at_end=train.evaluate and train.score_train_split,
        checkpoint_steps=tuple(s for s in steps if s % train.checkpoint_every == 0 or s == total_steps),
        translated=tuple(min(n, at_end or n) for n in held_out) if train.generate_at_end else (),
        max_new_tokens=train.generate_max_new_tokens,
        generation_batch=train.eval_batch_size or train.batch_size,
        tokens_per_pair=min(cfg.data.max_length, TYPICAL_PAIR_TOKENS),
    )


@dataclass(frozen=True)
class PhaseClock:
    """A run's cumulative phase seconds at the first step its clock logged (``start``; zeros for a
    resumed run, whose clock restarts at ``start_step``) and at the latest (``latest``)."""

    start_step: int
    start: Mapping[str, float]
    step: int
    latest: Mapping[str, float]

    def spent(self, *phases: str) -> float:
        """Seconds spent in ``phases`` between the clock's start and its latest row."""
        return sum(self.latest.get(p, 0.0) - self.start.get(p, 0.0) for p in phases)


def read_clock(rows: Iterable[MetricRow], resumed_from: int | None = None) -> PhaseClock | None:
    """The clock of the run's current attempt from its metric rows (``seconds/<phase>``); rows of an
    earlier attempt (at or before ``resumed_from``) are ignored; None before the first row. Given only
    its latest step's rows (a table refreshed every few seconds reads no more), step 0's evaluation
    is counted with the later ones, which overstates an evaluation by that cheap one's share."""
    by_step: dict[int, dict[str, float]] = {}
    after = -1 if resumed_from is None else resumed_from
    for row in rows:
        if row.key.startswith(TIMING_PREFIX) and row.step > after:
            by_step.setdefault(row.step, {})[row.key.removeprefix(TIMING_PREFIX)] = row.value
    if not by_step:
        return None
    latest = max(by_step)
    if resumed_from is not None:
        return PhaseClock(resumed_from, {}, latest, by_step[latest])
    first = min(by_step)
    if first > 0:  # only the latest rows were read: the one-off phases are as they were at step 0
        return PhaseClock(
            0, {p: by_step[latest].get(p, 0.0) for p in ONE_OFF_PHASES}, latest, by_step[latest]
        )
    return PhaseClock(first, by_step[first], latest, by_step[latest])


@dataclass(frozen=True)
class Estimate:
    """Seconds left in each phase (``steps``, ``evaluations``, ``checkpoints``, ``translation``, and
    ``startup`` before the first row); ``rough`` when priced from the config, not the run's timings."""

    parts: Mapping[str, float]
    rough: bool
    already: float = 0.0  # seconds of it spent since it was priced (since the latest row)
    next_row: float = 0.0  # of it, the work before the next row (the next step, its evaluation…)

    @property
    def seconds(self) -> float:
        return max(sum(self.parts.values()) - self.already, 0.0)


def pass_seconds(plan: RunPlan, clock: PhaseClock) -> float | None:
    """Seconds one pair's base scoring pass takes in this run, from that pass (every train and
    held-out pair once); from its steps instead when the pass was nearly empty (base scores reused
    from an earlier run: under a tenth of what the steps imply). None when neither says."""
    base_pairs = plan.train_pairs + plan.held_out_pairs
    from_base = clock.start.get("base_scoring", 0.0) / base_pairs if base_pairs else 0.0
    steps_done = clock.step - clock.start_step
    from_steps = (
        clock.spent("steps") / steps_done / (plan.pairs_per_step * STEP_PASSES) if steps_done > 0 else 0.0
    )
    return (from_base if from_base >= from_steps / 10 else from_steps) or None


def time_left(plan: RunPlan, clock: PhaseClock) -> Estimate:
    """The run's time left after its clock's latest row, from its own timings."""
    step = clock.step
    per_pass = pass_seconds(plan, clock) or 0.0
    done = step - clock.start_step
    per_step = clock.spent("steps") / done if done > 0 else plan.pairs_per_step * STEP_PASSES * per_pass
    evals_left = [s for s in plan.eval_steps if s > step]
    per_eval, per_pair = _evaluation_seconds(plan, clock, per_pass)
    train_at_end = plan.train_pairs * per_pair if plan.score_train_at_end and evals_left else 0.0
    saved = sum(clock.start_step < s <= step for s in plan.checkpoint_steps)
    per_checkpoint = clock.spent("checkpoints") / saved if saved else CHECKPOINT_SECONDS
    loading = clock.start.get("loading", 0.0) if clock.start_step == 0 else clock.latest.get("loading", 0.0)
    translation = _translation_seconds(plan, per_pass, loading)
    following = step + 1
    next_row = (  # the next step with its evaluation and checkpoint; after the last, the translation
        per_step
        + (per_eval if following in plan.eval_steps else 0.0)
        + (train_at_end if following == plan.total_steps else 0.0)
        + (per_checkpoint if following in plan.checkpoint_steps else 0.0)
        if step < plan.total_steps
        else translation
    )
    return Estimate(
        {
            "steps": per_step * (plan.total_steps - step),
            "evaluations": per_eval * len(evals_left) + train_at_end,
            "checkpoints": per_checkpoint * sum(s > step for s in plan.checkpoint_steps),
            "translation": translation,
        },
        rough=False,
        next_row=next_row,
    )


def _evaluation_seconds(plan: RunPlan, clock: PhaseClock, per_pass: float) -> tuple[float, float]:
    """(seconds of one evaluation of the held-out splits, seconds per pair scored in one): measured
    once one ran in this clock, else ``EVAL_PASSES`` base passes plus step 0's storing rate."""
    measured = [s for s in plan.eval_steps if clock.start_step < s <= clock.step]
    if measured and plan.held_out_pairs:
        last_has_train = plan.score_train_at_end and measured[-1] == plan.total_steps
        pairs = plan.held_out_pairs * len(measured) + (plan.train_pairs if last_has_train else 0)
        per_pair = clock.spent("eval_scoring", "logging_scores") / pairs
        return per_pair * plan.held_out_pairs, per_pair
    stored_at_zero = plan.held_out_pairs + (plan.train_pairs if plan.score_train_at_end else 0)
    stored = clock.start.get("logging_scores", clock.latest.get("logging_scores", 0.0))  # nothing since 0
    store_rate = stored / stored_at_zero if clock.start_step == 0 and stored_at_zero else 0.0
    per_pair = EVAL_PASSES * per_pass + store_rate
    return per_pair * plan.held_out_pairs, per_pair


def _translation_seconds(plan: RunPlan, per_pass: float, loading: float) -> float:
    """Load the generation model once, then each split's batches for the adapter and the base, each
    batch ``max_new_tokens`` decoding steps at ``DECODE_STEP_PASSES`` (early stops averaged in)."""
    if not plan.translated:
        return 0.0
    batches = sum(2 * math.ceil(n / plan.generation_batch) for n in plan.translated if n)
    return GENERATION_LOAD_SHARE * loading + batches * plan.max_new_tokens * DECODE_STEP_PASSES * per_pass


def rough_estimate(plan: RunPlan) -> Estimate | None:
    """The whole run priced from its config at ``SECONDS_PER_PAIR_TOKEN`` (rough: an order of
    magnitude); None for a model with no listed rate."""
    rate = SECONDS_PER_PAIR_TOKEN.get(plan.model)
    if rate is None:
        return None
    start = {
        "loading": LOAD_SECONDS[plan.model],
        "base_scoring": rate * plan.tokens_per_pair * (plan.train_pairs + plan.held_out_pairs),
    }
    ahead = time_left(plan, PhaseClock(0, start, 0, start))
    return Estimate({"startup": sum(start.values()), **ahead.parts}, rough=True, next_row=sum(start.values()))


def estimate(plan: RunPlan, clock: PhaseClock | None, since_row: float = 0.0) -> Estimate | None:
    """Time left: from the run's own timings once it has logged some, else the rough price of its
    config; less ``since_row``, the seconds since its latest row (or since it started), but never more
    than the work expected before the next row: work that runs late is late, not done."""
    found = time_left(plan, clock) if clock is not None else rough_estimate(plan)
    if found is None:
        return None
    return Estimate(found.parts, found.rough, min(max(since_row, 0.0), found.next_row), found.next_row)


def split_sizes(dataset: DatasetInfo, directions: Iterable[str] | None = None) -> dict[str, int]:
    """Pairs per split of ``dataset``, only ``directions`` when given (a run's ``data.directions``)."""
    wanted = set(directions or ())
    sizes: dict[str, int] = {}
    for direction, per_split in dataset.counts.items():
        if not wanted or direction in wanted:
            for split, n in per_split.items():
                sizes[split] = sizes.get(split, 0) + n
    return sizes


def run_estimate(
    run: RunRecord, dataset: DatasetInfo | None, timing_rows: Iterable[MetricRow], now: datetime
) -> Estimate | None:
    """A queued or running run's time left at ``now``, from its timing rows (``seconds/*``) once it
    has logged some, else roughly from its config; None for a run that has ended, or whose dataset or
    planned steps are unknown."""
    if run.status not in ("queued", "running") or dataset is None or not run.total_steps:
        return None
    cfg = RunConfig.model_validate(run.config)
    plan = plan_run(cfg, split_sizes(dataset, cfg.data.directions), run.total_steps)
    clock = read_clock(timing_rows, run.resumed_from_step)
    if run.status == "queued" or run.started_at is None:
        return estimate(plan, None)
    elapsed = (_utc(now) - _utc(run.started_at)).total_seconds()
    # the clock starts when training does; a resumed run's started_at may be its first start
    since_row = elapsed - clock.latest.get("total", 0.0) if clock and run.resumed_from_step is None else 0.0
    return estimate(plan, clock, since_row if clock else elapsed)


def _utc(moment: datetime) -> datetime:
    """Stored times are UTC; SQLite gives them back without their zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
