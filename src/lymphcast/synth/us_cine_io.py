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
from pydicom.tag import Tag

from .us_dicom import us_dataset

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


def write_cine_dicom(path: Path, frames: np.ndarray, fps: int, **fields) -> None:
    """`frames`: uint8 (T, H, W); `fields` as us_dicom.us_dataset's keywords (without instance)."""
    ds = us_dataset(US_MULTIFRAME_STORAGE, frames, instance=1, **fields)
    n = len(frames)
    frame_ms = 1000.0 / fps
    ds.NumberOfFrames = n
    ds.FrameIncrementPointer = Tag(0x0018, 0x1063)  # FrameTime
    ds.FrameTime = f"{frame_ms:.6g}"
    ds.CineRate = int(fps)
    ds.RecommendedDisplayFrameRate = int(fps)
    ds.ActualFrameDuration = int(round(frame_ms))
    ds.EffectiveDuration = f"{n / fps:.6g}"
    ds.PreferredPlaybackSequencing = 0  # looping
    ds.save_as(path, enforce_file_format=True)
