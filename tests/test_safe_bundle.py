"""Bundles store models without pickles: a round trip keeps every prediction, and a file that names code outside
the allow-list, or a bundle with a missing, extra or altered file, is refused with a message naming it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from lymphcast.bundle import BundleError, load_bundle, lock_bundle, save_bundle, verify_bundle
from lymphcast.cohort import read_cohort
from lymphcast.pipeline import predict, train
from lymphcast.safe_state import UnsafeStateError, load_state, save_state


class Holder:  # a plain class in the tests package: outside the allow-list
    pass


def test_state_round_trip_keeps_types_and_sharing(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU())
    shared = np.arange(6, dtype=np.float32).reshape(2, 3)
    obj = {"net": net, "a": shared, "again": shared, "t": (1, 2.5, float("nan"), None, "x"), "s": {3, 1},
           "series": pd.Series([0.1, 0.2], index=pd.Index(["P1", "P2"], name="patient_id"), name="p"),
           "frame": pd.DataFrame({"side": ["left", "right"], "p": [0.3, 0.4]}),
           "multi": pd.Series([1.0, 2.0], index=pd.MultiIndex.from_tuples([("P1", "left"), ("P1", "right")],
                                                                          names=["patient_id", "side"])),
           "scalar": np.float64(0.5), "dtype": np.dtype("int16"), "tdtype": torch.float32, "sl": slice(1, None),
           3: "int key", "strings": np.array(["II", "III"])}
    save_state(obj, tmp_path, "m")
    back = load_state(tmp_path, "m")
    assert back["again"] is back["a"] and np.array_equal(back["a"], shared)
    x = torch.randn(4, 3)
    assert torch.equal(back["net"](x), net(x)) and isinstance(back["net"][0].weight, torch.nn.Parameter)
    assert back["t"][:2] == (1, 2.5) and np.isnan(back["t"][2]) and back["s"] == {1, 3}
    pd.testing.assert_series_equal(back["series"], obj["series"])
    pd.testing.assert_frame_equal(back["frame"], obj["frame"])
    pd.testing.assert_series_equal(back["multi"], obj["multi"])
    assert back["scalar"] == 0.5 and back["dtype"] == np.int16 and back["tdtype"] is torch.float32
    assert back["sl"] == slice(1, None) and back[3] == "int key" and list(back["strings"]) == ["II", "III"]


def test_code_outside_the_allow_list_is_refused(tmp_path):
    with pytest.raises(UnsafeStateError, match="Holder"):
        save_state({"x": Holder()}, tmp_path, "m")
    with pytest.raises(UnsafeStateError, match="lambda"):
        save_state({"f": lambda v: v}, tmp_path, "m")
    save_state({"x": 1}, tmp_path, "m")
    for evil in ({"$object": "os:system", "state": {"$dict": {}}}, {"$type": "builtins:eval"},
                 {"$function": "subprocess:run"}, {"$object": "sklearn.utils:Bunch.__init__", "state": None}):
        (tmp_path / "m.json").write_text(json.dumps({"format": 1, "root": evil}))
        with pytest.raises(UnsafeStateError):
            load_state(tmp_path, "m")


@pytest.fixture(scope="module")
def clinical_bundle(synth_cohort_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle") / "model"
    save_bundle(train(read_cohort(synth_cohort_dir), centres=["A", "B", "C"]), folder)
    return folder


def test_saved_bundle_predicts_the_same_and_states_its_calibration(clinical_bundle, synth_cohort_dir):
    cohort = read_cohort(synth_cohort_dir)
    bundle = load_bundle(clinical_bundle)
    first, _ = predict(bundle, cohort, centres=["D"])
    again, _ = predict(load_bundle(clinical_bundle), cohort, centres=["D"])
    pd.testing.assert_frame_equal(first, again)
    assert not list(clinical_bundle.glob("*.joblib")) and (clinical_bundle / "clinical.safetensors").is_file()
    slope = bundle.manifest["calibration"]["slope"]
    assert slope[1] < slope[0] < slope[2]
    assert "Calibration" in (clinical_bundle / "MODEL_CARD.md").read_text()


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "clinical.json").unlink(), "missing"),
    (lambda d: (d / "notes.txt").write_text("x"), "not in SHA256SUMS"),
    (lambda d: (d / "bundle.json").write_text((d / "bundle.json").read_text().replace("youden", "youdem")),
     "does not match the hash"),
    (lambda d: (d / "SHA256SUMS").unlink(), "SHA256SUMS"),
])
def test_damaged_bundles_are_refused(clinical_bundle, tmp_path, damage, message):
    copy = tmp_path / "copy"
    shutil.copytree(clinical_bundle, copy)
    damage(copy)
    with pytest.raises(BundleError, match=message):
        load_bundle(copy)


def test_lock_marks_the_source_and_refuses_to_lock_twice(clinical_bundle, tmp_path):
    digest = lock_bundle(clinical_bundle, tmp_path / "locked", note="pilot at centre D")
    manifest = verify_bundle(tmp_path / "locked")
    assert manifest["locked"]["source_sha256"] == load_bundle(clinical_bundle).sha256
    assert load_bundle(tmp_path / "locked").sha256 == digest
    assert "pilot at centre D" in (tmp_path / "locked" / "MODEL_CARD.md").read_text()
    with pytest.raises(BundleError, match="already a locked bundle"):
        lock_bundle(tmp_path / "locked", tmp_path / "twice")


def test_records_and_random_generators_round_trip(tmp_path):
    records = np.zeros(3, dtype=[("value", "f8"), ("feature_idx", "u4"), ("is_leaf", "u1")])
    records["value"] = [0.5, 1.5, 2.5]
    obj = {"r": records, "g": np.random.default_rng(3), "rs": np.random.RandomState(4)}
    save_state(obj, tmp_path, "m")
    back = load_state(tmp_path, "m")
    assert back["r"].dtype == records.dtype and np.array_equal(back["r"], records)
    assert back["g"].random() == np.random.default_rng(3).random()
    assert back["rs"].rand() == np.random.RandomState(4).rand()
