"""Frame sources for streaming: a video file (played at its own rate, or as fast as it decodes) or a capture
device through PyAV. Each yields Released(pixels, time_s, released_at): grey uint8 pixels, the frame's time in
seconds from the start of the source, and the time.perf_counter() at which the frame became available —
latency is measured from there, so a consumer that falls behind a real-time source sees its wait counted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from ..cohort.errors import LymphCastError
from ..io.video import iter_frames, open_video, upright


class Released(NamedTuple):
    pixels: np.ndarray      # (H, W) uint8 grey
    time_s: float | None    # seconds from the source's first frame
    released_at: float      # time.perf_counter() when the frame became available


def file_frames(path, realtime: bool, *, max_frames: int | None = None, clock=time.perf_counter,
                sleep=time.sleep) -> Iterator[Released]:
    """The frames of a video file (MP4/AVI/MOV/MKV or DICOM cine). realtime: frame k is released at its own
    timestamp after the first frame's release (the file plays at its own rate, as a scanner would send it); its
    release time is that schedule even when decoding or the consumer runs late. Otherwise each frame is released
    as soon as it is decoded. Errors are VideoReadError naming the file."""
    fps = None
    if realtime:
        fps = open_video(path).fps  # also checks the first frame decodes before the clock starts
    start = first_time = None
    for frame in iter_frames(path, gray=True, max_frames=max_frames):
        t = frame.time_s if frame.time_s is not None else (frame.index / fps if fps else None)
        if not realtime:
            yield Released(frame.pixels, t, clock())
            continue
        if t is None:
            raise LymphCastError(f"video {path} records no frame times or rate, so it cannot be played at its own "
                                 "rate; stream it with --fast")
        if start is None:
            start, first_time = clock(), t
        due = start + (t - first_time)
        wait = due - clock()
        if wait > 0:
            sleep(wait)
        yield Released(frame.pixels, t, due)


def parse_device(spec: str) -> tuple[str | None, str]:
    """"FORMAT:URL" (v4l2:/dev/video0, avfoundation:0, dshow:video=Cam, lavfi:testsrc) → (format, url); a spec
    without a format prefix is opened as FFmpeg guesses (a stream URL such as rtsp://…, or a device path)."""
    head, sep, rest = spec.partition(":")
    if sep and head.isidentifier() and not rest.startswith("//"):
        return head, rest
    return None, spec


def device_frames(spec: str, *, max_frames: int | None = None, options: dict | None = None) -> Iterator[Released]:
    """Frames from a capture device or live stream opened through PyAV (see parse_device), released when they
    are decoded. Runs until the device ends, `max_frames` frames, or the consumer stops (Ctrl-C)."""
    import av

    fmt, url = parse_device(spec)
    try:
        container = av.open(url, format=fmt, options=options or {})
    except Exception as exc:  # av.error.FFmpegError and the builtins it wraps
        raise LymphCastError(f"cannot open capture device '{spec}': {exc}; expected FORMAT:DEVICE such as "
                             "v4l2:/dev/video0") from None
    try:
        if not container.streams.video:
            raise LymphCastError(f"capture device '{spec}' gives no video stream")
        frames = iter(container.decode(container.streams.video[0]))
        first, count = None, 0
        while max_frames is None or count < max_frames:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except Exception as exc:
                raise LymphCastError(f"capture device '{spec}' failed after {count} frame(s): {exc}") from None
            released = time.perf_counter()
            if frame.time is not None and first is None:
                first = frame.time
            t = frame.time - first if frame.time is not None else None
            pixels = np.array(frame.to_ndarray(format="gray"), dtype=np.uint8, order="C")
            yield Released(upright(pixels, frame.rotation), t, released)
            count += 1
        if count == 0:
            raise LymphCastError(f"capture device '{spec}' gave no frames")
    finally:
        container.close()
