"""No work twice: step 0's held-out scores (per-token log-probs included) come from the base scoring
pass, equal to a forward pass through the fresh adapter; the trainer says where its time went."""

from pathlib import Path

import pytest

import capo.train as train_module
from capo.train import PHASES, TrainInputs, train
from tests.capo.test_train import PAIRS, ListSink, config


def _step0(sink: ListSink, split: str) -> dict:
    return {r.pair_id: r for step, s, rows in sink.rows if step == 0 and s == split for r in rows}


def test_step_zero_held_out_rows_come_from_the_base_pass_and_equal_a_forward_pass(
    tmp_path: Path, monkeypatch
) -> None:
    evaluated: list[list[int]] = []
    real = train_module._Scorer.evaluate

    def counting(self, pairs, batch_size):
        evaluated.append(sorted(p.pair_id for p in pairs))
        return real(self, pairs, batch_size)

    monkeypatch.setattr(train_module._Scorer, "evaluate", counting)
    cfg = config(max_steps=1, eval_splits=["eval", "validation"])
    fresh = ListSink()
    run = TrainInputs(PAIRS[:6], PAIRS[6:8], tmp_path / "a", tmp_path / "models", None, PAIRS[8:])
    train(cfg, run, fresh)
    # Only the last step's evaluation (eval, validation, train) runs forward passes.
    assert evaluated == [[6, 7], [8, 9], [0, 1, 2, 3, 4, 5]]

    # The same run with every base score already stored (an earlier run's): no per-token cache, so
    # step 0 scores the held-out splits through the fresh adapter. The rows must be the same.
    evaluated.clear()
    forward = ListSink()
    stored = TrainInputs(
        PAIRS[:6], PAIRS[6:8], tmp_path / "b", tmp_path / "models", None, PAIRS[8:], dict(fresh.base_scores)
    )
    train(cfg, stored, forward)
    assert evaluated[:2] == [[6, 7], [8, 9]]
    for split in ("eval", "validation"):
        cached, passed = _step0(fresh, split), _step0(forward, split)
        assert sorted(cached) == sorted(passed) and cached
        for pair_id, row in cached.items():
            other = passed[pair_id]
            assert len(row.chosen_token_logps) == row.n_tokens_chosen > 0
            assert len(row.rejected_token_logps) == row.n_tokens_rejected > 0
            assert row.chosen_token_logps == pytest.approx(other.chosen_token_logps, abs=1e-5)
            assert row.rejected_token_logps == pytest.approx(other.rejected_token_logps, abs=1e-5)
            assert row.logp_chosen == pytest.approx(other.logp_chosen, abs=1e-5)
            assert row.loss == pytest.approx(other.loss, abs=1e-5)
    assert fresh.metrics[0]["eval_rewards/accuracies_vs_base"] == 0.0


def test_a_resumed_run_does_not_use_the_fresh_adapter_cache(tmp_path: Path, monkeypatch) -> None:
    first = ListSink()
    result = train(config(max_steps=2), TrainInputs(PAIRS, PAIRS[:4], tmp_path / "run", tmp_path / "m"),
                   first, should_stop=lambda: True)  # fmt: skip
    assert result.status == "stopped"
    calls: list = []
    real = train_module._Scorer.cache_reference

    def recording(self, pairs, batch_size, per_token=False):
        calls.append(per_token)
        return real(self, pairs, batch_size, per_token)

    monkeypatch.setattr(train_module._Scorer, "cache_reference", recording)
    resumed = TrainInputs(PAIRS, PAIRS[:4], tmp_path / "run", tmp_path / "m", first.checkpoints[-1][1])
    train(config(max_steps=2), resumed, ListSink())
    assert calls == [False, False]


def test_the_run_result_says_where_the_time_went(tmp_path: Path) -> None:
    result = train(
        config(max_steps=2), TrainInputs(PAIRS, PAIRS[:4], tmp_path / "r", tmp_path / "m"), ListSink()
    )
    assert set(result.seconds) == {*PHASES, "total"}
    assert all(v >= 0.0 for v in result.seconds.values())
    assert sum(result.seconds[p] for p in PHASES) <= result.seconds["total"]
    assert result.seconds["steps"] > 0.0 and result.seconds["eval_scoring"] > 0.0
