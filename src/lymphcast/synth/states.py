"""The eight hidden states of a patient: central metastasis C and lateral involvement of each side.

State k encodes (C, L_left, L_right) as the bits of k = 4*C + 2*L_left + L_right. All posteriors are
(n, 8) arrays over these states; the risks are sums over the states where the event holds.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

STATE_C = np.array([0, 0, 0, 0, 1, 1, 1, 1])
STATE_LEFT = np.array([0, 0, 1, 1, 0, 0, 1, 1])
STATE_RIGHT = np.array([0, 1, 0, 1, 0, 1, 0, 1])
STATE_SIDES = np.stack([STATE_LEFT, STATE_RIGHT], axis=1)  # (8, 2)
STATE_N1B = STATE_LEFT | STATE_RIGHT


def state_index(c: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return 4 * np.asarray(c) + 2 * np.asarray(left) + np.asarray(right)


def normalise(log_joint: np.ndarray) -> np.ndarray:
    """Posterior probabilities from unnormalised log joint (n, 8), computed stably."""
    return np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))


def event_prob(post: np.ndarray, event: np.ndarray) -> np.ndarray:
    """P(event) for each row of a (n, 8) posterior; `event` is a 0/1 vector over states."""
    return post @ event.astype(float)
