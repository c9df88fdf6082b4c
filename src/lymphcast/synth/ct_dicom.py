"""Write a synthetic CT study as DICOM: one file per slice (CT Image Storage), one folder per series.

Layout (shared contract with ingest): media/ct/<patient_id>/<NN>_<short_name>/<IIII>.dcm. HU are stored as int16
with RescaleSlope 1 / RescaleIntercept -1024; iodine maps as uint16 with RescaleSlope 0.01 (mg/mL). No real
patient data: PatientID is the synthetic id and no other identifier is filled. UIDs come from a token of the
renderer's random generator (us_dicom.uid), so the same seed writes the same files. A study is written into a
hidden temporary folder and renamed when complete, so an interrupted run never leaves a study looking whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

from ..cohort.io import atomic_dir
from .us_dicom import uid

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
HU_INTERCEPT = -1024.0
IODINE_SLOPE = 0.01
CONTRAST_AGENT = "Iohexol 350 mgI/mL"
DEFLATED = DeflatedExplicitVRLittleEndian
PLAIN = ExplicitVRLittleEndian


@dataclass(frozen=True)
class Study:
    patient_id: str
    token: str
    kernel: str
    transfer_syntax: str = ExplicitVRLittleEndian

    @property
    def frame_uid(self) -> str:  # one frame of reference: every series of the study shares the patient's position
        return uid(self.token, self.patient_id, "frame")


@dataclass(frozen=True)
class SeriesSpec:
    number: int
    name: str                   # folder: <NN>_<name>
    description: str
    image_type: tuple[str, ...]
    contrast: bool
    iodine: bool = False        # stored as mg/mL / IODINE_SLOPE, unsigned
    kvp: str | None = "120"


def atomic_study(target: Path):
    """A temporary folder beside `target` that becomes `target` only if the block succeeds (cohort.io.atomic_dir)."""
    return atomic_dir(target, overwrite=True)


def _dataset(study: Study, spec: SeriesSpec) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.TransferSyntaxUID = study.transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.StudyInstanceUID = uid(study.token, study.patient_id)
    ds.SeriesInstanceUID = uid(study.token, study.patient_id, spec.name)
    ds.FrameOfReferenceUID = study.frame_uid
    ds.PositionReferenceIndicator = ""
    ds.Modality = "CT"
    ds.Manufacturer = "LymphCast synthetic"
    ds.PatientID = study.patient_id
    for empty in ("PatientName", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                  "ReferringPhysicianName", "AccessionNumber"):  # type 2: present, deliberately blank
        setattr(ds, empty, "")
    ds.StudyID = "1"
    ds.SeriesNumber = spec.number
    ds.AcquisitionNumber = 1
    ds.SeriesDescription = spec.description
    ds.ImageType = list(spec.image_type)
    ds.BodyPartExamined = "NECK"
    ds.PatientPosition = "HFS"
    if spec.kvp:
        ds.KVP = spec.kvp
    ds.ConvolutionKernel = study.kernel
    if spec.contrast:
        ds.ContrastBolusAgent = CONTRAST_AGENT
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0 if spec.iodine else 1
    ds.RescaleIntercept = 0 if spec.iodine else HU_INTERCEPT
    ds.RescaleSlope = IODINE_SLOPE if spec.iodine else 1
    ds.RescaleType = "MGML" if spec.iodine else "HU"
    ds.WindowCenter, ds.WindowWidth = ("3", "6") if spec.iodine else ("60", "400")
    return ds


def _stored(values: np.ndarray, iodine: bool) -> np.ndarray:
    if iodine:
        return np.clip(np.rint(values / IODINE_SLOPE), 0, 65535).astype("<u2")
    return np.clip(np.rint(values - HU_INTERCEPT), 0, 4095).astype("<i2")  # HU -1024..3071


def _save(ds: Dataset, folder: Path, study: Study, spec: SeriesSpec, instance: int, pixels: np.ndarray) -> None:
    sop = uid(study.token, study.patient_id, spec.name, instance)
    ds.SOPInstanceUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.InstanceNumber = instance
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelData = pixels.tobytes()
    ds.save_as(folder / f"{instance:04d}.dcm", enforce_file_format=True)


def write_axial(study_dir: Path, study: Study, spec: SeriesSpec, slices: np.ndarray, z_mm, *, x0: float,
                y0: float, spacing: float, thickness: float) -> Path:
    """Axial slices (n, rows = y, cols = x) in HU (mg/mL for iodine); slice k centred at z_mm[k]; (x0, y0) is
    the centre of the first pixel; contiguous slices (spacing = thickness)."""
    folder = Path(study_dir) / f"{spec.number:02d}_{spec.name}"
    folder.mkdir(parents=True)
    ds = _dataset(study, spec)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [f"{spacing:.6g}", f"{spacing:.6g}"]
    ds.SliceThickness = f"{thickness:g}"
    ds.SpacingBetweenSlices = f"{thickness:g}"
    stored = _stored(slices, spec.iodine)
    for k, z in enumerate(z_mm):
        ds.ImagePositionPatient = [f"{x0:.4f}", f"{y0:.4f}", f"{z:.4f}"]
        ds.SliceLocation = f"{z:.4f}"
        _save(ds, folder, study, spec, k + 1, stored[k])
    return folder


def write_localizer(study_dir: Path, study: Study, image: np.ndarray, *, x0: float, y: float, z_top: float,
                    row_mm: float, col_mm: float) -> Path:
    """A frontal scout (rows run from z_top downwards, columns along +x), in HU-like values."""
    spec = SeriesSpec(1, "localizer", "Neck CT localizer", ("ORIGINAL", "PRIMARY", "LOCALIZER"), contrast=False)
    folder = Path(study_dir) / f"{spec.number:02d}_{spec.name}"
    folder.mkdir(parents=True)
    ds = _dataset(study, spec)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.PixelSpacing = [f"{row_mm:.6g}", f"{col_mm:.6g}"]
    ds.ImagePositionPatient = [f"{x0:.4f}", f"{y:.4f}", f"{z_top:.4f}"]
    _save(ds, folder, study, spec, 1, _stored(image, False))
    return folder
