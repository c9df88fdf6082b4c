"""Prior over the hidden states given the clinical features: P(C, L_left, L_right | X).

C ~ Bernoulli(sigmoid(eta_C)); given C the two lateral sides are independent Bernoullis whose logits add
the CLNM effect, the ipsilateral-tumour effect and a smaller share of the clinical effects (params.py).
A blank BRAF or TSH is integrated out exactly: BRAF with the centre's BRAF rate (it is independent of the
other features), TSH by Gauss-Hermite quadrature over its log-normal law given centre and Hashimoto status.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import log_expit, logsumexp

from . import params as P
from .centres import CentreProfile, mix_table
from .clinical import TSH_HASHIMOTO_SHIFT, TSH_LOG_SD, ipsilateral, sample_clinical
from .states import STATE_C, STATE_LEFT, STATE_RIGHT

BRAF, TSH = P.DESIGN.index("braf_v600e"), P.DESIGN.index("tsh")
QUADRATURE_POINTS = 24
PRIOR_DRAWS = 200_000  # Monte-Carlo draws of X per centre for the centre's marginal prior


def _core(x: dict) -> np.ndarray:
    """Design matrix with the BRAF and TSH columns left at zero (they are added per value later)."""
    zeros = np.zeros(len(x["age"]))
    derived = {"young": x["age"] < P.YOUNG_AGE, "male": x["male"], "size_gt_10": x["tumour_size_mm"] > P.BIG_TUMOUR_MM,
               "braf_v600e": zeros, "tsh": zeros}
    return np.column_stack([derived[name] if name in derived else x[name] for name in P.DESIGN]).astype(float)


def _log_prior(x: dict, offset: np.ndarray, braf: np.ndarray, tsh: np.ndarray) -> np.ndarray:
    """log P(state | X) for braf/tsh arrays shaped (n, ...): returns (n, ..., 8)."""
    core = _core(x)
    extra = braf.ndim - 1
    grow = lambda a: a.reshape(a.shape + (1,) * extra)  # noqa: E731
    eta_c = grow(P.CLNM_INTERCEPT + offset + core @ P.CLNM_EFFECTS) + P.CLNM_EFFECTS[BRAF] * braf \
        + P.CLNM_EFFECTS[TSH] * (tsh - P.TSH_CENTRE)
    eta_l = grow(P.LATERAL_INTERCEPT + core @ P.LATERAL_EFFECTS) + P.LATERAL_EFFECTS[BRAF] * braf \
        + P.LATERAL_EFFECTS[TSH] * (tsh - P.TSH_CENTRE)
    ipsi = ipsilateral(x["tumour_side"])
    side_term = P.LATERAL_IPSI * ipsi + P.LATERAL_UPPER_IPSI * x["upper_pole"][:, None] * ipsi  # (n, 2)
    log_c = np.stack([log_expit(-eta_c), log_expit(eta_c)], axis=-1)
    sides = []
    for s in range(2):
        eta = (eta_l + grow(side_term[:, s]))[..., None] + P.LATERAL_CLNM * np.array([0.0, 1.0])  # (..., C)
        sides.append(np.stack([log_expit(-eta), log_expit(eta)], axis=-1))  # (..., C, L)
    return log_c[..., STATE_C] + sides[0][..., STATE_C, STATE_LEFT] + sides[1][..., STATE_C, STATE_RIGHT]


def log_prior_complete(x: dict, offset: np.ndarray) -> np.ndarray:
    """(n, 8) log prior when every feature is known (the generator's own view)."""
    return _log_prior(x, offset, np.asarray(x["braf_v600e"], float), np.asarray(x["tsh_miu_l"], float))


def log_prior_observed(x: dict, centres: list[CentreProfile], centre_idx: np.ndarray) -> np.ndarray:
    """(n, 8) log prior given the recorded features, integrating out blank BRAF and TSH."""
    offset = np.array([c.offset for c in centres])[centre_idx]
    braf, tsh = np.asarray(x["braf_v600e"], float), np.asarray(x["tsh_miu_l"], float)
    rate = mix_table(centres, "braf")[centre_idx]
    no_braf, no_tsh = np.isnan(braf), np.isnan(tsh)
    braf_v = np.where(no_braf[:, None], [0.0, 1.0], np.nan_to_num(braf)[:, None])
    braf_w = np.where(no_braf[:, None], np.column_stack([1 - rate, rate]), 0.5)  # known: two equal copies
    nodes, weights = hermegauss(QUADRATURE_POINTS)
    mu = np.log(mix_table(centres, "tsh_median")[centre_idx]) + TSH_HASHIMOTO_SHIFT * x["hashimoto"]
    tsh_v = np.where(no_tsh[:, None], np.exp(mu[:, None] + TSH_LOG_SD * nodes), np.nan_to_num(tsh)[:, None])
    tsh_w = np.where(no_tsh[:, None], weights / weights.sum(), 1.0 / QUADRATURE_POINTS)
    log_w = np.log(braf_w)[:, :, None] + np.log(tsh_w)[:, None, :]  # (n, 2, K)
    braf_grid, tsh_grid = np.broadcast_arrays(braf_v[:, :, None], tsh_v[:, None, :])
    joint = _log_prior(x, offset, braf_grid, tsh_grid)
    return logsumexp(joint + log_w[..., None], axis=(1, 2))


def centre_log_priors(centres: list[CentreProfile], rng: np.random.Generator, draws: int = PRIOR_DRAWS) -> np.ndarray:
    """(K, 8) log of each centre's marginal prior: the mean of P(state | X) over `draws` patients of that centre.

    This is what a modality that sees no clinical features may assume: it knows only the centre.
    """
    out = np.empty((len(centres), 8))
    for k, centre in enumerate(centres):
        idx = np.full(draws, k)
        x = sample_clinical(centres, idx, rng)
        out[k] = np.log(np.exp(log_prior_complete(x, np.full(draws, centre.offset))).mean(axis=0))
    return out
