"""CtModel on a small synthetic cohort with CT studies: outputs at every level, dual vs single energy, patients
without CT, unreadable studies, the single-energy comparison, pickling, Grad-CAM through the fitted model."""

from __future__ import annotations

import os
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest

from lymphcast.cohort import LymphCastError, read_cohort
from lymphcast.modalities.ct import CtModel
from lymphcast.modalities.ct_crops import ct_nodes

TINY = {"epochs": 1, "size": 16, "spacing_mm": 2.0, "channels": (4, 8), "progress": False}


@pytest.fixture(scope="module")
def cohort(synth_ct_cohort_dir):
    return read_cohort(synth_ct_cohort_dir)


@pytest.fixture(scope="module")
def fitted(cohort):
    return CtModel(seed=3, **TINY).fit(cohort.in_centres(["A", "B", "C"]))


def test_levels_agree_and_nodes_are_scored(fitted, cohort):
    test = cohort.in_centres(["D"])
    levels = fitted.predict_levels(test)
    assert set(levels["nodes"].index) == set(ct_nodes(test)["node_id"])
    assert levels["nodes"].between(0, 1).all() and levels["patients"].between(0, 1).all()
    assert fitted.training_summary_["nodes_train"] > 0


def test_crops_carry_the_iodine_map_only_where_the_study_is_dual_energy(fitted, cohort):
    crops = fitted.crops(cohort)
    dual = {c.id for c in cohort.meta.centres if c.acquisition.get("ct", {}).get("dual_energy")}
    centre = cohort.nodes.set_index("node_id").loc[crops.node_ids, "patient_id"].map(
        cohort.patients.set_index("patient_id")["centre"])
    np.testing.assert_array_equal(crops.present[:, 1], centre.isin(dual).to_numpy())
    assert crops.present[:, 0].all() and crops.volumes.shape[1:] == (2, 16, 16, 16)
    assert np.all(crops.volumes[~crops.present[:, 1], 1] == 0)


def test_single_energy_model_reads_one_channel(cohort):
    model = CtModel(seed=3, energy="single", **TINY).fit(cohort.in_centres(["A", "B", "C"]))
    assert model.crops(cohort.in_centres(["D"])).volumes.shape[1] == 1
    assert model.predict_proba(cohort.in_centres(["D"])).between(0, 1).all()


def test_patients_without_ct_get_no_opinion(fitted, cohort, tmp_path):
    dst = tmp_path / "bare"
    shutil.copytree(cohort.root, dst, ignore=shutil.ignore_patterns("ct"))
    nodes = pd.read_csv(dst / "nodes.csv", dtype=str, keep_default_na=False)
    nodes[[c for c in nodes.columns if c.startswith("ct_")]] = ""
    nodes.to_csv(dst / "nodes.csv", index=False)
    levels = fitted.predict_levels(read_cohort(dst).in_centres(["D"]))
    assert levels["patients"].isna().all() and len(levels["nodes"]) == 0


def test_unreadable_study_is_named(fitted, cohort, tmp_path):
    dst = tmp_path / "broken"
    shutil.copytree(cohort.root, dst)
    test = read_cohort(dst).in_centres(["D"])
    study = dst / ct_nodes(test)["ct_file"].iloc[0]
    for f in study.rglob("*.dcm"):
        f.write_bytes(b"not dicom")
    with pytest.raises(LymphCastError, match=study.name):
        fitted.predict_proba(test)


def test_node_without_centre_is_refused(cohort, tmp_path):
    dst = tmp_path / "nocentre"
    shutil.copytree(cohort.root, dst)
    nodes = pd.read_csv(dst / "nodes.csv", dtype=str, keep_default_na=False)
    row = nodes.index[nodes["ct_file"] != ""][0]
    nodes.loc[row, "ct_z_mm"] = ""
    nodes.to_csv(dst / "nodes.csv", index=False)
    with pytest.raises(LymphCastError, match=nodes.loc[row, "node_id"]):
        CtModel(**TINY).fit(read_cohort(dst))


