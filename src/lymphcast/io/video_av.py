"""PyAV side of video reading: any container FFmpeg demuxes (MP4, MOV, AVI, MKV, ...) with a codec it decodes.

Frame times come from each frame's pts relative to the stream start, so variable frame rates are kept. Rotation
is the display matrix FFmpeg attaches to each decoded frame (MP4/MOV track matrix). A truncated file shows up as
a decoding error part way, or as fewer frames (or an earlier last frame) than the header announces.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .video import Frame, VideoInfo, VideoReadError, end_of_clip, upright

MICROSECONDS = 1_000_000  # unit of the container-level duration (AV_TIME_BASE)


def open_av_video(path: Path) -> VideoInfo:
    container = _open(path)
    try:
        stream = _video_stream(container, path)
        try:
            first = next(iter(container.decode(stream)), None)
        except Exception as exc:  # av.error.FFmpegError and the builtins it wraps
            raise VideoReadError(path, f"its first frame cannot be decoded ({_describe(exc)})") from None
        if first is None:
            raise VideoReadError(path, "holds no video frames")
        rotation = int(round(first.rotation / 90.0)) * 90 % 360
        width, height = (first.height, first.width) if rotation % 180 else (first.width, first.height)
        return VideoInfo(path=path, source="video", container=container.format.name,
                         codec=stream.codec_context.name, pixel_format=first.format.name, width=width, height=height,
                         frames=stream.frames or None, fps=_fps(stream), variable_frame_rate=_variable_rate(stream),
                         duration_s=_duration(stream, container, any_stream=True), rotation=rotation)
    finally:
        container.close()


def iter_av_frames(path: Path, *, gray: bool, max_frames: int | None, start_s: float | None,
                   allow_truncated: bool) -> Iterator[Frame]:
    container = _open(path)
    try:
        stream = _video_stream(container, path)
        fps = _fps(stream)
        start = None if stream.start_time is None else float(stream.start_time * stream.time_base)
        decoded = yielded = 0
        last_time, reason = None, None
        frames = iter(container.decode(stream))
        while max_frames is None or yielded < max_frames:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except Exception as exc:  # a damaged packet, or the file ends inside one
                reason = f"decoding failed at frame {decoded} ({_describe(exc)})"
                break
            index, decoded = decoded, decoded + 1
            if frame.time is not None:
                if start is None:
                    start = frame.time
                last_time = frame.time - start
            else:
                last_time = index / fps if fps else None
            if start_s is not None:
                if last_time is None:
                    raise VideoReadError(path, "its frames carry no timestamps, so start_s cannot be used")
                if last_time + 1e-6 < start_s:
                    continue
            yield Frame(_pixels(frame, gray, path), last_time, index)
            yielded += 1
        else:
            return  # stopped at max_frames: the rest of the file is not read, so not judged
        if reason is None:
            reason = _shortfall(stream, container, decoded, last_time, fps)
        end_of_clip(path, decoded, reason, allow_truncated)
    finally:
        container.close()


def _open(path: Path):
    import av

    try:  # "file:" so that a name holding a colon is never taken for another FFmpeg protocol
        return av.open("file:" + str(path.resolve()), metadata_errors="ignore")
    except Exception as exc:
        if _mp4_without_index(path):
            raise VideoReadError(path, "MP4/MOV file without its index (no 'moov' box): the recording was cut off "
                                       "or the file is truncated") from None
        raise VideoReadError(path, f"not a readable video ({_describe(exc)}); expected MP4, AVI, MOV or a DICOM "
                                   "cine loop") from None


def _video_stream(container, path: Path):
    demuxer = container.format.name
    if demuxer.startswith("image2") or demuxer.endswith("_pipe"):
        raise VideoReadError(path, f"is a still image ({demuxer.removesuffix('_pipe')}), not a video clip")
    if not container.streams.video:
        raise VideoReadError(path, "holds no video stream (audio or data only)")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        raise VideoReadError(path, "its video codec cannot be decoded here (no FFmpeg decoder for it); re-encode "
                                   "the clip as H.264 MP4 or MJPEG AVI")
    return stream


def _pixels(frame, gray: bool, path: Path) -> np.ndarray:
    try:  # a copy: the frame then owns its pixels and never aliases a picture the decoder still refers to
        pixels = np.array(frame.to_ndarray(format="gray" if gray else "rgb24"), dtype=np.uint8, order="C")
    except Exception as exc:
        raise VideoReadError(path, f"cannot convert its pixel format {frame.format.name} "
                                   f"({_describe(exc)})") from None
    return upright(pixels, frame.rotation)


def _fps(stream) -> float | None:
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else None


def _duration(stream, container, *, any_stream: bool) -> float | None:
    """The video stream's duration; the container's only if it has no other stream or `any_stream`."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration and (any_stream or len(container.streams) == 1):
        return container.duration / MICROSECONDS
    return None


def _variable_rate(stream) -> bool | None:
    """From the index when it lists every frame (MP4, MOV, AVI); else only a mismatch of rates tells."""
    entries = stream.index_entries
    if stream.frames and len(entries) == stream.frames and len(entries) >= 3:
        steps = np.diff(np.sort(np.array([e.timestamp for e in entries], dtype=np.float64)))
        return bool(steps.max() - steps.min() > max(0.1 * np.median(steps), 1.0))
    avg, guess = stream.average_rate, stream.guessed_rate
    if avg and guess and abs(float(avg / guess) - 1.0) > 0.01:
        return True
    return None


def _shortfall(stream, container, decoded: int, last_time: float | None, fps: float | None) -> str | None:
    """Why a clip that decoded without error still looks cut short, or None."""
    if stream.frames and decoded < stream.frames - 1:  # one frame of slack for pre-roll trimmed by an edit list
        return f"only {decoded} of the {stream.frames} frames its header announces could be read"
    duration = _duration(stream, container, any_stream=False)
    if not stream.frames and duration and last_time is not None and fps:
        if last_time + 2.0 / fps < 0.95 * duration:
            return f"its frames stop at {last_time:.2f} s of the {duration:.2f} s its header announces"
    return None


def _mp4_without_index(path: Path) -> bool:
    """An MP4/MOV whose top-level boxes start with 'ftyp' but hold no 'moov' (the index written last)."""
    size, offset, kinds = path.stat().st_size, 0, []
    try:
        with open(path, "rb") as fh:
            while offset + 8 <= size and len(kinds) < 64:
                fh.seek(offset)
                head = fh.read(16)
                box, kind = int.from_bytes(head[:4], "big"), head[4:8]
                if box == 1 and len(head) == 16:
                    box = int.from_bytes(head[8:16], "big")
                elif box == 0:
                    box = size - offset
                if box < 8:
                    break
                kinds.append(kind)
                offset += box
    except OSError:
        return False
    return bool(kinds) and kinds[0] == b"ftyp" and b"moov" not in kinds


def _describe(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return f"{type(exc).__name__}: {' '.join(str(text).split())}"
