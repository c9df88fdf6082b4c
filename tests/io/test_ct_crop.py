"""Node-centred crops in patient coordinates: a sphere planted at a known LPS point must come out centred."""

from __future__ import annotations

import numpy as np
import pytest

from lymphcast.io.ct_crop import node_crop, read_study, resample_isotropic
from lymphcast.io.ct_series import scan_study
from lymphcast.io.ct_volume import read_series

from .ct_files import write_ct_series, write_study

SPHERE_LPS = np.array([3.2, -11.7, -152.6])   # mm
RADIUS_MM = 4.0


def _sphere_series(folder, *, orientation=(1, 0, 0, 0, 1, 0), spacing=(0.9, 0.8, 1.5), order=None):
    """A 16-slice, 24x24 series whose voxel centres lie around SPHERE_LPS; HU 1000 inside the sphere, 0 outside."""
    o = np.asarray(orientation, dtype=float)
    row, col = o[:3], o[3:]
    normal = np.cross(row, col)
    shape = (16, 24, 24)
    # put the sphere off-centre of the grid (about voxel (x 10.3, y 13.6, z 7.2)) so symmetry cannot hide errors
    origin = SPHERE_LPS - 10.3 * spacing[0] * row - 13.6 * spacing[1] * col - 7.2 * spacing[2] * normal
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    lps = (origin + i[..., None] * spacing[0] * row + j[..., None] * spacing[1] * col
           + k[..., None] * spacing[2] * normal)
    inside = np.linalg.norm(lps - SPHERE_LPS, axis=-1) <= RADIUS_MM
    stored = np.where(inside, 2024, 1024).astype(np.int16)
    order = order if order is not None else list(np.random.default_rng(1).permutation(shape[0]))
    write_ct_series(folder, stored, origin=origin, spacing=spacing, orientation=orientation, order=order)
    (info,) = scan_study(folder)
    return read_series(info)


def _centroid(crop):
    weight = np.clip(crop, 0, None)  # background 0 HU, sphere 1000 HU, fill -1024 outside the scan
    return np.array([(weight * idx).sum() / weight.sum() for idx in np.indices(crop.shape)])


ORIENTATIONS = {"axial": (1, 0, 0, 0, 1, 0),
                "rotated_30": (np.cos(0.5236), np.sin(0.5236), 0, -np.sin(0.5236), np.cos(0.5236), 0),
                "feet_first": (1, 0, 0, 0, -1, 0)}


@pytest.mark.parametrize("orientation", ORIENTATIONS.values(), ids=ORIENTATIONS.keys())
def test_sphere_comes_out_centred_within_half_a_voxel(tmp_path, orientation):
    vol = _sphere_series(tmp_path / "s", orientation=orientation)
    crop = node_crop(vol, SPHERE_LPS, size=16, spacing_mm=1.0)
    assert crop.shape == (16, 16, 16) and crop.dtype == np.float32
    np.testing.assert_allclose(_centroid(crop), [8, 8, 8], atol=0.5)
    assert crop[8, 8, 8] > 900


@pytest.mark.parametrize("orientation", ORIENTATIONS.values(), ids=ORIENTATIONS.keys())
def test_crop_axes_are_z_superior_y_posterior_x_left(tmp_path, orientation):
    """Crop around a point shifted from the sphere: the sphere must move by the shift along the stated axes."""
    vol = _sphere_series(tmp_path / "s", orientation=orientation)
    shift = np.array([1.5, -2.0, 2.5])  # centre moved 1.5 mm left, 2 mm anterior, 2.5 mm superior of the sphere
    crop = node_crop(vol, SPHERE_LPS + shift, size=32, spacing_mm=0.5)
    expected = np.array([16, 16, 16]) - shift[::-1] / 0.5  # axes (z, y, x): the sphere sits inferior, posterior, right
    np.testing.assert_allclose(_centroid(crop), expected, atol=0.5)


def test_outside_the_scan_is_air_or_zero_iodine(tmp_path):
    vol = _sphere_series(tmp_path / "s")
    far = node_crop(vol, SPHERE_LPS + 500, size=8)
    assert np.all(far == -1024)
    vol.unit = "mg/mL"
    assert np.all(node_crop(vol, SPHERE_LPS + 500, size=8) == 0)
    assert np.all(node_crop(vol, SPHERE_LPS + 500, size=8, fill=-5) == -5)


def test_resample_isotropic_keeps_the_sphere_where_it_was(tmp_path):
    vol = _sphere_series(tmp_path / "s", orientation=ORIENTATIONS["rotated_30"])
    iso = resample_isotropic(vol, 1.0)
    assert iso.spacing == (1.0, 1.0, 1.0)
    centre_index = _centroid(iso.array)[::-1]  # (z, y, x) -> (x, y, z)
    np.testing.assert_allclose(iso.index_to_lps(centre_index), SPHERE_LPS, atol=0.5)


def test_study_crops_stack_channels_and_flag_a_missing_iodine_map(tmp_path):
    root = write_study(tmp_path / "with_de")
    study = read_study(root)
    assert len(study.skipped) == 2  # the SR and the text file
    centres = [[5.0, 5.0, 3.0], [2.0, 8.0, 5.0]]
    crops, present = study.crops(centres, size=8, spacing_mm=0.5, channels=("conventional", "iodine", "vmi_low"))
    assert crops.shape == (2, 3, 8, 8, 8) and crops.dtype == np.float32
    assert present.tolist() == [True, True, True]
    np.testing.assert_allclose(crops[:, 0], 1000 - 1024)        # HU
    np.testing.assert_allclose(crops[:, 1], 10.0, atol=1e-4)    # 1000 stored x 0.01 = 10 mg/mL

    plain = tmp_path / "plain"
    write_ct_series(plain / "02_art", np.full((4, 16, 16), 1100, dtype=np.int16), spacing=(0.7, 0.7, 2.5))
    crops, present = read_study(plain).crops(centres, size=8, spacing_mm=0.5)
    assert present.tolist() == [True, False]
    np.testing.assert_allclose(crops[:, 0], 76.0)
    assert np.all(crops[:, 1] == 0)


def test_a_real_scanner_file_crops_through_the_models_path(tmp_path):
    """pydicom's CT_small.dcm (written by a scanner, not here): read_study + crops, the path the CT model takes,
    put the pixel at a node centre given in patient coordinates at the middle of the cube."""
    import shutil

    import pydicom
    from pydicom.data import get_testdata_file

    source = get_testdata_file("CT_small.dcm", download=False)
    assert source is not None, "pydicom's bundled CT_small.dcm is missing"
    shutil.copy(source, tmp_path / "CT_small.dcm")
    ds = pydicom.dcmread(source)
    row_mm, col_mm = (float(v) for v in ds.PixelSpacing)
    o = np.array([float(v) for v in ds.ImageOrientationPatient])
    r, c = 40, 70  # a pixel (row, column) inside the body
    lps = np.array([float(v) for v in ds.ImagePositionPatient]) + c * col_mm * o[:3] + r * row_mm * o[3:]
    crops, present = read_study(tmp_path).crops(lps[None], size=8, spacing_mm=min(row_mm, col_mm),
                                                channels=("conventional", "iodine"))
    hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert crops.shape == (1, 2, 8, 8, 8) and present.tolist() == [True, False]
    assert crops[0, 0, 4, 4, 4] == pytest.approx(hu[r, c], abs=1e-3)