def test_pickle_round_trip_and_gradcam(fitted, cohort):
    from lymphcast.explain.gradcam3d import ct_pictures

    test = cohort.in_centres(["D"])
    revived = pickle.loads(pickle.dumps(fitted))
    pd.testing.assert_series_equal(revived.predict_nodes(test), fitted.predict_nodes(test))
    node = ct_nodes(test)["node_id"].iloc[0]
    picture = ct_pictures(revived, test, [node])[node]
    assert picture.ndim == 3 and picture.shape[2] == 3


def test_bad_settings_are_refused(cohort):
    with pytest.raises(LymphCastError, match="energy"):
        CtModel(energy="triple", **TINY).fit(cohort)
    with pytest.raises(LymphCastError, match="rollup"):
        CtModel(rollup="mean", **TINY).fit(cohort)
    with pytest.raises(LymphCastError, match="validate_on"):
        CtModel(validate_on="centres", **TINY).fit(cohort)


def test_two_readers_are_combined_and_saved_safely(fitted, cohort, tmp_path):
    from lymphcast.modalities.ct_measure import MEASUREMENTS
    from lymphcast.safe_state import load_state, save_state

    summary = fitted.training_summary_
    assert set(summary["node_score_weights"]) == {"cnn", "measurements"}
    assert summary["nodes_validation"] > 0 and set(summary["validation_node_auc"]) == {"cnn", "measurements", "combined"}
    assert all(0 <= auc <= 1 for auc in summary["validation_node_auc"].values())
    assert len(fitted.reader_columns_) == len(MEASUREMENTS)  # dual-energy training nodes: every column measured
    test = cohort.in_centres(["D"])
    save_state(fitted, tmp_path, "ct")
    revived = load_state(tmp_path, "ct")
    pd.testing.assert_series_equal(revived.predict_nodes(test), fitted.predict_nodes(test))
    nodes = list(ct_nodes(test)["node_id"].iloc[:2])
    details = fitted.node_details(test, nodes + ["no such node"])
    assert list(details) == nodes and all(" mm axially" in t and "log-odds" in t for t in details.values())


def test_single_energy_reader_skips_iodine_and_the_cnn_alone_is_an_option(cohort):
    from lymphcast.modalities.ct_measure import MEASUREMENTS

    train, test = cohort.in_centres(["A", "B", "C"]), cohort.in_centres(["D"])
    single = CtModel(seed=3, energy="single", **TINY).fit(train)
    assert not any(MEASUREMENTS[i].startswith("iodine") for i in single.reader_columns_)
    cnn_only = CtModel(seed=3, measurements=False, **TINY).fit(train)
    assert cnn_only.reader_ is None and list(cnn_only.training_summary_["node_score_weights"]) == ["cnn"]
    assert cnn_only.node_details(test, list(ct_nodes(test)["node_id"])) == {}
    assert cnn_only.predict_nodes(test).between(0, 1).all()


def test_crops_read_again_come_from_the_cache_until_the_study_changes(cohort, tmp_path, monkeypatch):
    import lymphcast.io.ct_crop as ct_crop
    from lymphcast.modalities import ct_crops

    dst = tmp_path / "copy"
    shutil.copytree(cohort.root, dst)
    copy = read_cohort(dst).in_centres(["D"])
    reads = []
    real = ct_crop.read_study
    monkeypatch.setattr(ct_crop, "read_study", lambda path, *a, **k: reads.append(path) or real(path, *a, **k))
    settings = {"size": 16, "spacing_mm": 2.0, "progress": False}
    first = ct_crops.node_crops(copy, **settings)
    studies = len(reads)
    assert studies > 0
    again = ct_crops.node_crops(copy, **settings)
    assert len(reads) == studies  # nothing read twice
    np.testing.assert_array_equal(first.volumes, again.volumes)
    study = copy.media_path(str(copy.nodes["ct_file"].dropna().iloc[0]))
    changed = sorted(p for p in study.rglob("*") if p.is_file())[0]
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10 ** 9))
    ct_crops.node_crops(copy, **settings)
    assert len(reads) == studies + 1  # the changed study, and only it, read again
