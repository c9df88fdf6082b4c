"""pydicom side of video reading: multi-frame DICOM (ultrasound cine loops), one decoded frame at a time.

Frames come from `pydicom.pixels.iter_pixels` given the file path, which reads and decodes one frame per step
instead of loading the whole PixelData. Timing: FrameTimeVector (ms between frames), else FrameTime (ms per
frame), else CineRate or RecommendedDisplayFrameRate (frames per second); a file with none of them has no frame
times. Colour: YBR is converted to RGB by pydicom, PALETTE COLOR through its lookup table, MONOCHROME1 inverted;
pixels deeper than 8 bits are scaled from their BitsStored range, so every frame gets the same scale.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .images import _dicom_spacing
from .video import Frame, VideoInfo, VideoReadError, end_of_clip, luma


def open_dicom_video(path: Path) -> VideoInfo:
    ds = _header(path)
    count = _frame_count(ds, path)
    times = _frame_times(ds, count)
    syntax = _check_decodable(ds, path)
    from pydicom.pixels import iter_pixels

    try:
        next(iter_pixels(path, indices=[0]))
    except Exception as exc:  # pydicom raises many types for damaged pixel data
        raise VideoReadError(path, f"its first frame cannot be decoded ({_describe(exc)})") from None
    fps = duration = vfr = None
    if times is not None:
        step = float(np.mean(np.diff(times))) if count > 1 else _single_step(ds)
        fps = 1.0 / step if step else None
        duration = float(times[-1]) + step if step else None
        steps = np.diff(times)
        vfr = bool(count > 2 and steps.max() - steps.min() > 0.01 * steps.mean())
    return VideoInfo(path=path, source="dicom", container="dicom", codec=syntax.name, pixel_format=_photometric(ds),
                     width=int(ds.Columns), height=int(ds.Rows), frames=count, fps=fps, variable_frame_rate=vfr,
                     duration_s=duration, rotation=0, spacing_mm=_dicom_spacing(ds))


def iter_dicom_frames(path: Path, *, gray: bool, max_frames: int | None, start_s: float | None,
                      allow_truncated: bool) -> Iterator[Frame]:
    from pydicom.pixels import iter_pixels

    ds = _header(path)
    count = _frame_count(ds, path)
    times = _frame_times(ds, count)
    _check_decodable(ds, path)
    first = 0
    if start_s is not None:
        if times is None:
            raise VideoReadError(path, "records no frame timing (FrameTimeVector, FrameTime or CineRate), so "
                                       "start_s cannot be used")
        first = int(np.searchsorted(times, start_s - 1e-6))
    stop = count if max_frames is None else min(count, first + max_frames)
    frames = iter_pixels(path, indices=range(first, stop))
    index, reason = first, None
    try:
        while index < stop:
            try:
                arr = next(frames)
            except StopIteration:
                reason = f"only {index} of the {count} frames it announces (NumberOfFrames) could be read"
                break
            except Exception as exc:  # the file ends inside PixelData, or a compressed frame is damaged
                reason = f"decoding failed at frame {index} ({_describe(exc)})"
                break
            yield Frame(_to_display(arr, ds, gray, path), None if times is None else float(times[index]), index)
            index += 1
    finally:
        frames.close()
    if reason is not None:
        end_of_clip(path, index - first, reason, allow_truncated)


def _header(path: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:  # large values (PixelData) are only located, not read
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(path, defer_size="1 KB")
    except InvalidDicomError:
        raise VideoReadError(path, "not a DICOM file (no DICM preamble)") from None
    except Exception as exc:  # truncated headers surface as many exception types
        raise VideoReadError(path, f"corrupt DICOM file ({_describe(exc)})") from None
    for warning in caught:
        if "end of file" in str(warning.message).lower():  # pydicom warns, and drops the element it was reading
            raise VideoReadError(path, "DICOM file ends inside its data (truncated): "
                                       f"{' '.join(str(warning.message).split())}")
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if "PixelData" not in ds:
        raise VideoReadError(path, "DICOM file holds no image (no PixelData); expected a multi-frame cine loop")
    if "Rows" not in ds or "Columns" not in ds:
        raise VideoReadError(path, "DICOM image lacks Rows or Columns")
    return ds


def _frame_count(ds, path: Path) -> int:
    try:
        count = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        raise VideoReadError(path, f"NumberOfFrames is not a number ({ds.get('NumberOfFrames')!r})") from None
    if count < 1:
        raise VideoReadError(path, "holds no video frames (NumberOfFrames is 0)")
    return count


def _frame_times(ds, count: int) -> np.ndarray | None:
    """Seconds from the first frame, or None when the file records no timing."""
    try:
        vector = ds.get("FrameTimeVector")
        if vector is not None:
            steps = np.atleast_1d(np.asarray(vector, dtype=np.float64))
            if len(steps) == count and np.isfinite(steps).all() and (steps[1:] > 0).all():
                times = np.cumsum(steps)
                return (times - times[0]) / 1000.0
        step = _single_step(ds)
    except (TypeError, ValueError):
        return None
    return None if step is None else np.arange(count) * step


def _single_step(ds) -> float | None:
    """Seconds per frame from FrameTime (ms), CineRate or RecommendedDisplayFrameRate (frames per second)."""
    try:
        frame_time = float(ds.get("FrameTime") or 0)
        if np.isfinite(frame_time) and frame_time > 0:
            return frame_time / 1000.0
        for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
            rate = float(ds.get(keyword) or 0)
            if np.isfinite(rate) and rate > 0:
                return 1.0 / rate
    except (TypeError, ValueError):
        return None
    return None


def _check_decodable(ds, path: Path):
    from pydicom.pixels import get_decoder

    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None:
        raise VideoReadError(path, "DICOM file has no Transfer Syntax UID, so its pixel data cannot be decoded")
    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        raise VideoReadError(path, f"DICOM pixel data is compressed as {syntax.name}, which cannot be decoded here; "
                                   "export it uncompressed or as JPEG baseline, or install a pydicom decoder plugin "
                                   "(pylibjpeg, gdcm)")
    return syntax


def _photometric(ds) -> str:
    return str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()


def _to_display(arr: np.ndarray, ds, gray: bool, path: Path) -> np.ndarray:
    """A decoded DICOM frame → uint8 grey (H, W) or RGB (H, W, 3)."""
    photometric = _photometric(ds)
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
    bits = int(ds.get("BitsStored", 8) or 8) if photometric != "PALETTE COLOR" else 8 * arr.itemsize
    if arr.ndim == 3 and arr.shape[-1] >= 3:
        rgb = _to_uint8(arr[..., :3], bits, path)
        return luma(rgb) if gray else rgb
    if arr.ndim != 2:
        raise VideoReadError(path, f"expected 2-D frames, found a frame of shape {arr.shape}")
    grey = _to_uint8(arr, bits, path)
    if photometric == "MONOCHROME1":
        grey = 255 - grey
    return grey if gray else np.repeat(grey[..., None], 3, axis=2)


def _to_uint8(arr: np.ndarray, bits: int, path: Path) -> np.ndarray:
    """8-bit kept; deeper integers scaled from their full BitsStored range (the same scale for every frame)."""
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype.kind not in "iu":
        raise VideoReadError(path, f"pixel type {arr.dtype} is not supported in a cine loop (expected integers)")
    bits = max(1, min(bits, 8 * arr.itemsize))
    values = arr.astype(np.float32)
    if arr.dtype.kind == "i":
        values += 2.0 ** (bits - 1)
    return np.round(values * (255.0 / (2.0 ** bits - 1.0))).clip(0, 255).astype(np.uint8)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
