"""Write a synthetic cine clip as MP4 (H.264 through PyAV) or as multi-frame DICOM (Ultrasound Multi-frame Image).

MP4: libx264, yuv420p (the 8-bit grey frames go through swscale's grey -> limited-range YUV conversion, so a
reader converting back to grey gets the frames to within compression error), constant frame rate (time base
1/fps), one encoder thread so the same frames always give the same bytes; no patient data in the container.
DICOM: Ultrasound Multi-frame Image Storage, native 8-bit MONOCHROME2 frames, with the cine module (FrameTime in
ms, CineRate, FrameIncrementPointer -> FrameTime) and the scale in PixelSpacing and one
SequenceOfUltrasoundRegions item, as us_dicom does for the stills; UIDs are deterministic (us_dicom.uid).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

from .us_dicom import uid

US_MULTIFRAME_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"
CRF = 20            # x264 constant rate factor: keeps the speckle grain at 128 x 128
PRESET = "superfast"


def write_mp4(path: Path, frames: np.ndarray, fps: int) -> None:
    """`frames`: uint8 (T, H, W) grey, H and W even."""
    import av  # heavy import kept local (DESIGN: av only where needed)

    n, h, w = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"H.264 yuv420p needs an even frame size, not {w}x{h}")
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=int(fps), options={"crf": str(CRF), "preset": PRESET})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.thread_count = 1
        for i in range(n):
            grey = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[i]), format="gray")
            frame = grey.reformat(format="yuv420p")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def write_cine_dicom(path: Path, frames: np.ndarray, fps: int, *, patient_id: str, spacing_mm: float, token: str,
                     study: str, series: str, description: str, vendor: str, frequency_mhz: float) -> None:
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    n, rows, cols = frames.shape
    sop_uid = uid(token, study, series, 1)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = US_MULTIFRAME_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = US_MULTIFRAME_STORAGE
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
    ds.InstanceNumber = 1
    ds.SeriesDescription = description
    ds.BodyPartExamined = "NECK"
    ds.TransducerFrequency = int(round(frequency_mhz * 1000))  # kHz
    frame_ms = 1000.0 / fps
    ds.NumberOfFrames = n
    ds.FrameIncrementPointer = Tag(0x0018, 0x1063)  # FrameTime
    ds.FrameTime = f"{frame_ms:.6g}"
    ds.CineRate = int(fps)
    ds.RecommendedDisplayFrameRate = int(fps)
    ds.ActualFrameDuration = int(round(frame_ms))
    ds.EffectiveDuration = f"{n / fps:.6g}"
    ds.PreferredPlaybackSequencing = 0  # looping
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
    ds.PixelData = frames.tobytes()
    ds.save_as(path, enforce_file_format=True)
