"""Synthetic studies with a known truth, to measure the coverage and error rate of ``capo.analysis.stats``.

A study has ``pairs`` pairs scored by two arms under ``seeds`` seeds. Each pair has a latent
type drawn once per study: right under both arms, under A only, under B only, or under
neither, with probabilities ``both``, ``only_a``, ``only_b`` (the rest: neither). Each seed's
outcome is the latent one, flipped with probability ``noise``: small noise makes seeds
near-identical, as real seeds of one objective are (two agreed on 39 of 42 outcomes). The
true accuracies and difference are those of the pair population:
acc = μ(1 − noise) + (1 − μ)·noise, with μ the share of pairs right under the arm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from capo.analysis.stats import paired_difference_interval, proportion_interval, sign_flip_test


@dataclass(frozen=True)
class Scenario:
    pairs: int
    seeds: int
    both: float
    only_a: float
    only_b: float
    noise: float

    def accuracy(self, arm: str) -> float:
        mu = self.both + (self.only_a if arm == "a" else self.only_b)
        return mu * (1 - self.noise) + (1 - mu) * self.noise

    @property
    def difference(self) -> float:
        return self.accuracy("a") - self.accuracy("b")


@dataclass(frozen=True)
class Calibration:
    studies: int
    accuracy_coverage: float  # share of studies whose interval for A's accuracy holds the truth
    difference_coverage: float
    rejection_rate: float  # share of studies with p < 0.05


def simulate(scenario: Scenario, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One study's [seeds, pairs] 0/1 tables for arms A and B."""
    s = scenario
    kinds = rng.choice(4, size=s.pairs, p=[s.both, s.only_a, s.only_b, 1 - s.both - s.only_a - s.only_b])
    latent_a = np.isin(kinds, (0, 1)).astype(float)
    latent_b = np.isin(kinds, (0, 2)).astype(float)
    flips_a = rng.random((s.seeds, s.pairs)) < s.noise
    flips_b = rng.random((s.seeds, s.pairs)) < s.noise
    return np.abs(latent_a - flips_a), np.abs(latent_b - flips_b)


def calibrate(scenario: Scenario, studies: int = 400, seed: int = 0) -> Calibration:
    """Run ``studies`` synthetic studies; returns the observed coverage and rejection rate."""
    rng = np.random.default_rng(seed)
    covered_acc = covered_diff = rejected = 0
    for _ in range(studies):
        a, b = simulate(scenario, rng)
        acc = proportion_interval(a)
        diff = paired_difference_interval(a, b)
        covered_acc += acc.low <= scenario.accuracy("a") <= acc.high
        covered_diff += diff.low <= scenario.difference <= diff.high
        rejected += sign_flip_test(a, b).p_value < 0.05
    return Calibration(studies, covered_acc / studies, covered_diff / studies, rejected / studies)
