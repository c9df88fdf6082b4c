"""Aggressiveness features of the primary tumour's cytology, and their likelihood over the hidden states.

Each feature depends on central metastasis C and, more weakly, on N1b; they are independent given (C, N1b).
The fractions are logit-normal (the logit is Gaussian), the flags Bernoulli. CLINICAL_FACTS treats cytology as
a weak-to-moderate signal (OR ~1.5-3 for N1b), which these effects give once C is marginalised.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit, logit
from scipy.stats import norm

from .states import STATE_C, STATE_N1B

# name: (kind, intercept, effect of C, effect of N1b, sd of the logit for fractions)
CYTOLOGY = {
    "hobnail_fraction": ("fraction", -3.0, 0.45, 0.25, 0.8),
    "tall_cell_fraction": ("fraction", -2.2, 0.4, 0.25, 0.8),
    "micropapillary": ("binary", -2.0, 0.6, 0.3, 0.0),
    "loss_of_cohesion": ("binary", -1.5, 0.5, 0.3, 0.0),
}


def sample_cytology(c: np.ndarray, n1b: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for name, (kind, a, bc, bl, sd) in CYTOLOGY.items():
        eta = a + bc * c + bl * n1b
        if kind == "fraction":
            out[name] = expit(eta + sd * rng.standard_normal(len(c)))
        else:
            out[name] = (rng.random(len(c)) < expit(eta)).astype(np.int8)
    return out


def cytology_loglik(feats: dict[str, np.ndarray]) -> np.ndarray:
    """(n, 8) log-likelihood of the cytology features in each hidden state.

    The Jacobian of the logit transform is the same in every state, so it is left out (it cancels).
    """
    eta = {name: a + bc * STATE_C + bl * STATE_N1B for name, (_, a, bc, bl, _) in CYTOLOGY.items()}  # (8,)
    total = 0.0
    for name, (kind, *_, sd) in CYTOLOGY.items():
        value = np.asarray(feats[name], float)[:, None]
        if kind == "fraction":
            total = total + norm.logpdf(logit(value), eta[name], sd)
        else:
            total = total + np.where(value == 1, log_expit(eta[name]), log_expit(-eta[name]))
    return total
