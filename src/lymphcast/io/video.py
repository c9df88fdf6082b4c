"""Read ultrasound cine clips (MP4/AVI/MOV/MKV through PyAV, multi-frame DICOM through pydicom) frame by frame.

- `open_video` reads what the file says about itself (frame count, average frame rate, duration, size, rotation,
  codec, pixel spacing) and decodes only its first frame, to prove it can be decoded.
- `iter_frames` streams decoded frames one at a time, so memory does not grow with the length of the clip. Each
  frame is uint8, grey (H, W) or RGB (H, W, 3), turned upright by the file's rotation metadata, at its exact size
  (odd sizes kept), with its time in seconds from the start of the clip taken from the frame's own timestamp
  (pts for PyAV, FrameTimeVector/FrameTime/CineRate for DICOM), so variable frame rates are honoured.
- `read_clip` stacks a short clip into a (T, H, W) array, with an explicit cap on the number of frames; a longer
  clip is refused before it is loaded.

Grey is the luma of the picture: the decoded Y plane for YUV video, ITU-R 601 weights for RGB (as `read_image`).

Every failure is a `VideoReadError` (a LymphCastError) that names the file and says what was expected: missing,
empty, not a video (or a still image, or no video stream), no decoder for the codec, no frames, damaged data.
A truncated or damaged file, found when decoding fails part way or when fewer frames decode than the file
announces, raises `TruncatedVideoError` after the frames that did decode were yielded; with
`allow_truncated=True` it instead issues a `TruncatedVideoWarning` and simply ends (a file with no decodable
frame at all still raises).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..cohort.errors import LymphCastError
from .images import is_dicom


class VideoReadError(LymphCastError):
    """A file that cannot be read as a video clip; the message names the file and what was expected."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"cannot read video {path}: {reason}")
        self.path = Path(path)
        self.reason = reason


class TruncatedVideoError(VideoReadError):
    """The file ends early or is damaged part way: `frames_read` frames decoded before that."""

    def __init__(self, path: str | Path, reason: str, frames_read: int):
        super().__init__(path, reason)
        self.frames_read = frames_read


class TruncatedVideoWarning(UserWarning):
    """Issued instead of TruncatedVideoError when the caller asked for `allow_truncated=True`."""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    source: Literal["video", "dicom"]   # read through PyAV or through pydicom
    container: str                      # PyAV demuxer name ("avi", "mov,mp4,m4a,3gp,3g2,mj2", ...) or "dicom"
    codec: str                          # PyAV codec name ("h264", "mjpeg", ...) or the DICOM transfer syntax name
    pixel_format: str                   # "yuv420p", ... or the DICOM PhotometricInterpretation
    width: int                          # of the upright frames that iter_frames yields (rotation applied)
    height: int
    frames: int | None                  # as the file announces it; None when it does not say
    fps: float | None                   # average frames per second; None when the file gives no timing
    variable_frame_rate: bool | None    # None when it cannot be known without decoding the whole clip
    duration_s: float | None
    rotation: int = 0                   # degrees counter-clockwise the stored picture is turned to be upright
    spacing_mm: float | None = None     # physical size of one pixel (DICOM ultrasound regions or PixelSpacing)


@dataclass(frozen=True)
class Frame:
    pixels: np.ndarray      # (H, W) uint8 grey, or (H, W, 3) uint8 RGB
    time_s: float | None    # seconds from the start of the clip; None only when the file records no timing
    index: int              # 0-based position of the frame in the clip


def open_video(path: str | Path) -> VideoInfo:
    """What the file says about the clip, after checking that its first frame decodes."""
    path = _check_file(path)
    if is_dicom(path):
        from .video_dicom import open_dicom_video

        return open_dicom_video(path)
    from .video_av import open_av_video

    return open_av_video(path)


