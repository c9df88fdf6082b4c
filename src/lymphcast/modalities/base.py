"""The one contract every modality model follows, so fusion, evaluation, explanation and the service treat
them alike (scikit-learn style).

- `__init__` takes keyword-only settings and only stores them (so `get_params`/`clone` work);
- `fit(cohort)` learns from the labelled patients of a Cohort and returns self;
- `predict_proba(cohort)` returns the probability of N1b per patient as a float Series indexed by
  patient_id (NaN where the modality has no data for that patient: fusion masks those);
- node-level modalities also implement `predict_nodes` (index node_id) and `predict_sides`
  (MultiIndex patient_id, side);
- learned state lives in attributes ending with `_`; `is_fitted` checks them;
- `oof` says how the pipeline gets honest training-set probabilities for thresholds: "kfold" (refit k
  times, cheap models) or "validation" (fit once; the model keeps its held-out patients' probabilities in
  `validation_proba_`, for networks too slow to refit k times).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import ClassVar, Literal

import pandas as pd

from ..cohort import Cohort, LymphCastError


class NotFittedError(LymphCastError):
    pass


class ModalityModel(ABC):
    name: ClassVar[str]
    level: ClassVar[Literal["patient", "node"]]
    oof: ClassVar[Literal["kfold", "validation"]] = "kfold"

    @abstractmethod
    def fit(self, cohort: Cohort) -> "ModalityModel": ...

    @abstractmethod
    def predict_proba(self, cohort: Cohort) -> pd.Series: ...

    def predict_nodes(self, cohort: Cohort) -> pd.Series:
        raise NotImplementedError(f"the {self.name} model works at patient level and does not score nodes")

    def predict_sides(self, cohort: Cohort) -> pd.Series:
        raise NotImplementedError(f"the {self.name} model works at patient level and does not score sides")

    def predict_levels(self, cohort: Cohort) -> dict[str, pd.Series]:
        """Every level this model scores, in one call: "patients", and for node-level models "sides" and
        "nodes" (node-level models override this to read their images once)."""
        out = {"patients": self.predict_proba(cohort)}
        if self.level == "node":
            out.update(sides=self.predict_sides(cohort), nodes=self.predict_nodes(cohort))
        return out

    def figures(self) -> dict:
        """Pictures that explain the fitted model as a whole (name → matplotlib Figure); saved with the bundle."""
        return {}

    # --- scikit-learn-like plumbing -------------------------------------------------------------
    @classmethod
    def setting_names(cls) -> list[str]:
        """The keyword settings __init__ takes (seed included)."""
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self) -> dict:
        return {p: getattr(self, p) for p in self.setting_names()}

    def clone(self) -> "ModalityModel":
        return type(self)(**self.get_params())

    @property
    def is_fitted(self) -> bool:
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"the {self.name} model is not fitted; call fit() first")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def probability_series(values, patient_ids, name: str = "probability") -> pd.Series:
    return pd.Series(values, index=pd.Index(patient_ids, name="patient_id"), name=name, dtype="float64")


def reader_aucs(y, scores, names: list[str], combined) -> dict:
    """Validation AUC of each reader's score (columns of `scores`, named by `names`) and, where there are several,
    of their recalibrated combination `combined`, rounded to 3 places; {} when `y` holds one class."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return {}
    scores = np.asarray(scores, float).reshape(len(y), -1)
    out = {name: float(roc_auc_score(y, scores[:, j])) for j, name in enumerate(names)}
    if len(names) > 1:
        out["combined"] = float(roc_auc_score(y, combined))
    return {k: round(v, 3) for k, v in out.items()}
