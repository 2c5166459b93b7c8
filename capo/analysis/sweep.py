"""One point of a hyper-parameter sweep (paper Fig. 9): accuracy at its best and at the end.

The paper picks α "based on maximum evaluation accuracy during training" (§3.1), so a
sweep point carries both the maximum over the evaluations and the final value. It is
read on the validation split where the run scored one (the paper tunes α there), else
on eval.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ACCURACY = "rewards/accuracies"


@dataclass(frozen=True)
class SweepPoint:
    value: float
    split: str
    best_accuracy: float | None
    best_step: int | None
    final_accuracy: float | None
    final_train_loss: float | None


def sweep_point(value: float, metrics: Iterable[tuple[int, str, float]]) -> SweepPoint:
    """``metrics`` are one run's (step, key, value) rows."""
    rows = list(metrics)
    keys = {key for _, key, _ in rows}
    split = "validation" if f"validation_{ACCURACY}" in keys else "eval"
    curve = sorted((step, v) for step, key, v in rows if key == f"{split}_{ACCURACY}")
    train_loss = sorted((step, v) for step, key, v in rows if key == "train_loss")
    best = max(curve, key=lambda sv: (sv[1], -sv[0]), default=None)  # the earliest step among equals
    return SweepPoint(
        value=value,
        split=split,
        best_accuracy=best[1] if best else None,
        best_step=best[0] if best else None,
        final_accuracy=curve[-1][1] if curve else None,
        final_train_loss=train_loss[-1][1] if train_loss else None,
    )
