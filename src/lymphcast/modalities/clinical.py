"""The clinical model: P(N1b) per patient from the preoperative clinical fields of a cohort.

Two kinds share the same preprocessing (clinical_features.py):
- "logistic": L2-penalised logistic regression, penalty chosen by stratified CV on log-loss; being linear in
  its inputs it doubles as a nomogram (nomogram.py) and gives exact additive contributions per feature;
- "gbm": small, regularised gradient boosting, calibrated by cross-validation (its raw scores are not
  probabilities).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from ..cohort import Cohort, LymphCastError
from ..cohort.values import did_you_mean
from .base import ModalityModel, probability_series
from .clinical_features import column_transformer, feature_frame, skewed_numbers, training_types

KINDS = ("logistic", "gbm")
NUMBER_SCALES = ("auto", "linear")
CALIBRATIONS = ("auto", "sigmoid", "isotonic")
# Penalty grid (C) on standardised inputs: from strong shrinkage to practically unpenalised, so large cohorts
# can reach a calibration slope of one.
PENALTY_GRID = np.logspace(-3, 2, 16)
ISOTONIC_MIN = 1000


def _check_choice(option: str, value, choices) -> None:
    if value not in choices:
        raise LymphCastError(f"{option} must be one of {', '.join(choices)}, not {value!r}" +
                             did_you_mean(str(value), choices))


class ClinicalModel(ModalityModel):
    """P(N1b) from clinical fields.

    kind: "logistic" (penalised logistic regression; a nomogram) or "gbm" (calibrated gradient boosting).
    fields: clinical fields to use (default: every clinical column of the training cohort).
    folds: cross-validation folds for the penalty (logistic) or the calibration (gbm).
    number_scale: "auto" models non-negative, right-skewed numbers (tumour size, TSH) on the log scale;
    "linear" keeps every number as recorded.
    calibration: for gbm; "auto" takes isotonic only from ISOTONIC_MIN labelled patients on, since isotonic
    regression overfits smaller sets.
    """

    name = "clinical"
    level = "patient"

    def __init__(self, *, kind: str = "logistic", fields: list[str] | None = None, seed: int = 0,
                 folds: int = 5, calibration: str = "auto", number_scale: str = "auto"):
        self.kind = kind
        self.fields = fields
        self.seed = seed
        self.folds = folds
        self.calibration = calibration
        self.number_scale = number_scale

    def fit(self, cohort: Cohort) -> "ClinicalModel":
        _check_choice("kind", self.kind, KINDS)
        _check_choice("calibration", self.calibration, CALIBRATIONS)
        _check_choice("number_scale", self.number_scale, NUMBER_SCALES)
        train = cohort.labelled()
        y = train.labels().to_numpy(dtype=int)
        minority = int(min((y == 1).sum(), (y == 0).sum()))
        if minority < 2:
            raise LymphCastError(f"cohort '{cohort.meta.name}' needs at least 2 labelled patients with and 2 "
                                 f"without N1b to fit the clinical model; it has {int(y.sum())} with and "
                                 f"{int((y == 0).sum())} without")
        types = training_types(train, self.fields)
        folds = StratifiedKFold(min(self.folds, minority), shuffle=True, random_state=self.seed)
        estimator = self._logistic(folds) if self.kind == "logistic" else self._gbm(folds, len(y))
        frame = feature_frame(train, types)
        log_fields = skewed_numbers(frame, types) if self.number_scale == "auto" else []
        pipeline = Pipeline([("features", column_transformer(types, log_fields)), ("model", estimator)])
        pipeline.fit(frame, y)
        self.features_ = types  # field name → type, in the order the pipeline expects
        self.pipeline_ = pipeline
        self.classes_ = np.array([0, 1])
        self.log_fields_ = log_fields
        if self.kind == "logistic":
            # The average training patient, against whom contributions are measured.
            self.reference_ = pipeline["features"].transform(frame).mean(axis=0)
            # Observed range of each number, the span of its nomogram axis.
            self.number_ranges_ = {name: (float(frame[name].min()), float(frame[name].max()))
                                   for name, t in types.items() if t == "number"}
        return self

    def _logistic(self, folds):
        return LogisticRegressionCV(Cs=PENALTY_GRID, l1_ratios=(0.0,), cv=folds, scoring="neg_log_loss",
                                    solver="newton-cholesky", max_iter=200, use_legacy_attributes=False)

    def _gbm(self, folds, n: int):
        # Slow learning and shallow trees: clinical tables are small, and on the UCI table a faster learner
        # gained no AUC but spread its probabilities too far.
        boosted = HistGradientBoostingClassifier(learning_rate=0.03, max_iter=100, max_depth=3, max_leaf_nodes=8,
                                                 min_samples_leaf=20, l2_regularization=1.0,
                                                 early_stopping=False, random_state=self.seed)
        method = self.calibration
        if method == "auto":
            method = "isotonic" if n >= ISOTONIC_MIN else "sigmoid"
        # One calibrator on all out-of-fold scores (ensemble=False) rather than an average of five fitted on a
        # fifth each: averaging pulled probabilities towards the middle (calibration slope ~1.3 on UCI).
        return CalibratedClassifierCV(boosted, method=method, cv=folds, ensemble=False)

    def predict_proba(self, cohort: Cohort) -> pd.Series:
        self.check_fitted()
        ids = cohort.patients["patient_id"]
        if len(ids) == 0:
            return probability_series([], ids, name=self.name)
        from .clinical_fast import fast_transform

        frame = feature_frame(cohort, self.features_)
        x = fast_transform(self.pipeline_["features"], frame)
        p = (self.pipeline_.predict_proba(frame) if x is None else self.pipeline_["model"].predict_proba(x))[:, 1]
        return probability_series(p, ids, name=self.name)

    # --- the logistic kind's explanations ------------------------------------------------------------
    def _linear(self):
        self.check_fitted()
        if self.kind != "logistic":
            raise LymphCastError(f"additive contributions and nomograms need kind='logistic', not {self.kind!r}")
        return self.pipeline_["features"], self.pipeline_["model"].coef_[0]

    def log_odds_terms(self, cohort: Cohort) -> pd.DataFrame:
        """Each feature's term of the linear predictor, uncentred: their sum + intercept = logit P(N1b)."""
        transformer, coef = self._linear()
        x = transformer.transform(feature_frame(cohort, self.features_)) * coef
        return pd.DataFrame({name: x[:, transformer.output_indices_[name]].sum(axis=1) for name in self.features_},
                            index=pd.Index(cohort.patients["patient_id"], name="patient_id"))

    @property
    def intercept_(self) -> float:
        self._linear()
        return float(self.pipeline_["model"].intercept_[0])

    @property
    def baseline_log_odds(self) -> float:
        """Log-odds of N1b for the average training patient (the point contributions are measured from)."""
        transformer, coef = self._linear()
        return self.intercept_ + float(self.reference_ @ coef)

    def contributions(self, cohort: Cohort) -> pd.DataFrame:
        """Per-patient, per-feature log-odds contributions relative to the average training patient.

        Row sums plus `baseline_log_odds` equal logit P(N1b) (for a linear model with this reference these
        are the exact Shapley values).
        """
        transformer, coef = self._linear()
        ref = self.reference_ * coef
        offset = {name: ref[transformer.output_indices_[name]].sum() for name in self.features_}
        return self.log_odds_terms(cohort) - pd.Series(offset)

    def nomogram(self):
        """Points per feature value (widest feature = 100 points) and the total-points → risk scale."""
        from .nomogram import build_nomogram
        transformer, coef = self._linear()
        return build_nomogram(transformer, coef, self.intercept_, self.features_, self.number_ranges_)

    def plot_nomogram(self, **kwargs):
        """The classic nomogram drawing as a matplotlib Figure."""
        from .nomogram import plot_nomogram
        return plot_nomogram(self.nomogram(), **kwargs)

    def figures(self) -> dict:
        return {"nomogram": self.plot_nomogram()} if self.kind == "logistic" else {}
