"""The α chart's numbers: maximum over training and final value, on validation where it exists."""

from capo.analysis.sweep import sweep_point


def test_best_and_final_on_validation_when_scored():
    rows = [
        (0, "eval_rewards/accuracies", 0.9),  # eval is ignored once validation exists
        (0, "validation_rewards/accuracies", 0.40),
        (5, "validation_rewards/accuracies", 0.55),
        (10, "validation_rewards/accuracies", 0.55),  # ties the best: the earlier step is reported
        (15, "validation_rewards/accuracies", 0.50),
        (0, "train_loss", 0.69),
        (15, "train_loss", 0.31),
    ]
    p = sweep_point(2.0, rows)
    assert (p.split, p.best_accuracy, p.best_step, p.final_accuracy, p.final_train_loss) == (
        "validation", 0.55, 5, 0.50, 0.31,
    )  # fmt: skip


def test_eval_split_without_validation_and_nothing_logged_yet():
    p = sweep_point(0.5, [(0, "eval_rewards/accuracies", 0.3), (4, "eval_rewards/accuracies", 0.2)])
    assert (p.split, p.best_accuracy, p.best_step, p.final_accuracy, p.final_train_loss) == (
        "eval", 0.3, 0, 0.2, None,
    )  # fmt: skip
    empty = sweep_point(1.0, [])
    assert (empty.best_accuracy, empty.final_accuracy) == (None, None)
