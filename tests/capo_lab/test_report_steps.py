"""Which step a report reads: ``best`` is chosen on validation among trained steps, never step 0."""

from types import SimpleNamespace

import pytest

from capo_lab import reports
from capo_lab.errors import LabError
from storage.records import MetricRow

# the base (step 0) scores best on validation; eval peaks at step 8; validation among trained steps at 4
METRICS = [
    MetricRow(0, "validation_rewards/accuracies", 0.9),
    MetricRow(4, "validation_rewards/accuracies", 0.6),
    MetricRow(8, "validation_rewards/accuracies", 0.5),
    MetricRow(0, "eval_rewards/accuracies", 0.1),
    MetricRow(4, "eval_rewards/accuracies", 0.2),
    MetricRow(8, "eval_rewards/accuracies", 0.8),
    MetricRow(4, "validation_rewards/accuracies_per_token", 0.1),
    MetricRow(8, "validation_rewards/accuracies_per_token", 0.7),
]


@pytest.fixture()
def run(monkeypatch):
    monkeypatch.setattr(reports.queries, "score_steps", lambda session, run_id, split: [0, 4, 8])
    monkeypatch.setattr(reports.queries, "metrics", lambda session, run_id: METRICS)
    config = {"train": {"seed": 0, "eval_splits": ["eval"]}}
    return SimpleNamespace(id=7, name="r", config=config)


def test_best_is_chosen_on_validation_never_step_zero_and_follows_the_endpoint(run):
    assert reports._pick_step(None, run, "eval", "best", "accuracies") == 4
    assert reports._pick_step(None, run, "eval", "best", "accuracies_per_token") == 8
    assert reports._pick_step(None, run, "eval", "last", "accuracies") == 8


def test_step_zero_is_not_a_trained_step(run):
    with pytest.raises(LabError, match="no trained eval scores at step 0; it has 4, 8"):
        reports._pick_step(None, run, "eval", "0", "accuracies")


def test_best_needs_a_validation_split_and_another_split_to_report_on(run):
    with pytest.raises(LabError, match="needs a validation split to choose steps on, and r scored none"):
        reports._check_step_choice("best", "eval", [run])
    with pytest.raises(LabError, match="cannot report on it"):
        reports._check_step_choice("best", "validation", [run])
    reports._check_step_choice("last", "eval", [run])  # no step is chosen: nothing to check


def test_a_report_needs_two_finished_runs_on_common_pairs():
    from capo.analysis.compare import ArmScores, ScoredPair

    def arm(name, run_id, pair_ids):
        pairs = tuple(ScoredPair(p, "en-de", -1.0, -2.0, None, None) for p in pair_ids)
        return ArmScores(name, 0, run_id, 4, pairs)

    waiting = [reports.ReportRun(2, "s[dpo]", "dpo", 0, "running", None)]
    with pytest.raises(LabError, match=r"has 1 finished run\(s\) .* waiting for: s\[dpo\]"):
        reports._check_comparable("s", waiting, [arm("capo", 1, [1, 2])])
    with pytest.raises(LabError, match="arms 'capo' and 'dpo' share no scored pairs"):
        reports._check_comparable("s", [], [arm("capo", 1, [1, 2]), arm("dpo", 2, [3, 4])])
    reports._check_comparable("s", [], [arm("capo", 1, [1, 2]), arm("dpo", 2, [2, 3])])
