"""Write a synthetic 8-bit grayscale ultrasound image as DICOM (Ultrasound Image Storage).

No real patient data: PatientID is the synthetic patient id, PatientName SYNTHETIC^<id>. UIDs come from
pydicom's generate_uid with a deterministic entropy source (a token from the renderer's random generator), so
the same seed writes the same files. PixelSpacing and one SequenceOfUltrasoundRegions item carry the scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"


def uid(*parts) -> str:
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def us_dataset(sop_class: str, pixels: np.ndarray, *, patient_id: str, spacing_mm: float, token: str, study: str,
               series: str, instance: int, description: str, vendor: str, frequency_mhz: float) -> Dataset:
    """An ultrasound DICOM dataset of `sop_class` holding 8-bit grey `pixels` (rows, cols) or frames (n, rows, cols),
    with the patient/study/series modules, the image pixel module and the scale (PixelSpacing and one
    SequenceOfUltrasoundRegions item); the caller adds what its SOP class needs (e.g. the cine module)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    rows, cols = pixels.shape[-2:]
    sop_uid = uid(token, study, series, instance)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = uid(token, study)
    ds.SeriesInstanceUID = uid(token, study, series)
    ds.FrameOfReferenceUID = uid(token, study, series, "frame")
    ds.Modality = "US"
    ds.Manufacturer = f"Synthetic {vendor}"
    ds.PatientID = patient_id
    ds.PatientName = f"SYNTHETIC^{patient_id}"
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance
    ds.SeriesDescription = description
    ds.BodyPartExamined = "NECK"
    ds.TransducerFrequency = int(round(frequency_mhz * 1000))  # kHz
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelSpacing = [f"{spacing_mm:.6g}", f"{spacing_mm:.6g}"]
    region = Dataset()
    region.RegionSpatialFormat = 1       # 2D
    region.RegionDataType = 1            # tissue
    region.RegionFlags = 0
    region.RegionLocationMinX0 = 0
    region.RegionLocationMinY0 = 0
    region.RegionLocationMaxX1 = cols - 1
    region.RegionLocationMaxY1 = rows - 1
    region.PhysicalUnitsXDirection = 3   # cm
    region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX = spacing_mm / 10.0
    region.PhysicalDeltaY = spacing_mm / 10.0
    ds.SequenceOfUltrasoundRegions = Sequence([region])
    ds.PixelData = pixels.tobytes()
    return ds


def write_us_dicom(path: Path, pixels: np.ndarray, **fields) -> None:
    """One still image (Ultrasound Image Storage); `fields` as us_dataset's keywords."""
    us_dataset(US_IMAGE_STORAGE, pixels, **fields).save_as(path, enforce_file_format=True)
