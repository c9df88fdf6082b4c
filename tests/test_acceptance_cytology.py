"""Acceptance of the cytology model as the issue states it (slow; run with `make test-slow`): on a fresh synthetic
cohort with another seed, trained with default settings on the Papanicolaou centres (B-D) less a stratified
quarter of their patients, the model's AUC on the held-out Diff-Quik centre A reaches 0.95 x the AUC of the exact
cytology risk `risk_cytology` on the same patients, and that centre loses at most 0.03 AUC against the internal
validation (the quarter kept back) and at most 0.03 AUC against the same patients' slides re-rendered in Pap (the
stain swap: what the stain costs, free of case mix). Tiling memory is measured by benchmarks/bench_cytology_tiling.py."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from lymphcast.cohort import read_cohort
from lymphcast.evaluate.discrimination import auc_score, delong_test
from lymphcast.modalities.cytology import CytologyModel
from lymphcast.synth import generate_cohort
from lymphcast.synth.stain_swap import restain_cohort


@pytest.mark.slow
def test_cytology_model_reaches_the_oracle_and_survives_the_other_stain(tmp_path):
    import torch

    torch.set_num_threads(2)
    folder = generate_cohort(tmp_path / "cohort", patients=800, centres=4, seed=31,
                             modalities=["clinical", "cytology"], progress=False)
    cohort = read_cohort(folder)
    assert cohort.meta.centres[0].acquisition["cytology"]["stain"] == "Diff-Quik"
    pap = cohort.in_centres(["B", "C", "D"]).labelled()
    ids, y = pap.patients["patient_id"].to_numpy(), pap.patients["n1b"].astype(int).to_numpy()
    train_ids, internal_ids = train_test_split(ids, test_size=0.25, random_state=0, stratify=y)
    model = CytologyModel(seed=0, progress=False).fit(pap.subset(train_ids))
    truth = pd.read_csv(folder / "truth" / "patients.csv", dtype={"patient_id": str}).set_index("patient_id")
    results = {}
    for name, part in (("internal", pap.subset(internal_ids)), ("external", cohort.in_centres(["A"]).labelled())):
        labels = part.labels().astype(int)
        p = model.predict_proba(part).loc[labels.index]
        results[name] = (auc_score(labels, p), auc_score(labels, truth.loc[labels.index, "risk_cytology"]))
    (auc_i, oracle_i), (auc_e, oracle_e) = results["internal"], results["external"]
    print(f"internal AUC {auc_i:.3f} (risk_cytology {oracle_i:.3f}); external Diff-Quik AUC {auc_e:.3f} "
          f"(risk_cytology {oracle_e:.3f}, ratio {auc_e / oracle_e:.3f})")
    assert auc_e >= 0.95 * oracle_e, f"external AUC {auc_e:.3f} < 0.95 x risk_cytology AUC {oracle_e:.3f}"
    # What the stain itself costs, free of case mix: centre A's patients again, their slides re-rendered in Pap
    # (same cells and draws, only the stain differs), paired on identical patients and labels.
    dq_a = cohort.in_centres(["A"]).labelled()
    pap_a = read_cohort(restain_cohort(folder, tmp_path / "pap_A", centres=("A",), stain="Pap")).in_centres(["A"])
    labels = dq_a.labels().astype(int)
    p_dq = model.predict_proba(dq_a).loc[labels.index].to_numpy(float)
    p_pap = model.predict_proba(pap_a.labelled()).loc[labels.index].to_numpy(float)
    swap = delong_test(labels.to_numpy(int), p_pap, p_dq)
    auc_pap_a, auc_dq_a = swap.auc1, swap.auc2
    print(f"stain swap, centre A: Diff-Quik AUC {auc_dq_a:.3f}, Pap AUC {auc_pap_a:.3f}; Pap - Diff-Quik "
          f"{swap.difference:+.3f} ({swap.difference_ci_low:+.3f} to {swap.difference_ci_high:+.3f}, "
          f"paired DeLong p = {swap.p_value:.3f})")
    assert auc_pap_a - auc_dq_a <= 0.03, f"Diff-Quik costs {auc_pap_a - auc_dq_a:.3f} AUC on the same patients"
    # as the issue words it; on different patients this gap also holds case mix (see the stain swap above)
    assert auc_i - auc_e <= 0.03, f"the Diff-Quik centre loses {auc_i - auc_e:.3f} AUC against internal validation"
