"""Reading incoming ultrasound DICOM and writing the result SR back into the same study."""

from __future__ import annotations

import copy
import io
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from lymphcast.cohort import LymphCastError
from lymphcast.io.images import read_image
from lymphcast.service.dicom_sr import SrReportError, read_risk_report, risk_report, to_bytes
from lymphcast.service.dicom_us import DicomInputError, read_header, read_us_instance
from lymphcast.synth.us_dicom import US_IMAGE_STORAGE, us_dataset
from tests.service.conftest import EXAMPLE_RESULT as RESULT

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
US_MULTIFRAME_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"



def _pixels(frames: int = 0) -> np.ndarray:
    img = (np.arange(48 * 64) * 7 % 251).astype(np.uint8).reshape(48, 64)
    return np.stack([img] * frames) if frames else img


def _dataset(sop_class: str = US_IMAGE_STORAGE, pixels: np.ndarray | None = None, **extra) -> Dataset:
    ds = us_dataset(sop_class, _pixels() if pixels is None else pixels, patient_id="P000001", spacing_mm=0.08,
                    token="svc", study="s1", series="1", instance=1, description="Neck US", vendor="Acme",
                    frequency_mhz=12.0)
    ds.ImageLaterality = "L"
    ds.ImageComments = "Level III node N02"
    for keyword, value in extra.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def _bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_us_still_reads_side_level_label_and_pixels(tmp_path):
    ds = _dataset()
    raw = _bytes(ds)
    inst = read_us_instance(raw, name="orthanc/abc")
    assert (inst.side, inst.level, inst.node_label) == ("left", "III", "N02")
    assert (inst.patient_id, inst.study_uid, inst.sop_uid) == ("P000001", ds.StudyInstanceUID, ds.SOPInstanceUID)
    assert inst.pixels.dtype == np.uint8 and np.array_equal(inst.pixels, _pixels())
    assert inst.spacing_mm == pytest.approx(0.08)
    assert inst.accession is None and len(inst.sha256) == 64
    path = tmp_path / "a.dcm"
    path.write_bytes(raw)
    assert read_us_instance(path, name=str(path)).sha256 == inst.sha256


def test_level_from_anatomic_region_code_then_series_description():
    region = Dataset()
    region.CodeValue, region.CodingSchemeDesignator, region.CodeMeaning = "LEVEL-IV", "99LOCAL", "Neck level IV"
    inst = read_us_instance(_bytes(_dataset(AnatomicRegionSequence=Sequence([region]), Laterality="R",
                                            ImageLaterality=None)), name="x")
    assert (inst.side, inst.level, inst.node_label) == ("right", "IV", "N02")
    inst = read_us_instance(_bytes(_dataset(ImageComments=None, SeriesDescription="Neck US levels IIa-III")),
                            name="x")
    assert (inst.level, inst.node_label) == ("II", None)
    assert read_us_instance(_bytes(_dataset(ImageComments="node 7")), name="x").level is None


def test_rgb_converted_as_read_image_does(tmp_path):
    rgb = np.stack([_pixels(), _pixels()[::-1], 255 - _pixels()], axis=-1)
    ds = _dataset(SamplesPerPixel=3, PhotometricInterpretation="RGB", PlanarConfiguration=0)
    ds.PixelData = rgb.tobytes()
    path = tmp_path / "rgb.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert np.array_equal(read_us_instance(path, name="rgb").pixels, read_image(path).pixels)


