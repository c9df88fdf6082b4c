"""Node → side → patient roll-up of node probabilities (any node-level modality).

A neck side is N1b-positive when at least one of its lateral (II–V) nodes is metastatic, and a patient when
either side is. Three ways to turn node probabilities into side and patient risks:
- "noisy_or": 1 − ∏(1 − p) over the nodes (and then over the sides): exact if nodes were independent;
- "max": the most suspicious node (and side): ignores how many suspicious nodes there are;
- "learned": a logistic regression on the side's nodes — noisy-OR and max logits and the number of nodes per
  level (more and larger visible nodes are themselves a sign) — fitted on side labels where the cohort has
  them (else on patient labels); the patient risk is then the noisy-OR of the sides, recalibrated.
`compare_rollups` measures all three on held-out patients (log loss, AUC) and the model keeps the best by log
loss, so the choice is a measurement on the user's own data, recorded with the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import logit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from ..cohort.schema import LATERAL_LEVELS, SIDES

ROLLUPS = ("noisy_or", "max", "learned")
EPS = 1e-5


def _clip(p):
    return np.clip(p, EPS, 1 - EPS)


def side_features(nodes: pd.DataFrame, patient_ids) -> pd.DataFrame:
    """One row per (patient_id, side) of `patient_ids`: noisy_or, max (probabilities) and node counts per
    lateral level. `nodes` has patient_id, side, level and p (node probability); nodes of central levels are
    ignored; nodes of unknown level (blank: found by the detector) count in noisy_or and max only."""
    index = pd.MultiIndex.from_product([pd.Index(patient_ids).unique(), SIDES], names=["patient_id", "side"])
    lateral = nodes[nodes["level"].isin(LATERAL_LEVELS) | nodes["level"].isna()]
    scored = lateral[lateral["p"].notna()]
    keys = [scored["patient_id"], scored["side"]]
    out = pd.DataFrame(index=index)
    # noisy-OR 1 - prod(1 - p) through the grouped product (vectorised; a Python lambda per group is slow)
    out["noisy_or"] = (1 - (1 - scored["p"]).groupby(keys).prod()).reindex(index).fillna(0.0)
    out["max"] = scored["p"].groupby(keys).max().reindex(index).fillna(0.0)
    # node counts per lateral level: a plain count over the rows (a grouped size + unstack costs milliseconds even
    # for one patient, which the service pays per case)
    where = {key: i for i, key in enumerate(index)}
    counts = np.zeros((len(index), len(LATERAL_LEVELS)))
    column = {level: j for j, level in enumerate(LATERAL_LEVELS)}
    for pid, side, level in zip(lateral["patient_id"], lateral["side"], lateral["level"]):
        i = where.get((pid, side))
        if i is not None and level in column:
            counts[i, column[level]] += 1
    for level, j in column.items():
        out[f"n_{level}"] = counts[:, j]
    return out


def _design(sides: pd.DataFrame) -> np.ndarray:
    counts = np.log1p(sides[[f"n_{lv}" for lv in LATERAL_LEVELS]].to_numpy(float))
    return np.column_stack([logit(_clip(sides["noisy_or"])), logit(_clip(sides["max"])), counts])


def _patient_sides(sides: pd.DataFrame) -> pd.DataFrame:
    """Sides merged into one pseudo-side per patient (for cohorts without side labels)."""
    g = sides.groupby(level="patient_id", sort=False)
    out = pd.DataFrame({"noisy_or": 1 - (1 - sides["noisy_or"]).groupby(level="patient_id", sort=False).prod(),
                        "max": g["max"].max()})
    for lv in LATERAL_LEVELS:
        out[f"n_{lv}"] = g[f"n_{lv}"].sum()
    return out


class Rollup:
    """A fitted roll-up: `sides(features)` → P(side positive), `patients(features)` → P(N1b)."""

    def __init__(self, method: str):
        if method not in ROLLUPS:
            raise ValueError(f"roll-up must be one of {', '.join(ROLLUPS)}, not {method!r}")
        self.method = method
        self.side_model_ = self.patient_model_ = None
        self.fitted_on_ = None

    def fit(self, sides: pd.DataFrame, side_labels: pd.Series | None, patient_labels: pd.Series) -> "Rollup":
        if self.method != "learned":
            return self
        if side_labels is not None and side_labels.notna().all() and side_labels.nunique() == 2:
            self.side_model_ = LogisticRegression(C=1.0, max_iter=1000).fit(_design(sides), side_labels.astype(int))
            self.fitted_on_ = "sides"
            raw = self._noisy_or_of_sides(self.sides(sides))
            y = patient_labels.loc[raw.index].astype(int)
            self.patient_model_ = LogisticRegression(C=1.0, max_iter=1000).fit(logit(_clip(raw.to_numpy()))[:, None], y)
        else:
            merged = _patient_sides(sides)
            self.side_model_ = LogisticRegression(C=1.0, max_iter=1000).fit(
                _design(merged), patient_labels.loc[merged.index].astype(int))
            self.fitted_on_ = "patients"
        return self

    @staticmethod
    def _noisy_or_of_sides(p_side: pd.Series) -> pd.Series:
        return 1 - (1 - p_side).groupby(level="patient_id", sort=False).prod()

    def sides(self, sides: pd.DataFrame) -> pd.Series:
        if self.method == "learned":
            p = self.side_model_.predict_proba(_design(sides))[:, 1]
        else:
            p = sides[self.method].to_numpy(float)
        return pd.Series(p, index=sides.index, name="probability")

    def patients(self, sides: pd.DataFrame) -> pd.Series:
        if self.method == "max":
            p = sides["max"].groupby(level="patient_id", sort=False).max()
        elif self.method == "noisy_or" or self.fitted_on_ is None:
            p = self._noisy_or_of_sides(sides["noisy_or"])
        elif self.fitted_on_ == "sides":
            raw = self._noisy_or_of_sides(self.sides(sides))
            p = pd.Series(self.patient_model_.predict_proba(logit(_clip(raw.to_numpy()))[:, None])[:, 1], raw.index)
        else:
            merged = _patient_sides(sides)
            p = pd.Series(self.side_model_.predict_proba(_design(merged))[:, 1], merged.index)
        return p.rename("probability")


def compare_rollups(sides: pd.DataFrame, side_labels: pd.Series | None, patient_labels: pd.Series,
                    seed: int = 0) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Patient-level log loss and AUC of each roll-up on these (held-out) patients, and each roll-up's
    probabilities; "learned" is cross-fitted (5 folds over the patients), never scored on what it was fitted on."""
    y = patient_labels.astype(int)
    rows = {}
    for method in ("noisy_or", "max"):
        p = Rollup(method).patients(sides).loc[y.index]
        rows[method] = p
    if min(int(y.sum()), int((1 - y).sum())) >= 10:
        p = pd.Series(np.nan, index=y.index)
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        for tr, te in folds.split(np.zeros(len(y)), y):
            fit_ids, test_ids = y.index[tr], y.index[te]
            fit_sides = sides.loc[sides.index.get_level_values("patient_id").isin(fit_ids)]
            labels = side_labels.loc[fit_sides.index] if side_labels is not None else None
            model = Rollup("learned").fit(fit_sides, labels, y.loc[fit_ids])
            test_sides = sides.loc[sides.index.get_level_values("patient_id").isin(test_ids)]
            p.loc[test_ids] = model.patients(test_sides).loc[test_ids]
        rows["learned"] = p
    two_classes = y.nunique() == 2
    table = pd.DataFrame({m: {"log_loss": log_loss(y, _clip(p.to_numpy(float)), labels=[0, 1]),
                              "auc": roc_auc_score(y, p) if two_classes else np.nan}
                          for m, p in rows.items()}).T.rename_axis("rollup")
    return table, rows
