"""Acceptance of the ultrasound-image model as the issue states it (slow: about 7 minutes on 2 cores; run with
`make test-slow`): on a fresh 1,000-patient synthetic cohort, trained on centres A-C with default settings, the
patient-level AUC on the held-out centre D reaches 0.95 x the AUC of the exact ultrasound risk `risk_us` on
the same patients, and the node detector finds most nodes of centre D."""

from __future__ import annotations

import pandas as pd
import pytest

from lymphcast.cohort import read_cohort
from lymphcast.evaluate.discrimination import auc_score
from lymphcast.modalities.us_image import UsImageModel
from lymphcast.synth import generate_cohort


@pytest.mark.slow
def test_external_centre_auc_reaches_095_of_the_oracle(tmp_path):
    folder = generate_cohort(tmp_path / "cohort", patients=1000, centres=4, seed=5,
                             modalities=["clinical", "us_image"], progress=False)
    cohort = read_cohort(folder)
    model = UsImageModel(seed=0, progress=False).fit(cohort.in_centres(["A", "B", "C"]))
    test = cohort.in_centres(["D"])
    y = test.labels().astype(int)
    truth = pd.read_csv(folder / "truth" / "patients.csv", dtype={"patient_id": str}).set_index("patient_id")
    ours = auc_score(y.to_numpy(), model.predict_proba(test).loc[y.index].to_numpy())
    oracle = auc_score(y.to_numpy(), truth.loc[y.index, "risk_us"].to_numpy())
    assert ours >= 0.95 * oracle, f"patient AUC {ours:.3f} < 0.95 x risk_us AUC {oracle:.3f}"
    print(f"patient AUC {ours:.3f}, risk_us AUC {oracle:.3f}, ratio {ours / oracle:.3f}")
    # the issue asks the report to show detection, not a level; this floor catches a broken detector (measured on
    # this cohort: recall 0.77, precision 0.81; 0.82-0.92 and 0.86-0.96 on other seeds)
    detection = model.detector_.score(test)
    assert detection["recall"] >= 0.7 and detection["precision"] >= 0.7, detection