@pytest.mark.parametrize("make, expected", [
    (lambda: _bytes(_dataset(ImageLaterality=None)), "ImageLaterality (0020,0062)"),
    (lambda: _bytes(_dataset(ImageLaterality="B")), "expected 'L' or 'R'"),
    (lambda: _bytes(_dataset(ImageComments="level I node 3")), "level I"),
    (lambda: _bytes(_dataset(PatientID=None)), "PatientID (0010,0020)"),
    (lambda: _bytes(_dataset(StudyInstanceUID=None)), "StudyInstanceUID (0020,000D)"),
    (lambda: _bytes(_dataset(CT_IMAGE_STORAGE)), "CT Image Storage"),
    (lambda: to_bytes(risk_report(RESULT, [_dataset()])), "Comprehensive SR"),
    (lambda: _bytes(_dataset(US_MULTIFRAME_STORAGE, _pixels(3), NumberOfFrames=3)), "video path"),
    (lambda: _bytes(_dataset(US_IMAGE_STORAGE, _pixels(2), NumberOfFrames=2)), "NumberOfFrames (0028,0008)"),
    (lambda: _bytes(_dataset())[:-200], "PixelData (7FE0,0010)"),
    (lambda: _bytes(_dataset())[:400], "truncated"),
    (lambda: b"\x89PNG\r\n\x1a\n" + bytes(300), "not a DICOM"),
    (lambda: b"", "empty"),
])
def test_bad_instances_are_refused_clearly(make, expected):
    with pytest.raises(DicomInputError) as info:
        read_us_instance(make(), name="orthanc/bad-1")
    assert isinstance(info.value, LymphCastError)
    assert "orthanc/bad-1" in str(info.value) and expected in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DicomInputError, match="gone.dcm"):
        read_us_instance(tmp_path / "gone.dcm", name=str(tmp_path / "gone.dcm"))


def test_sr_same_study_new_series_and_round_trip():
    evidence = _dataset(AccessionNumber="ACC1")
    sr = risk_report(RESULT, [evidence])
    back = pydicom.dcmread(io.BytesIO(to_bytes(sr)))
    assert back.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert back.Modality == "SR" and back.StudyInstanceUID == evidence.StudyInstanceUID
    assert back.PatientID == "P000001" and back.AccessionNumber == "ACC1"
    assert back.SeriesInstanceUID != evidence.SeriesInstanceUID
    assert back.CurrentRequestedProcedureEvidenceSequence[0].StudyInstanceUID == evidence.StudyInstanceUID
    report = read_risk_report(back)
    assert report["patient"] == pytest.approx(0.42)
    assert report["sides"] == pytest.approx({"left": 0.31, "right": 0.12})
    assert report["levels"] == [{"side": "left", "level": "II", "probability": pytest.approx(0.10)}]
    assert report["nodes"] == [{"node_id": "P000001-N01", "side": "left", "level": "III",
                                "probability": pytest.approx(0.7)}]
    assert report["thresholds"] == pytest.approx(RESULT["thresholds"])
    assert report["bundle_sha256"] == RESULT["provenance"]["bundle_sha256"]
    assert report["lymphcast_version"] == "0.1.0" and report["case_id"] == RESULT["case_id"]
    # Same result, same UIDs: a resend replaces the earlier copy in PACS.
    assert risk_report(RESULT, [evidence]).SOPInstanceUID == sr.SOPInstanceUID


def test_sr_from_received_header():
    evidence = read_header(_bytes(_dataset()), name="orthanc/abc")
    assert "PixelData" not in evidence
    back = pydicom.dcmread(io.BytesIO(to_bytes(risk_report(RESULT, [evidence]))))
    assert back.StudyInstanceUID == evidence.StudyInstanceUID
    with pytest.raises(DicomInputError, match="PatientID"):
        read_header(_bytes(_dataset(PatientID=None)), name="orthanc/abc")


def test_sr_with_empty_levels_and_nodes():
    result = {**RESULT, "levels": [], "nodes": []}
    report = read_risk_report(pydicom.dcmread(io.BytesIO(to_bytes(risk_report(result, [_dataset()])))))
    assert report["levels"] == [] and report["nodes"] == [] and report["sides"]["left"] == pytest.approx(0.31)


@pytest.mark.parametrize("change, expected", [
    ({"patient": {"probability": 1.5}}, "probability"),
    ({"sides": [{"side": "up", "probability": 0.1}]}, "side"),
    ({"provenance": {}}, "bundle_sha256"),
])
def test_bad_result_is_refused(change, expected):
    with pytest.raises(SrReportError, match=expected):
        risk_report({**RESULT, **change}, [_dataset()])
    with pytest.raises(SrReportError, match="no evidence"):
        risk_report(RESULT, [])


def test_read_risk_report_refuses_other_documents():
    other = copy.deepcopy(risk_report(RESULT, [_dataset()]))
    other.ConceptNameCodeSequence[0].CodeValue = "126000"
    with pytest.raises(SrReportError, match="ConceptNameCodeSequence"):
        read_risk_report(other)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
def test_sr_passes_dciodvfy(tmp_path):
    path = tmp_path / "sr.dcm"
    path.write_bytes(to_bytes(risk_report(RESULT, [_dataset()])))
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
    assert errors == []
