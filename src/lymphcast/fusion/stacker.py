"""A masked stacker: penalised logistic regression over modality log-odds and their presence masks.

Fitted on patients (or sides, or levels) that none of the modality models trained on, so the weights it gives
each modality reflect how well that modality generalises, not how well it remembers. Its own honest
probabilities on those rows come from k-fold cross-fitting (`oof_`), for thresholds and the report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold

from .design import masked_logits


CS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0)  # inverse L2 strengths tried when C is "auto"


class MaskedStacker:
    """names: modality columns; extra: further numeric columns used as they are (e.g. laterality, level dummies);
    C: inverse L2 strength (1.0: mild, the design has few columns), or "auto" (chosen among CS by cross-validated
    log loss; on benchmarks/bench_fusion.py seed 37 it did not help: calibration slope on the new centre 1.62
    against 1.44 with C = 1)."""

    def __init__(self, names, extra=(), C: float | str = 1.0, folds: int = 5, seed: int = 0):
        self.names, self.extra, self.C, self.folds, self.seed = list(names), list(extra), C, folds, seed

    def design(self, frame: pd.DataFrame) -> pd.DataFrame:
        x = masked_logits(frame, self.names)
        for col in self.extra:
            x[col] = frame[col].to_numpy(float) if col in frame else 0.0
        # a modality nobody in the fitting rows had carries no information: its columns stay 0 and the penalty
        # keeps their weights at 0
        return x

    def fit(self, frame: pd.DataFrame, y: pd.Series) -> "MaskedStacker":
        keep = y.notna().to_numpy()
        x, target = self.design(frame).to_numpy()[keep], y.to_numpy()[keep].astype(int)
        self.columns_ = list(self.design(frame).columns)
        k = min(self.folds, int(np.bincount(target, minlength=2).min()))
        self.C_ = self._choose_c(x, target, k)
        self.model_ = LogisticRegression(C=self.C_, max_iter=2000).fit(x, target)
        self.oof_ = pd.Series(np.nan, index=frame.index, dtype=float)
        if k >= 2:
            oof = np.zeros(len(target))
            for train, test in StratifiedKFold(k, shuffle=True, random_state=self.seed).split(x, target):
                part = LogisticRegression(C=self.C_, max_iter=2000).fit(x[train], target[train])
                oof[test] = part.predict_proba(x[test])[:, 1]
            self.oof_.iloc[np.flatnonzero(keep)] = oof
        return self

    def _choose_c(self, x: np.ndarray, y: np.ndarray, k: int) -> float:
        if self.C != "auto":
            return float(self.C)
        if k < 2:
            return 1.0
        folds = StratifiedKFold(k, shuffle=True, random_state=self.seed)
        search = LogisticRegressionCV(Cs=list(CS), cv=folds, scoring="neg_log_loss", max_iter=2000, l1_ratios=(0.0,),
                                      use_legacy_attributes=False).fit(x, y)
        return float(np.ravel(search.C_)[0])

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        x = self.design(frame).to_numpy()
        return pd.Series(self.model_.predict_proba(x)[:, 1], index=frame.index, dtype=float)

    def weights(self) -> pd.Series:
        """The fitted coefficients by column (and the intercept): the model card and the report show them."""
        return pd.Series([*self.model_.coef_[0], self.model_.intercept_[0]], index=[*self.columns_, "intercept"])
