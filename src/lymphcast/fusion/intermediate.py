"""Intermediate (feature-level) fusion: the comparison the report sets beside stacking, not the product.

From a fitted FusionModel, every modality model supplies a patient vector (fusion.embeddings: a network's last
hidden layer pooled over the patient's nodes, the cytology bag vector, the clinical feature matrix). Each is
standardised and reduced to a few principal components fitted on the stacking patients (whitened, so every
modality starts on the same scale); a patient without a modality gets zeros there and a presence mask of 0,
as in the stackers. One L2 logistic regression, its penalty chosen by cross-validated log loss, is fitted on
those features of the stacking patients: the same patients the stackers learnt from (recomputed with
split_patients exactly as FusionModel.fit does), so the two fusions differ only in what crosses between
modalities — a probability each (stacking) or a handful of features each (here).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from ..cohort import Cohort, LymphCastError
from ..modalities.base import probability_series
from ..modalities.node_training import split_patients
from .embeddings import patient_features

PENALTY_GRID = np.logspace(-3, 2, 12)
MIN_PATIENTS = 5  # a modality seen on fewer stacking patients gives no components (too few to fit a PCA)
LABEL = "intermediate fusion (comparison)"


class IntermediateFusion:
    """fused: a fitted FusionModel; components: principal components kept per modality; folds: CV folds for C."""

    def __init__(self, fused, *, components: int = 3, folds: int = 5):
        fused.check_fitted()
        self.fused = fused
        self.components = components
        self.folds = folds

    def stacking_patients(self, cohort: Cohort) -> Cohort:
        """The stacking part of the fused model's training cohort (`cohort`: the cohort it was fitted on)."""
        data = cohort.labelled()
        _, stack_ids = split_patients(data, self.fused.stack_fraction, self.fused.seed)
        return data.subset(stack_ids)

    def fit(self, cohort: Cohort) -> "IntermediateFusion":
        stack = self.stacking_patients(cohort)
        y = stack.labels().astype(int)
        if y.nunique() < 2:
            raise LymphCastError(f"cohort '{cohort.meta.name}': the stacking patients hold one class only; "
                                 "intermediate fusion needs patients with and without N1b")
        raw = {name: patient_features(model, stack) for name, model in self.fused.models_.items()}
        self.reducers_ = {}
        for name, frame in raw.items():
            if len(frame) < MIN_PATIENTS or frame.shape[1] == 0:
                continue
            k = min(self.components, frame.shape[1], len(frame) - 1)
            scaler = StandardScaler().fit(frame.to_numpy())
            pca = PCA(n_components=k, whiten=True, random_state=self.fused.seed).fit(scaler.transform(frame.to_numpy()))
            self.reducers_[name] = (scaler, pca)
        x = self._design(raw, y.index)
        minority = int(min(y.sum(), (y == 0).sum()))
        folds = StratifiedKFold(max(2, min(self.folds, minority)), shuffle=True, random_state=self.fused.seed)
        self.model_ = LogisticRegressionCV(Cs=PENALTY_GRID, l1_ratios=(0.0,), cv=folds, scoring="neg_log_loss",
                                           solver="lbfgs", max_iter=2000, use_legacy_attributes=False)
        self.model_.fit(x.to_numpy(), y.to_numpy())
        self.columns_ = list(x.columns)
        self.training_summary_ = {"patients_stacking": len(y), "events_stacking": int(y.sum()),
                                  "components": {n: int(p.n_components_) for n, (_, p) in self.reducers_.items()},
                                  "coverage_stacking": {n: float(y.index.isin(f.index).mean()) for n, f in raw.items()},
                                  "C": float(np.ravel(self.model_.C_)[0])}
        return self

    def _design(self, raw: dict, ids: pd.Index) -> pd.DataFrame:
        """Components and presence mask per modality, zeros where the patient lacks the modality."""
        columns = {}
        for name, (scaler, pca) in self.reducers_.items():
            frame = raw[name]
            present = ids.isin(frame.index)
            z = np.zeros((len(ids), pca.n_components_))
            if present.any():
                z[present] = pca.transform(scaler.transform(frame.reindex(ids[present]).to_numpy()))
            for j in range(pca.n_components_):
                columns[f"{name}_pc{j + 1}"] = z[:, j]
            columns[f"{name}_present"] = present.astype(float)
        return pd.DataFrame(columns, index=pd.Index(ids, name="patient_id"))

    def features(self, cohort: Cohort) -> pd.DataFrame:
        """The design matrix of `cohort`'s patients (what the logistic regression reads)."""
        if not hasattr(self, "model_"):
            raise LymphCastError("intermediate fusion is not fitted; call fit() first")
        raw = {name: patient_features(self.fused.models_[name], cohort) for name in self.reducers_}
        return self._design(raw, pd.Index(cohort.patients["patient_id"]))[self.columns_]

    def predict_proba(self, cohort: Cohort) -> pd.Series:
        x = self.features(cohort)
        return probability_series(self.model_.predict_proba(x.to_numpy())[:, 1], x.index)


def comparison_section(late: pd.Series, intermediate: pd.Series, labels: pd.Series, summary: dict) -> dict:
    """AUC (DeLong CI) and calibration slope of stacking (late) and intermediate fusion on the labelled patients,
    with the paired DeLong test late − intermediate."""
    from ..evaluate.calibration import calibration_intercept_slope
    from ..evaluate.discrimination import auc_ci, delong_test

    labels = labels.dropna().astype(int)
    y = labels.to_numpy()
    rows = []
    for name, p in (("stacking (late fusion)", late), (LABEL, intermediate)):
        q = p.reindex(labels.index).to_numpy(float)
        row = {"name": name, "n": int(len(y)), "events": int(y.sum())}
        if 0 < y.sum() < len(y):
            row["auc"], row["auc_ci_low"], row["auc_ci_high"] = auc_ci(y, q)
            try:
                _, slope = calibration_intercept_slope(y, q)
                row["slope"], row["slope_ci_low"], row["slope_ci_high"] = slope
            except ValueError:  # perfect separation: no slope to report
                pass
        rows.append(row)
    out = {"rows": rows, "training": summary}
    if 0 < y.sum() < len(y) and len(y) > 2:
        test = delong_test(y, late.reindex(labels.index).to_numpy(float),
                           intermediate.reindex(labels.index).to_numpy(float))
        out.update(late_minus=test.difference, late_minus_ci_low=test.difference_ci_low,
                   late_minus_ci_high=test.difference_ci_high, p_value=test.p_value)
    return out


def training_cohort(manifest: dict, cohort: Cohort) -> Cohort:
    """The fused bundle's training patients, taken from `cohort` (the folder given with --intermediate-from): the
    manifest's training centres, labelled patients only; an error unless the folder is the very cohort the bundle
    was trained on (same name and same table hashes)."""
    from ..provenance import cohort_hashes

    training = manifest.get("training", {})
    same_name = training.get("cohort") == cohort.meta.name
    recorded = training.get("input_sha256") or {}
    same_tables = bool(recorded) and cohort.root is not None and cohort_hashes(cohort.root) == recorded
    if not (same_name and same_tables):
        where = cohort.root or cohort.meta.name
        raise LymphCastError(f"{where}: not the cohort the fused model was trained on (bundle records cohort "
                             f"'{training.get('cohort')}' with other table hashes); --intermediate-from needs "
                             "that training cohort folder, unchanged")
    centres = training.get("centres") or cohort.meta.centre_ids
    return cohort.in_centres(centres).labelled()
