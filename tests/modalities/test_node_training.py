"""The training/validation split of the node-level models: by patients, or one whole centre held out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lymphcast.modalities.node_training import split_by_centre

from .clinical_cohorts import make_cohort


def _cohort(sizes: dict[str, int], seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = [{"patient_id": f"{c}{i:03d}", "centre": c, "n1b": int(rng.random() < 0.3)}
            for c, n in sizes.items() for i in range(n)]
    frame = pd.DataFrame(rows)
    frame["n1b"] = frame["n1b"].astype("Int64")
    return make_cohort(frame)


def test_the_centre_nearest_the_validation_share_is_held_out_whole():
    cohort = _cohort({"A": 100, "B": 60, "C": 240})
    train, val = split_by_centre(cohort, 0.25, seed=0)
    share = cohort.patients.set_index("patient_id").loc[val, "centre"]
    assert set(val) == {f"A{i:03d}" for i in range(100)} and share.iloc[0] == "A"  # 100/400 = 0.25 exactly
    assert not set(train) & set(val) and len(train) + len(val) == 400


def test_one_centre_or_a_centre_without_events_falls_back_to_a_patient_split():
    one = _cohort({"A": 200})
    train, val = split_by_centre(one, 0.25, seed=0)
    assert len(val) == 50 and len(train) == 150
    two = _cohort({"A": 200, "B": 60})
    two.patients.loc[two.patients["centre"] == "B", "n1b"] = 0  # B has no N1b: cannot measure anything
    train, val = split_by_centre(two, 0.25, seed=0)
    assert two.patients.set_index("patient_id").loc[val, "centre"].nunique() == 2
