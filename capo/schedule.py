"""A run's length in optimizer steps; pure and torch-free.

``planned_steps`` is the trainer's rule (``capo.train``), here without torch so that the lab
can record a run's total when it is queued (``capo_lab.runs.create_run``) and the UI can show
progress and an ETA (``capo_lab.eta``) before the first step.
"""

from __future__ import annotations

import math

from capo.config import RunConfig


def steps_per_epoch(n_pairs: int, batch_size: int, grad_accum: int) -> int:
    """Optimizer steps in one pass over ``n_pairs``: batches, then one step per ``grad_accum`` batches."""
    return math.ceil(math.ceil(n_pairs / batch_size) / grad_accum)


def planned_steps(cfg: RunConfig, n_train_pairs: int) -> int:
    """The steps a run of ``cfg`` takes on ``n_train_pairs`` train pairs: ``train.max_steps`` when set,
    else ``train.epochs`` epochs."""
    per_epoch = steps_per_epoch(n_train_pairs, cfg.train.batch_size, cfg.train.grad_accum)
    return cfg.train.max_steps or cfg.train.epochs * per_epoch
