"""Clinical features of a patient, drawn from the centre's case mix, and the blanks a real table would have.

Features are correlated the way the literature describes: extrathyroidal extension, capsular contact,
multifocality and microcalcification rise with tumour size; bilateral only occurs with multifocality;
Hashimoto thyroiditis raises TSH. BRAF is independent of the rest, so a blank BRAF can be integrated out
exactly with the centre's BRAF rate (see risk_model.py).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

from .centres import CentreProfile, mix_table

SIDE_NAMES = ("left", "right", "isthmus")
SIZE_LOG_SD = 0.6
TSH_LOG_SD = 0.5
TSH_HASHIMOTO_SHIFT = 0.25  # on the log scale
TSH_MISSING = 0.05


def _flag(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    return (rng.random(p.shape) < p).astype(np.int8)


def sample_clinical(centres: list[CentreProfile], centre_idx: np.ndarray, rng: np.random.Generator) -> dict:
    """Complete (true) clinical features for patients of the given centres, as arrays."""
    n = len(centre_idx)
    mix = lambda name: mix_table(centres, name)[centre_idx]  # noqa: E731
    median = mix("size_median_mm")
    size = np.round(np.clip(median * np.exp(SIZE_LOG_SD * rng.standard_normal(n)), 2.0, 80.0), 1)
    z = np.log(size / median)  # log size relative to the centre's median: drives the size-linked features
    multifocal = _flag(rng, expit(logit(mix("multifocal")) + 0.3 * z))
    side_u = rng.random(n)
    left, isthmus = mix("side_left"), mix("side_isthmus")
    hashimoto = _flag(rng, mix("hashimoto"))
    log_tsh = np.log(mix("tsh_median")) + TSH_HASHIMOTO_SHIFT * hashimoto + TSH_LOG_SD * rng.standard_normal(n)
    return {
        "age": np.clip(np.floor(rng.normal(mix("age_mean"), 13.0)), 18, 90),
        "male": _flag(rng, mix("male")),
        "tumour_size_mm": size,
        "tumour_side": np.where(side_u < left, 0, np.where(side_u < left + isthmus, 2, 1)).astype(np.int8),
        "multifocal": multifocal,
        "bilateral": multifocal * _flag(rng, mix("bilateral_if_multifocal")),
        "extrathyroidal_extension": _flag(rng, expit(logit(mix("ete")) + 1.2 * z)),
        "upper_pole": _flag(rng, mix("upper_pole")),
        "capsular_contact": _flag(rng, expit(logit(mix("capsular_contact")) + 1.0 * z)),
        "microcalcification": _flag(rng, expit(logit(mix("microcalcification")) + 0.4 * z)),
        "braf_v600e": _flag(rng, mix("braf")).astype(float),
        "hashimoto": hashimoto,
        "tsh_miu_l": np.maximum(np.round(np.exp(log_tsh), 2), 0.01),
    }


def add_missingness(x: dict, centres: list[CentreProfile], centre_idx: np.ndarray,
                    rng: np.random.Generator) -> dict:
    """The recorded features: BRAF blank where the centre did not test, TSH blank in ~5% (both at random)."""
    tested = rng.random(len(centre_idx)) < mix_table(centres, "braf_tested")[centre_idx]
    tsh_seen = rng.random(len(centre_idx)) >= TSH_MISSING
    return {**x, "braf_v600e": np.where(tested, x["braf_v600e"], np.nan),
            "tsh_miu_l": np.where(tsh_seen, x["tsh_miu_l"], np.nan)}


def ipsilateral(tumour_side: np.ndarray) -> np.ndarray:
    """(n, 2) weight of the tumour on the left/right neck side; an isthmus tumour counts half to each."""
    table = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    return table[tumour_side]
