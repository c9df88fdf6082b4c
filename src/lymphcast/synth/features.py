"""Latent imaging features of a lymph node and their exact densities.

Given its state (benign, overt metastasis, occult metastasis) a node's features are drawn independently of
each other, so each density is a product over features; an occult (micro-)metastasis is drawn from the benign
law of its level, except for features with an `occult` law of their own: the iodine concentration, which
dual-energy CT measures in small metastatic deposits that neither size, shape nor conventional attenuation show
(CLINICAL_FACTS, CT: iodine higher in metastases; here a micrometastasis raises it half-way, 1.9 → 2.4 mg/mL).
The density of a metastatic node is therefore the mixture
    f1 = (1 - OCCULT_PROB) * prod_k f1_overt,k + OCCULT_PROB * prod_k f1_occult,k   (f1_occult,k = f0,k mostly)
and a modality that sees only some features uses the same mixture over just those (the others integrate to 1).

Separation follows /work/shared/CLINICAL_FACTS.md, with sensitivity meaning "among overt metastases":
round shape (long/short < 2) Sn ~85 Sp ~60, loss of hilum Sn ~83 Sp ~58, cystic Sn ~25 Sp ~95, calcification
Sn ~35 Sp ~92, hyperechoic Sn ~55 Sp ~80, peripheral vascularity Sn ~60 Sp ~80, arterial attenuation
120 vs 90 HU (sd 15), dual-energy iodine 2.9 vs 1.9 mg/mL (sd 0.4; 2.4 in a micrometastasis). Benign level II
nodes are larger.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from .params import OCCULT_PROB

VASCULARITY = ("none", "hilar", "peripheral")
GROUPS = {"shared": ("short_axis_mm", "long_short_ratio", "cystic_change", "calcification"),
          "us": ("hilum_present", "hyperechoic", "heterogeneous", "vascularity"),
          "ct": ("ct_attenuation_hu", "iodine_mg_ml")}
MODALITY_GROUPS = {"us": ("shared", "us"), "ct": ("shared", "ct"), "all": ("shared", "us", "ct")}


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str            # lognormal, ratio (1 + lognormal), normal, binary, category
    benign: np.ndarray   # parameters per level II, III, IV, V: shape (4, k)
    overt: np.ndarray    # parameters of an overt metastasis: shape (k,)
    occult: np.ndarray | None = None  # parameters of an occult metastasis (None: the benign law of its level)


def _feature(name: str, kind: str, benign, overt, occult=None) -> Feature:
    benign = np.atleast_2d(np.asarray(benign, float))
    return Feature(name, kind, np.broadcast_to(benign, (4, benign.shape[1])), np.atleast_1d(np.asarray(overt, float)),
                   None if occult is None else np.atleast_1d(np.asarray(occult, float)))


_LN = np.log
FEATURES = {f.name: f for f in (
    # log-normal short axis: benign median 6 mm at level II, 4-4.5 mm below; overt metastases ~9.5 mm
    _feature("short_axis_mm", "lognormal", [[_LN(6.0), 0.30], [_LN(4.5), 0.30], [_LN(4.5), 0.30], [_LN(4.0), 0.30]],
             [_LN(9.5), 0.40]),
    # long/short - 1 is log-normal (sd 0.5); medians put P(ratio < 2) at 0.40 benign, 0.85 overt
    _feature("long_short_ratio", "ratio", [_LN(1.135), 0.5], [_LN(0.596), 0.5]),
    _feature("cystic_change", "binary", [0.05], 0.25),
    _feature("calcification", "binary", [0.08], 0.35),
    _feature("hilum_present", "binary", [0.58], 0.17),
    _feature("hyperechoic", "binary", [0.20], 0.55),
    _feature("heterogeneous", "binary", [0.20], 0.60),
    _feature("vascularity", "category", [0.35, 0.45, 0.20], [0.15, 0.25, 0.60]),
    _feature("ct_attenuation_hu", "normal", [90.0, 15.0], [120.0, 15.0]),
    _feature("iodine_mg_ml", "normal", [1.9, 0.4], [2.9, 0.4], occult=[2.4, 0.4]),
)}


def _params(f: Feature, level: np.ndarray, overt: np.ndarray, occult: np.ndarray | None = None) -> np.ndarray:
    p = np.where(overt[:, None], f.overt, f.benign[level])
    if occult is not None and f.occult is not None:
        p = np.where(occult[:, None], f.occult, p)
    return p


def sample_features(level: np.ndarray, overt: np.ndarray, rng: np.random.Generator,
                    occult: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Features of nodes at `level` (0..3 for II..V); `overt` marks overt metastases, `occult` micrometastases
    (benign-looking but for the features with an occult law), the rest are benign."""
    out = {}
    n = len(level)
    for f in FEATURES.values():
        p = _params(f, level, overt, occult)
        if f.kind in ("lognormal", "ratio"):
            value = np.exp(p[:, 0] + p[:, 1] * rng.standard_normal(n))
            out[f.name] = value + (1.0 if f.kind == "ratio" else 0.0)
        elif f.kind == "normal":
            out[f.name] = p[:, 0] + p[:, 1] * rng.standard_normal(n)
        elif f.kind == "binary":
            out[f.name] = (rng.random(n) < p[:, 0]).astype(np.int8)
        else:  # category: inverse CDF of each row's probabilities
            out[f.name] = (rng.random(n)[:, None] > np.cumsum(p, axis=1)[:, :-1]).sum(axis=1).astype(np.int8)
    return out


def _logpdf(f: Feature, value: np.ndarray, p: np.ndarray) -> np.ndarray:
    if f.kind in ("lognormal", "ratio"):
        y = np.log(value - (1.0 if f.kind == "ratio" else 0.0))
        return norm.logpdf(y, p[:, 0], p[:, 1]) - y  # density of the value itself (Jacobian 1/value)
    if f.kind == "normal":
        return norm.logpdf(value, p[:, 0], p[:, 1])
    if f.kind == "binary":
        return np.log(np.where(value == 1, p[:, 0], 1.0 - p[:, 0]))
    return np.log(np.take_along_axis(p, value.astype(int)[:, None], axis=1)[:, 0])


def log_densities(feats: dict[str, np.ndarray], level: np.ndarray, groups,
                  hidden: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """log f0 and log f1 of each node over the features of `groups` (f1 includes the occult mixture).
    `hidden` maps a feature name to a per-node mask of nodes where that feature is not seen (e.g. the iodine
    map at a centre without dual-energy CT): its density integrates to 1 there, so it drops out."""
    hidden = hidden or {}
    n = len(level)
    lf0, lf1o, lf1c = np.zeros(n), np.zeros(n), np.zeros(n)
    benign, overt = np.zeros(n, bool), np.ones(n, bool)
    for name in (name for g in groups for name in GROUPS[g]):
        f = FEATURES[name]
        seen = ~hidden[name] if name in hidden else np.ones(n, bool)
        l0 = np.where(seen, _logpdf(f, feats[name], _params(f, level, benign)), 0.0)
        lf0 += l0
        lf1o += np.where(seen, _logpdf(f, feats[name], _params(f, level, overt)), 0.0)
        lf1c += l0 if f.occult is None else np.where(seen, _logpdf(f, feats[name], _params(f, level, benign, overt)), 0.0)
    lf1 = np.logaddexp(np.log1p(-OCCULT_PROB) + lf1o, np.log(OCCULT_PROB) + lf1c)
    return lf0, lf1
