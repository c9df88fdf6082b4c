"""Simulated outcomes and risks shared by the evaluation tests."""

from __future__ import annotations

import numpy as np
import pytest


def simulate(n: int, seed: int = 0, *, slope: float = 1.0, shift: float = 0.0):
    """True risks from a logistic model, outcomes drawn from them, and predictions distorted on the logit
    scale (slope > 1: overconfident; shift < 0: risks too low). Returns (y, predicted, true_risk)."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(-1.0, 1.3, size=n)
    risk = 1 / (1 + np.exp(-logit))
    y = rng.binomial(1, risk)
    predicted = 1 / (1 + np.exp(-(slope * logit + shift)))
    return y, predicted, risk


@pytest.fixture
def sample():
    y, p, _ = simulate(300, seed=3)
    return y, p