def iter_frames(path: str | Path, *, gray: bool = True, max_frames: int | None = None, start_s: float | None = None,
                allow_truncated: bool = False) -> Iterator[Frame]:
    """Decoded frames one at a time, from `start_s` seconds on (default: the first), at most `max_frames` of them.

    A missing or empty file raises here; what is inside the file is checked as the frames are read. Frames before
    `start_s` are decoded and dropped (not converted), so indices stay exact. A truncated or damaged file raises
    TruncatedVideoError after the good frames were yielded, or with `allow_truncated` warns and ends.
    """
    if max_frames is not None and max_frames < 0:
        raise ValueError(f"max_frames must be >= 0, got {max_frames}")
    path = _check_file(path)
    if is_dicom(path):
        from .video_dicom import iter_dicom_frames as backend
    else:
        from .video_av import iter_av_frames as backend
    return backend(path, gray=gray, max_frames=max_frames, start_s=start_s, allow_truncated=allow_truncated)


def read_clip(path: str | Path, *, max_frames: int, size: tuple[int, int] | None = None,
              allow_truncated: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A short clip as a (T, H, W) uint8 grey array and its (T,) frame times in seconds (NaN where unknown).

    A clip of more than `max_frames` frames is refused (VideoReadError) rather than loaded: when the file announces
    its frame count this happens before decoding, otherwise as soon as frame `max_frames + 1` decodes.
    `size=(height, width)` resizes every frame (bilinear) after rotation.
    """
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise ValueError(f"size must be (height, width) with both >= 1, got {size}")
    info = open_video(path)
    advice = "the cap given to read_clip; stream it with iter_frames, or read it with a larger max_frames"
    if info.frames is not None and info.frames > max_frames:
        raise VideoReadError(path, f"has {info.frames} frames, more than {max_frames}, {advice}")
    pixels, times = [], []
    for frame in iter_frames(path, gray=True, max_frames=max_frames + 1, allow_truncated=allow_truncated):
        if frame.index >= max_frames:
            raise VideoReadError(path, f"has more than {max_frames} frames, {advice}")
        pixels.append(frame.pixels if size is None else resize(frame.pixels, size))
        times.append(np.nan if frame.time_s is None else frame.time_s)
    if not pixels:
        raise VideoReadError(path, "holds no video frames")
    return np.stack(pixels), np.asarray(times, dtype=np.float64)


def upright(pixels: np.ndarray, rotation: float) -> np.ndarray:
    """`pixels` turned by `rotation` degrees counter-clockwise (as shown on screen), rounded to a quarter turn.

    This is FFmpeg's display-matrix convention (av_display_rotation_get, PyAV's VideoFrame.rotation): a phone
    clip recorded upright in portrait is stored landscape with rotation -90, and is shown turned 90° clockwise.
    """
    quarter_turns = int(round(rotation / 90.0)) % 4
    if quarter_turns == 0:
        return pixels
    return np.ascontiguousarray(np.rot90(pixels, quarter_turns))


def resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a uint8 grey or RGB frame to `size=(height, width)`."""
    from PIL import Image

    if pixels.shape[:2] == tuple(size):
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((size[1], size[0]), Image.Resampling.BILINEAR))


def luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (H, W) uint8 grey with ITU-R 601 weights, as `read_image` converts colour."""
    grey = rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.round(grey).clip(0, 255).astype(np.uint8)


def end_of_clip(path: Path, frames_read: int, reason: str | None, allow_truncated: bool) -> None:
    """Raise or warn when decoding ended early (`reason` set), and raise when the clip had no frame at all."""
    if frames_read == 0:
        raise VideoReadError(path, f"no frame could be decoded ({reason})" if reason else "holds no video frames")
    if reason is None:
        return
    message = f"{reason}; {frames_read} frame(s) decoded before that (the file is truncated or damaged)"
    if not allow_truncated:
        raise TruncatedVideoError(path, message + "; pass allow_truncated=True to use them", frames_read)
    warnings.warn(f"video {path}: {message}", TruncatedVideoWarning, stacklevel=3)


def _check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise VideoReadError(path, "file not found")
    if not path.is_file():
        raise VideoReadError(path, "not a file (expected a video file such as .mp4, .avi, .mov or a DICOM cine loop)")
    if path.stat().st_size == 0:
        raise VideoReadError(path, "file is empty")
    return path
