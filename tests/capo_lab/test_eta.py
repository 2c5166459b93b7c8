"""The ETA estimator (issue 23 item 6): a run's plan from its config, its phase clock from its
``seconds/<phase>`` rows, and its time left phase by phase; arithmetic written out."""

from __future__ import annotations

from pathlib import Path

import pytest

from capo.config import load_config
from capo_lab import eta
from capo_lab.records import MetricRow

REPO = Path(__file__).resolve().parents[2]
PAPER_CPU = load_config(REPO / "configs" / "paper-cpu.yaml", [])
SIZES = {"train": 64, "eval": 64, "validation": 64}  # paper8-cpu: 8 pairs a direction a split, 8 directions


def rows(step: int, **seconds: float) -> list[MetricRow]:
    return [MetricRow(step, f"seconds/{phase}", value) for phase, value in seconds.items()]


def test_the_plan_of_paper_cpu_follows_its_config() -> None:
    plan = eta.plan_run(PAPER_CPU, SIZES, 16)
    assert (plan.pairs_per_step, plan.train_pairs, plan.held_out_pairs) == (8, 64, 64 + 64)
    assert plan.eval_steps == (16,) and plan.checkpoint_steps == (8, 16) and not plan.score_train_at_end
    assert plan.translated == (8, 8)  # generate_at_end_pairs of each held-out split
    assert (plan.max_new_tokens, plan.generation_batch, plan.tokens_per_pair) == (160, 8, 160)


def test_split_sizes_count_only_the_runs_directions() -> None:
    from capo_lab.records import DatasetInfo

    info = DatasetInfo(1, "d", None, 0, {"en-de": {"train": 3, "eval": 1}, "en-zh": {"train": 5, "eval": 2}})
    assert eta.split_sizes(info) == {"train": 3 + 5, "eval": 1 + 2}
    assert eta.split_sizes(info, ["en-zh"]) == {"train": 5, "eval": 2}


def test_a_resumed_runs_clock_starts_at_its_resume_step() -> None:
    earlier = rows(4, steps=40.0, total=100.0)  # the first attempt, up to step 4; resumed from 4
    later = rows(5, loading=7.0, steps=12.0, total=20.0) + rows(6, loading=7.0, steps=22.0, total=30.0)
    clock = eta.read_clock(earlier + later, resumed_from=4)
    assert (clock.start_step, clock.step, dict(clock.start)) == (4, 6, {})
    assert clock.spent("steps") == 22.0  # 2 steps since the resume: 11 s a step
    plan = eta.plan_run(PAPER_CPU, SIZES, 16)
    found = eta.time_left(plan, clock)
    assert found.parts["steps"] == pytest.approx(22.0 / 2 * (16 - 6))
    assert eta.read_clock(earlier, resumed_from=4) is None  # nothing logged since the resume


def test_before_the_first_step_steps_and_evaluations_are_priced_from_the_base_pass() -> None:
    plan = eta.plan_run(PAPER_CPU, SIZES, 16)
    step0 = rows(0, loading=60.0, tokenizing=1.0, base_scoring=192.0, eval_scoring=0.0, logging_scores=1.92,
                 steps=0.0, checkpoints=0.0, total=254.92)  # fmt: skip
    found = eta.time_left(plan, eta.read_clock(step0))
    per_pass = 192.0 / (64 + 128)  # 1 s a pair
    per_pair = eta.EVAL_PASSES * per_pass + 1.92 / 128  # adapter on; stored as at step 0: 0.015 s
    assert found.parts["steps"] == pytest.approx(16 * 8 * eta.STEP_PASSES * per_pass)  # 320 s
    assert found.parts["evaluations"] == pytest.approx(128 * per_pair)  # at 16; the train split not rescored
    assert found.parts["checkpoints"] == pytest.approx(2 * eta.CHECKPOINT_SECONDS)
    batches = 2 * (8 // 8) + 2 * (8 // 8)  # each split's 8 pairs, adapter and base, batches of 8
    decoding = batches * 160 * eta.DECODE_STEP_PASSES * per_pass  # 160 new tokens a batch at most
    loading = eta.GENERATION_LOAD_SHARE * 60.0  # the generation model loaded first
    assert found.parts["translation"] == pytest.approx(loading + decoding)
    assert not found.rough


def test_a_queued_run_is_priced_roughly_from_its_config() -> None:
    plan = eta.plan_run(PAPER_CPU, SIZES, 16)
    found = eta.rough_estimate(plan)
    per_pass = eta.SECONDS_PER_PAIR_TOKEN["gemma-3-270m"] * min(384, eta.TYPICAL_PAIR_TOKENS)
    load = eta.LOAD_SECONDS["gemma-3-270m"]
    assert found.rough and found.parts["startup"] == pytest.approx(load + 192 * per_pass)
    assert found.parts["steps"] == pytest.approx(16 * 8 * eta.STEP_PASSES * per_pass)
    assert eta.rough_estimate(eta.plan_run(PAPER_CPU.model_copy(
        update={"model": PAPER_CPU.model.model_copy(update={"name_or_path": "org/unknown"})}), SIZES, 16)
    ) is None  # fmt: skip


def test_time_since_the_latest_row_is_taken_off_but_never_more_than_the_next_rows_work() -> None:
    plan = eta.plan_run(PAPER_CPU, SIZES, 16)
    clock = eta.read_clock(rows(10, base_scoring=192.0, steps=100.0, checkpoints=4.0, total=500.0))
    found = eta.estimate(plan, clock, since_row=4.0)
    assert found.seconds == pytest.approx(sum(found.parts.values()) - 4.0)
    late = eta.estimate(plan, clock, since_row=1e9)  # step 11 runs late: it is not done, nor is the rest
    assert late.already == late.next_row == pytest.approx(100.0 / 10)  # step 11: no evaluation, no checkpoint
    assert late.seconds == pytest.approx(sum(late.parts.values()) - 100.0 / 10)
    last = eta.read_clock(rows(16, base_scoring=192.0, steps=160.0, checkpoints=4.0, total=600.0))
    translating = eta.estimate(plan, last, since_row=1e9)  # after the last step: only the translation
    assert translating.next_row == translating.parts["translation"] > 0 and translating.seconds == 0.0


def test_base_scores_reused_from_an_earlier_run_leave_the_pass_rate_to_the_steps() -> None:
    plan = eta.plan_run(PAPER_CPU, SIZES, 16)
    scored = eta.read_clock(rows(0, base_scoring=192.0) + rows(2, base_scoring=192.0, steps=41.6))
    assert eta.pass_seconds(plan, scored) == pytest.approx(192.0 / 192)  # its own pass: 1 s a pair
    reused = eta.read_clock(rows(0, base_scoring=0.5) + rows(2, base_scoring=0.5, steps=41.6))
    # 0.5 / 192 s a pair is under a tenth of what 2 steps of 8 pairs say: 41.6 / 2 / (8 × 2.6) = 1 s
    assert eta.pass_seconds(plan, reused) == pytest.approx(41.6 / 2 / (8 * eta.STEP_PASSES))
