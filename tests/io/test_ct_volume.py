"""Reading one CT series: slice order by geometry, header geometry, rescale, refusals, compressed syntaxes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from lymphcast.cohort.errors import LymphCastError
from lymphcast.io.ct_series import scan_study
from lymphcast.io.ct_volume import read_series

from .ct_files import write_ct_series


def _stored(shape=(5, 16, 16), seed=0):
    return np.random.default_rng(seed).integers(0, 3000, shape).astype(np.int16)


def _read(folder):
    (info,) = scan_study(folder)
    return read_series(info)


@pytest.mark.parametrize("order", [[4, 3, 2, 1, 0], [2, 0, 4, 1, 3]], ids=["reversed", "shuffled"])
def test_slices_are_ordered_by_position_not_file_name(tmp_path, order):
    stored = _stored()
    write_ct_series(tmp_path / "s", stored, origin=(-40.5, 12.25, -300.0), spacing=(0.6, 0.8, 2.5), order=order)
    vol = _read(tmp_path / "s")
    np.testing.assert_allclose(vol.array, stored.astype(np.float32) - 1024)
    assert vol.array.dtype == np.float32 and vol.unit == "HU"
    np.testing.assert_allclose(vol.spacing, (0.6, 0.8, 2.5))
    np.testing.assert_allclose(vol.origin, (-40.5, 12.25, -300.0))
    np.testing.assert_allclose(vol.direction, np.eye(3).ravel(), atol=1e-9)


def test_feet_first_stack_and_oblique_rows_keep_each_voxel_at_its_header_position(tmp_path):
    """Normal pointing to the feet and rows rotated in-plane: voxel (x, y, k) must land where slice k's header says."""
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    orientation = (c, s, 0.0, s, -c, 0.0)  # row x column = (0, 0, -1): the stack runs towards the feet
    stored = _stored((4, 16, 16))
    files = write_ct_series(tmp_path / "s", stored, origin=(5.0, -7.0, 20.0), spacing=(0.5, 0.75, 3.0),
                            orientation=orientation, order=[1, 3, 0, 2])
    vol = _read(tmp_path / "s")
    import pydicom

    for k, f in enumerate(files):  # slice k was written with stored[k]; its header says where it lies
        ds = pydicom.dcmread(f)
        hits = [z for z in range(4) if np.array_equal(vol.array[z], ds.pixel_array - 1024.0)]
        assert len(hits) == 1
        np.testing.assert_allclose(vol.index_to_lps((0, 0, hits[0])), ds.ImagePositionPatient, atol=1e-3)
        # the voxel one column along the row lies 0.5 mm along the row cosines, one row down 0.75 mm along columns
        np.testing.assert_allclose(vol.index_to_lps((1, 1, hits[0])) - vol.index_to_lps((0, 0, hits[0])),
                                   0.5 * np.array(orientation[:3]) + 0.75 * np.array(orientation[3:]), atol=1e-6)


def test_iodine_map_with_slope_001_comes_back_in_mg_per_ml(tmp_path):
    stored = _stored((3, 16, 16))
    write_ct_series(tmp_path / "iod", stored, slope=0.01, intercept=0.0, description="Iodine map",
                    image_type=("DERIVED", "SECONDARY", "AXIAL", "IODINE"), rescale_type="MGML")
    vol = _read(tmp_path / "iod")
    assert vol.series.kind == "iodine" and vol.unit == "mg/mL"
    np.testing.assert_allclose(vol.array, stored * 0.01, atol=1e-4)


def test_missing_slice_is_refused_naming_the_series_folder(tmp_path):
    files = write_ct_series(tmp_path / "gap_series", _stored((6, 16, 16)), spacing=(1, 1, 2.0))
    files[3].unlink()
    with pytest.raises(LymphCastError, match=r"gap_series: about 1 slice\(s\) missing between 0002.dcm"):
        _read(tmp_path / "gap_series")


def test_duplicated_slice_is_refused(tmp_path):
    stored = _stored((4, 16, 16))
    positions = [(0, 0, 0), (0, 0, 2), (0, 0, 2), (0, 0, 4)]
    write_ct_series(tmp_path / "dup_series", stored, positions=positions)
    with pytest.raises(LymphCastError, match="dup_series: .*same position"):
        _read(tmp_path / "dup_series")


