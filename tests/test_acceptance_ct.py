"""Acceptance of the CT model as the issue states it (slow; run with `make test-slow`): on a fresh synthetic
cohort with another seed, trained with default settings on centres A-C and scored on D (a dual-energy centre),
the CT model's patient AUC reaches 0.95 x the AUC of the exact CT risk `risk_ct` on the same patients, and the
dual-energy model (conventional series + iodine map) beats the same model on the conventional series alone with a
paired DeLong p < 0.05 on the nodes of D (what an iodine map measures is a node's; at patient level even the exact
risks gain too little from iodine for 300 patients to show it). Inference time per node is measured by
benchmarks/bench_ct.py, not asserted."""

from __future__ import annotations

import pandas as pd
import pytest

from lymphcast.cohort import read_cohort
from lymphcast.evaluate.discrimination import auc_score, delong_test
from lymphcast.modalities.ct import CtModel
from lymphcast.synth import generate_cohort


@pytest.mark.slow
def test_ct_model_reaches_the_oracle_and_iodine_helps(tmp_path):
    import torch

    torch.set_num_threads(2)
    folder = generate_cohort(tmp_path / "cohort", patients=800, centres=4, seed=21,
                             modalities=["clinical", "ct"], progress=False)
    cohort = read_cohort(folder)
    assert cohort.meta.centres[3].acquisition["ct"]["dual_energy"]
    train, test = cohort.in_centres(["A", "B", "C"]), cohort.in_centres(["D"])
    y = test.labels().astype(int)
    dual = CtModel(seed=0, progress=False).fit(train).predict_levels(test)
    single = CtModel(seed=0, energy="single", progress=False).fit(train).predict_levels(test)
    truth = pd.read_csv(folder / "truth" / "patients.csv", dtype={"patient_id": str}).set_index("patient_id")
    oracle = auc_score(y.to_numpy(), truth.loc[y.index, "risk_ct"].to_numpy())
    ours = auc_score(y.to_numpy(), dual["patients"].loc[y.index].to_numpy())
    node_truth = pd.read_csv(folder / "truth" / "nodes.csv", dtype={"node_id": str}).set_index("node_id")
    ids = dual["nodes"].index
    versus = delong_test(node_truth.loc[ids, "metastatic_true"].to_numpy(), dual["nodes"].to_numpy(),
                         single["nodes"].loc[ids].to_numpy())
    print(f"dual-energy AUC {ours:.3f}, risk_ct AUC {oracle:.3f}, ratio {ours / oracle:.3f}; node AUC dual "
          f"{versus.auc1:.3f} vs single {versus.auc2:.3f} (p {versus.p_value:.4f})")
    assert ours >= 0.95 * oracle, f"CT-model AUC {ours:.3f} < 0.95 x risk_ct AUC {oracle:.3f}"
    assert versus.difference > 0 and versus.p_value < 0.05, versus
