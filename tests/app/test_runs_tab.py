"""The Runs tab's accuracy picker chooses which stored metric keys are drawn."""

from app.tab_runs import ACCURACIES, accuracy_keys


def test_each_choice_draws_its_own_keys_on_every_split():
    per_token, vs_base = list(ACCURACIES)[1:]
    assert accuracy_keys(vs_base) == [
        "rewards/accuracies_vs_base",
        "train_rewards/accuracies_vs_base",
        "eval_rewards/accuracies_vs_base",
        "validation_rewards/accuracies_vs_base",
    ]
    assert accuracy_keys(per_token)[2] == "eval_rewards/accuracies_per_token"
    assert accuracy_keys("")[0] == "rewards/accuracies"  # before the picker has a value
