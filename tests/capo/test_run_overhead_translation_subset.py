"""``train.generate_at_end_pairs``: a fixed subset of each split, balanced over directions, is what
``generate_at_end`` translates."""

from dataclasses import dataclass
from types import SimpleNamespace

import pytest

import worker.evaluate as worker_evaluate
from capo.config import ConfigError, config_from_dict
from worker.evaluate import translation_subset


@dataclass(frozen=True)
class P:
    pair_id: int
    direction: str


PAIRS = [P(i, d) for i, d in enumerate(["en-de"] * 5 + ["en-it"] * 3 + ["en-zh"] * 1)]


def test_the_subset_takes_each_direction_in_turn_in_pair_order() -> None:
    got = translation_subset(list(reversed(PAIRS)), 5)
    assert [(p.pair_id, p.direction) for p in got] == [
        (0, "en-de"), (1, "en-de"), (5, "en-it"), (6, "en-it"), (8, "en-zh"),
    ]  # fmt: skip
    assert translation_subset(PAIRS, 5) == got  # the same pairs whatever the order they came in


def test_no_count_or_a_count_past_the_split_translates_everything() -> None:
    assert translation_subset(PAIRS, None) == PAIRS
    assert translation_subset(PAIRS, 9) == PAIRS and translation_subset(PAIRS, 100) == PAIRS


def test_the_count_is_a_positive_whole_number_or_null() -> None:
    assert config_from_dict({"train": {"generate_at_end_pairs": 16}}).train.generate_at_end_pairs == 16
    assert config_from_dict({}).train.generate_at_end_pairs is None
    for bad in (0, -1, 1.5, "x"):
        with pytest.raises(ConfigError, match="generate_at_end_pairs"):
            config_from_dict({"train": {"generate_at_end_pairs": bad}})


def test_evaluate_at_end_passes_the_runs_count_to_every_split(monkeypatch) -> None:
    cfg = config_from_dict({"train": {"generate_at_end_pairs": 3}})
    monkeypatch.setattr(worker_evaluate, "get_run", lambda db, run_id: SimpleNamespace(id=run_id))
    monkeypatch.setattr(worker_evaluate, "run_config", lambda run, device=None: cfg)
    monkeypatch.setattr(
        worker_evaluate, "queue_evaluation", lambda db, run_id, enqueue, step, split, *a: split
    )
    seen = []
    monkeypatch.setattr(
        worker_evaluate, "run_evaluation", lambda db, settings, eid, *args: seen.append((eid, args[-1]))
    )
    worker_evaluate.evaluate_at_end(None, None, 1, ("eval", "validation"), 160)
    assert seen == [("eval", 3), ("validation", 3)]
