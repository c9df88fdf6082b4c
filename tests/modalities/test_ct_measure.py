"""The CT node measurements on cubes drawn here: a sphere's size, attenuation and iodine come back in millimetres,
HU and mg/mL at any voxel size; a calcification beside it and a cystic half show; a study without an iodine map
gives NaN iodine; and the reader ranks a planted difference."""

from __future__ import annotations

import numpy as np
import pytest

from lymphcast.modalities.ct_measure import MEASUREMENTS, fit_reader, measure_crops

FAT_HU = -100.0


def _cube(size: int, spacing: float, radius_mm: float, hu: float, iodine: float, *, calcified=False,
          cystic=False, seed=0):
    """(1, 2, s, s, s) crop: a sphere of soft tissue in fat, with noise; its iodine map; optional calcification
    touching the sphere and a low-density half."""
    rng = np.random.default_rng(seed)
    axis = (np.arange(size) - size // 2) * spacing
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    inside = z ** 2 + y ** 2 + x ** 2 <= radius_mm ** 2
    vol = np.where(inside, hu, FAT_HU) + rng.normal(0, 5, inside.shape)
    io = np.where(inside, iodine, 0.0) + rng.normal(0, 0.05, inside.shape)
    if cystic:
        vol[inside & (x > 0)] = 20.0
    if calcified:
        vol[(z ** 2 + y ** 2 + (x + radius_mm) ** 2) <= (1.5 * spacing) ** 2] = 600.0
    return np.stack([vol, io])[None].astype(np.float16)


def _row(crop, spacing, present=(True, True)):
    return dict(zip(MEASUREMENTS, measure_crops(crop, np.array([present]), spacing)[0]))


@pytest.mark.parametrize("spacing", [1.0, 2.0])
def test_a_sphere_is_measured_in_physical_units(spacing):
    size = int(32 / spacing)
    m = _row(_cube(size, spacing, 6.0, 110.0, 2.6), spacing)
    volume_ml = 4 / 3 * np.pi * 6.0 ** 3 / 1000
    assert np.exp(m["log_volume_ml"]) == pytest.approx(volume_ml, rel=0.35)
    for extent in ("log_extent_axial_max_mm", "log_extent_axial_min_mm", "log_extent_craniocaudal_mm"):
        assert np.exp(m[extent]) == pytest.approx(12.0, abs=1.5 * spacing)
    assert m["hu_median"] == pytest.approx(110.0, abs=5)
    assert m["iodine_median"] == pytest.approx(2.6, abs=0.1)
    assert m["hu_centre_1mm"] == pytest.approx(110.0, abs=8)
    assert m["hu_max_near"] < 220


def test_calcification_and_cystic_change_show():
    plain = _row(_cube(32, 1.0, 6.0, 110.0, 2.6), 1.0)
    calcified = _row(_cube(32, 1.0, 6.0, 110.0, 2.6, calcified=True), 1.0)
    cystic = _row(_cube(32, 1.0, 6.0, 110.0, 2.6, cystic=True), 1.0)
    assert calcified["hu_max_near"] > 400 > plain["hu_max_near"]
    assert cystic["hu_p10"] < 40 < plain["hu_p10"]
    assert np.exp(cystic["log_volume_ml"]) == pytest.approx(np.exp(plain["log_volume_ml"]), rel=0.2)


def test_no_iodine_map_gives_nan_iodine_only():
    m = _row(_cube(32, 1.0, 6.0, 110.0, 2.6), 1.0, present=(True, False))
    iodine = [k for k in MEASUREMENTS if k.startswith("iodine")]
    assert all(np.isnan(m[k]) for k in iodine)
    assert not any(np.isnan(v) for k, v in m.items() if k not in iodine)
    single = measure_crops(_cube(32, 1.0, 6.0, 110.0, 2.6)[:, :1], np.array([[True]]), 1.0)
    assert np.isnan(single[0, MEASUREMENTS.index("iodine_median")])


def test_the_reader_ranks_a_planted_iodine_difference():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 80)
    crops = np.concatenate([_cube(24, 1.0, rng.uniform(3, 7), rng.normal(100, 10), 1.9 + 1.0 * k, seed=i)
                            for i, k in enumerate(labels)])
    features = measure_crops(crops, np.ones((80, 2), bool), 1.0)
    reader = fit_reader(features[:60], labels[:60], seed=0)
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(labels[60:], reader.decision_function(features[60:])) > 0.9
