"""Intermediate (feature-level) fusion, the comparison to stacking: the same stacking patients, hidden features
read by hooks, masked modalities, probabilities for everyone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lymphcast.cohort import LymphCastError
from lymphcast.fusion.embeddings import node_features
from lymphcast.fusion.intermediate import comparison_section, training_cohort

from tests.fusion.conftest import TRAIN_CENTRES


@pytest.fixture(scope="module")
def test_cohort(multimodal_cohort):
    return multimodal_cohort.in_centres(["D"])


def test_fits_on_the_stackers_patients(small_intermediate, small_fused, multimodal_cohort):
    stack = small_intermediate.stacking_patients(multimodal_cohort.in_centres(TRAIN_CENTRES))
    assert set(stack.patients["patient_id"]) == set(small_fused.validation_proba_.index)
    summary = small_intermediate.training_summary_
    assert summary["patients_stacking"] == small_fused.training_summary_["patients_stacking"]
    assert set(summary["components"]) == {"clinical", "us_image", "cytology"}
    assert all(1 <= k <= 3 for k in summary["components"].values())


def test_hook_reads_the_layer_the_logit_comes_from(small_fused, test_cohort):
    import torch

    model = small_fused.models_["us_image"]
    feats = node_features(model, test_cohort)
    regions = model._regions(test_cohort)
    assert feats.index.tolist() == list(regions.node_ids)
    with torch.no_grad():
        again = model.network().out(torch.tensor(feats.to_numpy(), dtype=torch.float32)).squeeze(-1).numpy()
    np.testing.assert_allclose(again, model._logits(regions), atol=1e-4)


def test_predicts_everyone_and_masks_a_missing_modality(small_intermediate, small_fused, test_cohort):
    p = small_intermediate.predict_proba(test_cohort)
    ids = test_cohort.patients["patient_id"]
    assert p.index.tolist() == ids.tolist()
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all() and p.nunique() > 1
    x = small_intermediate.features(test_cohort)
    lacking = small_fused.predict_proba(test_cohort).index[
        small_fused.predict_levels(test_cohort)["modalities"]["cytology"].isna().to_numpy()]
    assert len(lacking) and len(lacking) < len(ids)
    pcs = [c for c in x.columns if c.startswith("cytology_pc")]
    assert (x.loc[lacking, pcs] == 0).all().all() and (x.loc[lacking, "cytology_present"] == 0).all()
    having = x.index.difference(lacking)
    assert (x.loc[having, "cytology_present"] == 1).all() and (x.loc[having, pcs].abs().sum(axis=1) > 0).all()
    assert (x["clinical_present"] == 1).all()


def test_comparison_numbers():
    from lymphcast.evaluate.discrimination import auc_score

    rng = np.random.default_rng(0)
    y = pd.Series(rng.integers(0, 2, 80), index=[f"p{i}" for i in range(80)])
    late = pd.Series(np.clip(0.3 * y + rng.uniform(0, 0.7, 80), 0.01, 0.99), index=y.index)
    inter = pd.Series(rng.uniform(0.01, 0.99, 80), index=y.index)
    out = comparison_section(late, inter, y, {"C": 1.0})
    assert out["rows"][0]["auc"] == pytest.approx(auc_score(y.to_numpy(), late.to_numpy()))
    assert out["rows"][1]["auc"] == pytest.approx(auc_score(y.to_numpy(), inter.to_numpy()))
    assert out["late_minus"] == pytest.approx(out["rows"][0]["auc"] - out["rows"][1]["auc"])
    assert 0 <= out["p_value"] < 0.05 and "slope" in out["rows"][0]


def test_training_cohort_only_from_the_recorded_tables(multimodal_cohort, tmp_path):
    from lymphcast.provenance import cohort_hashes

    hashes = cohort_hashes(multimodal_cohort.root)
    manifest = {"training": {"cohort": multimodal_cohort.meta.name, "centres": TRAIN_CENTRES, "input_sha256": hashes}}
    train = training_cohort(manifest, multimodal_cohort)
    expected = multimodal_cohort.in_centres(TRAIN_CENTRES).labelled().patients["patient_id"]
    assert train.patients["patient_id"].tolist() == expected.tolist()
    other = {"training": {**manifest["training"], "input_sha256": {**hashes, "patients.csv": "0" * 64}}}
    with pytest.raises(LymphCastError, match="not the cohort the fused model was trained on"):
        training_cohort(other, multimodal_cohort)