def test_mixed_sizes_and_orientations_are_refused(tmp_path):
    uid = "1.2.826.0.1.3680043.8.498.555"
    write_ct_series(tmp_path / "mixed", _stored((3, 16, 16)), series_uid=uid)
    write_ct_series(tmp_path / "mixed", _stored((1, 16, 20)), series_uid=uid, origin=(0, 0, 3), order=[7])
    with pytest.raises(LymphCastError, match=r"mixed: mixed size \(Rows x Columns\)"):
        _read(tmp_path / "mixed")
    write_ct_series(tmp_path / "mixed2", _stored((3, 16, 16)), series_uid=uid + "1")
    write_ct_series(tmp_path / "mixed2", _stored((1, 16, 16)), series_uid=uid + "1", origin=(0, 0, 3), order=[7],
                    orientation=(1, 0, 0, 0, 0.8, 0.6))
    with pytest.raises(LymphCastError, match="mixed2: mixed ImageOrientationPatient"):
        _read(tmp_path / "mixed2")


def test_gantry_tilt_is_refused_clearly(tmp_path):
    write_ct_series(tmp_path / "tilted", _stored((4, 16, 16)), spacing=(1, 1, 2.0), shear=(0, 0.35, 0))
    with pytest.raises(LymphCastError, match=r"tilted: slice positions are sheared by 9\.9 degrees .*gantry tilt"):
        _read(tmp_path / "tilted")


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.5"], ids=["deflated", "rle"])
def test_compressed_series_reads_back_equal(tmp_path, syntax):
    import pydicom
    from pydicom.uid import UID

    stored = _stored((3, 16, 16), seed=4)
    write_ct_series(tmp_path / "plain", stored)
    files = write_ct_series(tmp_path / "packed", stored, syntax=UID(syntax))
    assert pydicom.dcmread(files[0]).file_meta.TransferSyntaxUID == syntax
    np.testing.assert_array_equal(_read(tmp_path / "packed").array, _read(tmp_path / "plain").array)


def test_real_ct_file_from_pydicom_gives_the_geometry_its_header_states(tmp_path):
    import pydicom
    from pydicom.data import get_testdata_file

    source = get_testdata_file("CT_small.dcm", download=False)  # a real scanner file shipped inside pydicom
    assert source is not None, "pydicom's bundled CT_small.dcm is missing"
    shutil.copy(source, tmp_path / "CT_small.dcm")
    ds = pydicom.dcmread(source)
    (info,) = scan_study(tmp_path / "CT_small.dcm")
    assert (info.kind, info.modality, info.kernel_class) == ("conventional", "CT", "soft")
    vol = read_series(info)
    assert vol.array.shape == (1, ds.Rows, ds.Columns)
    row_mm, col_mm = (float(v) for v in ds.PixelSpacing)
    np.testing.assert_allclose(vol.spacing, (col_mm, row_mm, float(ds.SliceThickness)))
    np.testing.assert_allclose(vol.origin, [float(v) for v in ds.ImagePositionPatient])
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(vol.array[0], hu)
    assert vol.array[0, 64, 37] == pytest.approx(int(ds.pixel_array[64, 37]) - 1024)


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"])
def test_real_compressed_files_decode_like_their_uncompressed_twin(tmp_path, name):
    """pydicom ships one MR slice in several transfer syntaxes; GDCM must decode each to the same pixels."""
    from pydicom.data import get_testdata_file

    volumes = []
    for i, file in enumerate(("MR_small.dcm", name)):
        source = get_testdata_file(file, download=False)
        if source is None:
            pytest.skip(f"pydicom's bundled {file} is not present")
        (tmp_path / str(i)).mkdir()
        shutil.copy(source, tmp_path / str(i) / file)
        volumes.append(_read(tmp_path / str(i)))
    assert volumes[1].series.slices[0].transfer_syntax != volumes[0].series.slices[0].transfer_syntax
    np.testing.assert_array_equal(volumes[1].array, volumes[0].array)
