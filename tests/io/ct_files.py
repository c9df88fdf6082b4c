"""Writers of small CT DICOM series and studies for the ingest tests (pydicom, 16^3-sized)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

STUDY_UID = "1.2.826.0.1.3680043.8.498.100"
FOR_UID = "1.2.826.0.1.3680043.8.498.101"


def write_ct_series(folder: Path, stored: np.ndarray, *, origin=(0.0, 0.0, 0.0), spacing=(1.0, 1.0, 1.0),
                    orientation=(1, 0, 0, 0, 1, 0), slope=1.0, intercept=-1024.0, order=None,
                    image_type=("ORIGINAL", "PRIMARY", "AXIAL"), description="Neck CT arterial 2.5 mm",
                    kernel="B30f", contrast=True, syntax=None, series_uid=None, for_uid=FOR_UID,
                    modality="CT", thickness=None, rescale_type=None, shear=(0.0, 0.0, 0.0), positions=None,
                    series_number=1) -> list[Path]:
    """Slice k of `stored` (z, y, x) lies at origin + k * spacing[2] * normal (+ k * shear, a gantry tilt).

    spacing is (along a row, down a column, between slices) mm; `order[k]` is the file number of slice k, so
    the files can be named in any order; `positions` overrides the slice positions outright.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, RLELossless, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    o = np.asarray(orientation, dtype=float)
    normal = np.cross(o[:3], o[3:])
    series_uid = series_uid or generate_uid()
    order = list(range(len(stored))) if order is None else list(order)
    files = []
    for k, plane in enumerate(stored):
        pos = np.asarray(origin) + k * spacing[2] * normal + k * np.asarray(shear)
        if positions is not None:
            pos = np.asarray(positions[k], dtype=float)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.ImageType, ds.SeriesDescription = modality, list(image_type), description
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = STUDY_UID, series_uid, for_uid
        ds.SeriesNumber, ds.InstanceNumber = series_number, k + 1
        ds.ImagePositionPatient = [round(float(v), 4) for v in pos]
        ds.ImageOrientationPatient = [round(float(v), 6) for v in o]
        ds.PixelSpacing = [spacing[1], spacing[0]]  # DICOM order: between rows, between columns
        ds.SliceThickness = spacing[2] if thickness is None else thickness
        ds.KVP, ds.ConvolutionKernel = 120, kernel
        if contrast:
            ds.ContrastBolusAgent = "Iohexol"
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        if rescale_type:
            ds.RescaleType = rescale_type
        ds.PixelData = np.ascontiguousarray(plane, dtype="<i2").tobytes()
        if syntax == RLELossless:
            ds.compress(RLELossless)
        elif syntax is not None:
            ds.file_meta.TransferSyntaxUID = syntax  # Deflated: pydicom deflates the dataset on writing
        path = folder / f"{order[k]:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    assert pydicom.dcmread(files[0], stop_before_pixels=True).Modality == modality
    return files


def write_study(root: Path, *, iodine_for=FOR_UID) -> Path:
    """A neck study as a scanner exports it: localizer, four CT series, two DE series, an SR and a stray file."""
    from pydicom.data import get_testdata_file

    vol = np.full((4, 16, 16), 1000, dtype=np.int16)
    write_ct_series(root / "01_loc", vol[:1], image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
                    description="Topogram", orientation=(1, 0, 0, 0, 0, -1), series_number=1)
    write_ct_series(root / "02_art", vol, spacing=(0.7, 0.7, 2.5), description="Neck CT arterial 2.5 mm",
                    kernel="B30f", series_number=2)
    write_ct_series(root / "03_ven_bone", vol, spacing=(0.7, 0.7, 1.0), description="Neck venous 1 mm bone",
                    kernel="Br64", series_number=3)
    write_ct_series(root / "04_native", vol, spacing=(0.7, 0.7, 5.0), description="Neck CT unenhanced 5 mm",
                    contrast=False, series_number=4)
    write_ct_series(root / "05_art_mpr", vol, spacing=(0.7, 0.7, 1.0), description="Neck CT arterial MPR",
                    image_type=("DERIVED", "SECONDARY", "AXIAL"), series_number=5)
    write_ct_series(root / "06_vmi", vol, spacing=(0.7, 0.7, 2.5), description="VMI 40 keV",
                    image_type=("DERIVED", "SECONDARY", "AXIAL", "VMI"), series_number=6)
    write_ct_series(root / "07_iodine", vol, spacing=(0.7, 0.7, 2.5), description="Iodine map", slope=0.01,
                    intercept=0.0, image_type=("DERIVED", "SECONDARY", "AXIAL", "IODINE"), rescale_type="MGML",
                    for_uid=iodine_for, series_number=7)
    sr = get_testdata_file("test-SR.dcm", download=False)
    assert sr is not None, "pydicom's bundled test-SR.dcm is missing"
    shutil.copy(sr, root / "08_report.dcm")
    (root / "notes.txt").write_text("not a DICOM file")
    return root

