"""In-memory cohorts with a known logistic truth, built straight from DataFrames (no synthetic generator)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from lymphcast.cohort import STANDARD_FIELDS, Centre, Cohort, CohortMeta, FieldSpec

T_STAGE = FieldSpec(type="category", values=("T1", "T2", "T3"))
FIELDS = {"age": STANDARD_FIELDS["age"], "sex": STANDARD_FIELDS["sex"],
          "tumour_size_mm": STANDARD_FIELDS["tumour_size_mm"], "multifocal": STANDARD_FIELDS["multifocal"],
          "t_stage": T_STAGE}
# True log-odds of N1b: strong size effect, moderate sex/multifocality/T stage effects, none of age.
TRUTH = {"intercept": -1.5, "size_per_10mm": 1.8, "male": 1.0, "multifocal": 0.7, "T2": 0.5, "T3": 1.2}


def true_log_odds(df: pd.DataFrame) -> np.ndarray:
    def has(column, value):
        return (df[column] == value).to_numpy(float)

    size = (df["tumour_size_mm"].to_numpy(float) - 15) / 10
    return (TRUTH["intercept"] + TRUTH["size_per_10mm"] * size + TRUTH["male"] * has("sex", "M")
            + TRUTH["multifocal"] * has("multifocal", 1) + TRUTH["T2"] * has("t_stage", "T2")
            + TRUTH["T3"] * has("t_stage", "T3"))


def simulate(n: int, seed: int, *, prefix: str = "p") -> pd.DataFrame:
    """Patients whose N1b is drawn from the logistic truth above (typed like read_cohort's output)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "patient_id": [f"{prefix}{i:05d}" for i in range(n)],
        "centre": "A",
        "age": rng.uniform(18, 80, n).round(),
        "sex": pd.array(rng.choice(["F", "M"], n, p=[0.75, 0.25]), dtype="string"),
        "tumour_size_mm": rng.gamma(3, 5, n).clip(1, 80).round(1),
        "multifocal": pd.array(rng.integers(0, 2, n), dtype="Int64"),
        "t_stage": pd.array(rng.choice(["T1", "T2", "T3"], n, p=[0.5, 0.3, 0.2]), dtype="string"),
    })
    df.insert(2, "n1b", pd.array(rng.binomial(1, 1 / (1 + np.exp(-true_log_odds(df)))), dtype="Int64"))
    return df


def make_cohort(patients: pd.DataFrame, fields: dict[str, FieldSpec] | None = None, name: str = "test") -> Cohort:
    fields = FIELDS if fields is None else fields
    fields = {k: v for k, v in fields.items() if k in patients.columns}
    meta = CohortMeta(name=name, centres=[Centre(id="A")],
                      clinical_fields={k: (None if STANDARD_FIELDS.get(k) == v else v) for k, v in fields.items()})
    return Cohort(meta=meta, fields=fields, patients=patients.reset_index(drop=True))
