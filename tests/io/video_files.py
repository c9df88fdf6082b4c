"""Writers for the small test clips: real files made with PyAV (MP4/AVI/MOV/MKV) and pydicom (multi-frame US)."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import numpy as np


def write_video(path: Path, frames: list[np.ndarray], *, codec: str = "libx264", pix_fmt: str = "yuv420p",
                rate: int = 15, pts_ms: list[int] | None = None, rotation: float | None = None) -> Path:
    """Encode grey (H, W) or RGB (H, W, 3) uint8 frames; `pts_ms` sets each frame's time (variable frame rate)."""
    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if pts_ms is not None:  # millisecond clocks in both encoder and container, so no time is rounded
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i, pixels in enumerate(frames):
            if pixels.ndim == 2 and pix_fmt == "gray":
                frame = av.VideoFrame.from_ndarray(pixels, format="gray")
            else:
                rgb = pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=2)
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def levels(count: int, shape: tuple[int, ...], start: int = 20, step: int = 9) -> list[np.ndarray]:
    """Flat frames whose brightness encodes their index: frame i is start + step * i everywhere."""
    return [np.full(shape, start + step * i, np.uint8) for i in range(count)]


def random_frames(count: int, shape: tuple[int, ...], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]


def write_dicom_cine(path: Path, frames: np.ndarray, *, photometric: str | None = None,
                     frame_time_ms: float | None = 50.0, frame_time_vector: list[float] | None = None,
                     cine_rate: float | None = None, region_delta_cm: float | None = 0.01,
                     pixel_spacing_mm: float | None = None, bits_stored: int | None = None, jpeg: bool = False,
                     transfer_syntax: str | None = None) -> Path:
    """An Ultrasound Multi-frame Image Storage file holding `frames` (T, H, W) grey or (T, H, W, 3) RGB."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import (ExplicitVRLittleEndian, JPEGBaseline8Bit, UltrasoundMultiFrameImageStorage,
                             generate_uid)

    count, rows, columns = frames.shape[:3]
    colour = frames.ndim == 4
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax or (JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian)
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, count
    bits = 8 * frames.dtype.itemsize
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits_stored or bits, (bits_stored or bits) - 1
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = photometric or ("RGB" if colour else "MONOCHROME2")
    if colour:
        ds.PlanarConfiguration = 0
    if frame_time_ms is not None:
        ds.FrameTime, ds.FrameIncrementPointer = frame_time_ms, 0x00181063
    if frame_time_vector is not None:
        ds.FrameTimeVector, ds.FrameIncrementPointer = frame_time_vector, 0x00181065
    if cine_rate is not None:
        ds.CineRate = cine_rate
    if pixel_spacing_mm is not None:
        ds.PixelSpacing = [pixel_spacing_mm, pixel_spacing_mm]
    if region_delta_cm is not None:
        region = Dataset()
        region.RegionSpatialFormat, region.RegionDataType, region.RegionFlags = 1, 1, 0
        region.RegionLocationMinX0, region.RegionLocationMinY0 = 0, 0
        region.RegionLocationMaxX1, region.RegionLocationMaxY1 = columns - 1, rows - 1
        region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3  # cm
        region.PhysicalDeltaX = region.PhysicalDeltaY = region_delta_cm
        ds.SequenceOfUltrasoundRegions = [region]
    if jpeg:
        from PIL import Image

        encoded = []
        for pixels in frames:
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
            encoded.append(buffer.getvalue())
        ds.PixelData = encapsulate(encoded)
        ds["PixelData"].VR = "OB"
        if colour:
            ds.PhotometricInterpretation = "YBR_FULL_422"
    elif transfer_syntax is not None:  # a compressed syntax with placeholder data, for "cannot decode" checks
        ds.PixelData = encapsulate([b"\xff\xd8\xff\xf7 not really compressed \xff\xd9"] * count)
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = np.ascontiguousarray(frames).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def cut(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst
