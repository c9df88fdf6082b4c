"""Scanning a CT study folder into series, and choosing the series the CT model reads.

`write_ct_series` (also used by test_ct_volume and test_ct_crop) writes a real one-file-per-slice CT series
with pydicom, so the readers are exercised on files nobody here decoded by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lymphcast.cohort.errors import LymphCastError
from lymphcast.io.ct_select import choose_series
from lymphcast.io.ct_series import kernel_class, scan_study

from .ct_files import FOR_UID, write_ct_series, write_study  # noqa: F401


def _by_folder(series):
    return {s.folder.name: s for s in series}


def test_scan_classifies_kind_phase_kernel_and_thickness(tmp_path):
    found = scan_study(write_study(tmp_path / "study"))
    s = _by_folder(found)
    assert set(s) == {"01_loc", "02_art", "03_ven_bone", "04_native", "05_art_mpr", "06_vmi", "07_iodine"}
    assert [s[k].kind for k in sorted(s)] == ["localizer", "conventional", "conventional", "conventional",
                                              "conventional", "vmi", "iodine"]
    assert (s["02_art"].phase, s["03_ven_bone"].phase, s["04_native"].phase) == ("arterial", "venous", "unenhanced")
    assert (s["02_art"].contrast, s["04_native"].contrast) == (True, False)
    assert (s["02_art"].kernel_class, s["03_ven_bone"].kernel_class) == ("soft", "sharp")
    assert s["02_art"].slice_thickness_mm == 2.5 and len(s["02_art"].files) == 4
    assert s["06_vmi"].kev == 40.0 and s["02_art"].kev is None
    assert s["05_art_mpr"].derived and not s["02_art"].derived
    assert s["02_art"].axial and not s["01_loc"].axial


def test_scan_skips_sr_and_non_dicom_files_naming_them(tmp_path):
    found = scan_study(write_study(tmp_path / "study"))
    skipped = "\n".join(found.skipped)
    assert len(found.skipped) == 2
    assert "08_report.dcm: not an image" in skipped and "SR" in skipped
    assert "notes.txt: not a DICOM file" in skipped


def test_choose_prefers_enhanced_arterial_original_soft_series_and_finds_de_companions(tmp_path):
    chosen = choose_series(scan_study(write_study(tmp_path / "study")))
    assert chosen.conventional.folder.name == "02_art"  # not the thinner bone-kernel, derived or unenhanced ones
    assert chosen.vmi_low.folder.name == "06_vmi"
    assert chosen.iodine.folder.name == "07_iodine"


def test_iodine_map_in_another_frame_of_reference_is_not_a_companion(tmp_path):
    chosen = choose_series(scan_study(write_study(tmp_path / "study", iodine_for="1.2.3.999")))
    assert chosen.iodine is None and chosen.vmi_low is not None


def test_thinnest_series_wins_when_all_else_is_equal(tmp_path):
    vol = np.zeros((3, 16, 16), dtype=np.int16)
    for name, thick in (("a", 3.0), ("b", 1.25), ("c", 2.0)):
        write_ct_series(tmp_path / name, vol, spacing=(1, 1, thick), description="Neck CT arterial")
    assert choose_series(scan_study(tmp_path)).conventional.folder.name == "b"


def test_study_without_usable_series_lists_what_it_found(tmp_path):
    vol = np.zeros((3, 16, 16), dtype=np.int16)
    write_ct_series(tmp_path / "loc", vol[:1], image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"), description="Scout")
    write_ct_series(tmp_path / "cor", vol, orientation=(1, 0, 0, 0, 0, -1), description="Neck coronal")
    with pytest.raises(LymphCastError, match="no series fits") as err:
        choose_series(scan_study(tmp_path))
    assert "a localizer series" in str(err.value) and "not axial" in str(err.value)
    with pytest.raises(LymphCastError, match="no series fits"):
        choose_series([])


def test_scan_of_one_file_returns_its_whole_series_only(tmp_path):
    vol = np.zeros((3, 16, 16), dtype=np.int16)
    files = write_ct_series(tmp_path / "s", vol)
    write_ct_series(tmp_path / "s", vol, order=[10, 11, 12])  # a second series in the same folder
    found = scan_study(files[1])
    assert len(found) == 1 and sorted(found[0].files) == sorted(files)


def test_missing_study_is_a_clear_error(tmp_path):
    with pytest.raises(LymphCastError, match="does not exist"):
        scan_study(tmp_path / "nowhere")


@pytest.mark.parametrize("kernel, expected", [("B30f", "soft"), ("Br40", "soft"), ("Qr40d", "soft"),
                                              ("B70f", "sharp"), ("Hr64", "sharp"), ("STANDARD", "soft"),
                                              ("SOFT", "soft"), ("BONEPLUS", "sharp"), ("LUNG", "sharp"),
                                              ("FC08", "soft"), ("FC52", "sharp"), ("B", "soft"), ("L", "sharp"),
                                              ("YC", "sharp"), ("", "unknown"), ("XYZ", "unknown")])
def test_kernel_class_reads_vendor_names(kernel, expected):
    assert kernel_class(kernel) == expected
