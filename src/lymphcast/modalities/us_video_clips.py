"""Node clips from ultrasound cine sweeps: what the video model sees, read once per cohort and kept in memory.

For each node with a clip (`us_video_file`): `frames` frames sampled evenly over the whole sweep, each cropped
at two scales around the node box of the key frame (us_video_box_*): the node region (square, 25% margin, as
us_regions) and a wider context window (2.5× the box side), both resized to `size` x `size`. The node's
physical size goes with them as us_regions.view_extra numbers (log box width and height in mm from
us_video_pixel_spacing_mm, else as a share of the frame), and the sweep's log duration (clip_extra).

The window is the key frame's for every frame: the probe moves along the node's long axis, so the node stays
near the same place while its section grows and shrinks — which is the information the model reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..cohort import Cohort, LymphCastError
from ..io.video import read_clip
from .us_regions import EXTRA, crop, nodes_with, square_window, view_extra

BOX_COLUMNS = ("us_video_box_x0", "us_video_box_y0", "us_video_box_x1", "us_video_box_y1")
MARGINS = (0.25, 0.75)  # node region (box + 25% each side) and context (2.5x the box side)
SCALES = len(MARGINS)
CLIP_EXTRA = EXTRA + 1  # the node's size numbers and the sweep's log duration (clip_extra)
DEFAULT_FPS = 25.0
SAMPLINGS = ("sweep", "key")      # when a clip says nothing of its timing
MAX_CLIP_FRAMES = 5000  # a node sweep is seconds long; anything longer is not a node clip
_CACHE: dict[tuple, tuple] = {}
_CACHE_MAX = 20_000  # node clips


@dataclass(frozen=True)
class Clips:
    node_ids: pd.Index
    pixels: np.ndarray   # uint8 (n, T, SCALES, size, size)
    extra: np.ndarray    # float32 (n, CLIP_EXTRA)
    frames: np.ndarray   # int (n, T): index in the source clip of each sampled frame

    def __len__(self) -> int:
        return len(self.node_ids)


def video_nodes(cohort: Cohort) -> pd.DataFrame:
    """The cohort's nodes that have an ultrasound clip."""
    return nodes_with(cohort, "us_video_file")


def sample_indices(n: int, frames: int) -> np.ndarray:
    """`frames` indices spread evenly over a clip of n frames (repeats when the clip is shorter)."""
    return np.round(np.linspace(0, max(n - 1, 0), frames)).astype(int)


def number(row, col) -> float | None:
    """A number from a nodes.csv row (dict), None where blank."""
    v = row.get(col)
    return float(v) if v is not None and pd.notna(v) else None


def frame_interval(times, fps: float | None) -> float:
    """Seconds between frames: the median step of the frame times where they are known, else 1 / the recorded
    frame rate, else DEFAULT_FPS's."""
    steps = np.diff(np.asarray(times, float))
    steps = steps[np.isfinite(steps) & (steps > 0)]
    if len(steps):
        return float(np.median(steps))
    return 1.0 / (fps if fps and fps > 0 else DEFAULT_FPS)


def clip_extra(box, spacing_mm: float | None, frame_shape, frames_seen: int, interval_s: float) -> np.ndarray:
    """The numbers that go with a clip (CLIP_EXTRA): the node's size (us_regions.view_extra of the key-frame box)
    and the log of the sweep's duration in seconds. The hand sweeps at a roughly steady speed, so how long the
    sweep lasts and how much of it shows the node say how long the node is: the long axis a transverse sweep
    otherwise hides."""
    size = view_extra(box, spacing_mm, False, frame_shape)
    return np.append(size, np.log(max(frames_seen * interval_s, 1e-3))).astype(np.float32)


@dataclass(frozen=True)
class NodeClip:
    pixels: np.ndarray   # uint8 (T, H, W)
    times: np.ndarray    # (T,) seconds, NaN where unknown
    box: tuple           # node box x0, y0, x1, y1 in pixels (the whole frame when none is recorded)
    key: int             # the key frame (us_video_key_frame, else the middle one)


def read_node_clip(cohort: Cohort, row) -> NodeClip:
    """One node's clip as its nodes.csv row (a dict) describes it; an unreadable clip is a LymphCastError that
    names the file and the node."""
    ref = str(row["us_video_file"]).strip()
    try:
        pixels, times = read_clip(cohort.media_path(ref), max_frames=MAX_CLIP_FRAMES)
    except LymphCastError as err:
        raise LymphCastError(f"{ref}: cannot read the ultrasound clip of node {row['node_id']} ({err})") from None
    t, h, w = pixels.shape
    box = tuple(number(row, c) for c in BOX_COLUMNS)
    if any(v is None for v in box):
        box = (0.0, 0.0, float(w), float(h))
    key = number(row, "us_video_key_frame")
    return NodeClip(pixels, times, box, int(np.clip(key if key is not None else t // 2, 0, t - 1)))


def _clip(cohort: Cohort, row, frames: int, size: int, sampling: str):
    clip = read_node_clip(cohort, row)
    pixels, times, box = clip.pixels, clip.times, clip.box
    t, h, w = pixels.shape
    if sampling == "key":  # the annotated key frame alone, as a still would show it: no timing either
        idx = np.full(frames, clip.key)
    else:
        idx = sample_indices(t, frames)
    windows = scale_windows(box)
    out = np.stack([frame_crops(pixels[k], windows, size) for k in idx])
    interval = frame_interval(times, number(row, "us_video_fps"))
    extra = clip_extra(box, number(row, "us_video_pixel_spacing_mm"), (h, w), t, interval)
    if sampling == "key":
        extra[-1] = 0.0
    return out, extra, idx


def scale_windows(box) -> list[tuple]:
    """The crop window of each scale (node region, context) for a node box x0, y0, x1, y1 in pixels."""
    return [square_window(box, margin) for margin in MARGINS]


def frame_crops(frame: np.ndarray, windows, size: int) -> np.ndarray:
    """One grey frame (H, W) → uint8 (SCALES, size, size): what the clip network sees of it (offline and streaming
    alike)."""
    return np.stack([crop(frame, window, size) for window in windows])


def _key(cohort: Cohort, row, frames: int, size: int, sampling: str) -> tuple:
    ref = str(row["us_video_file"]).strip()
    try:
        stat = cohort.media_path(ref).stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
    except (OSError, LymphCastError):
        stamp = None
    cols = ("us_video_file", "us_video_pixel_spacing_mm", "us_video_fps", "us_video_key_frame", *BOX_COLUMNS)
    return (str(cohort.root), frames, size, sampling, stamp, *(str(row.get(c)) for c in cols))


def node_clips(cohort: Cohort, *, frames: int = 16, size: int = 48, sampling: str = "sweep",
               progress: bool = True) -> Clips:
    """Clips of every node of `cohort` with an ultrasound clip (see the module docstring). sampling "sweep":
    frames spread over the clip; "key": the key frame (us_video_key_frame) alone, repeated — the single-frame
    comparison."""
    if sampling not in SAMPLINGS:
        raise LymphCastError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
    from rich.progress import track

    if cohort.root is None:
        raise LymphCastError("the us_video model reads clips, so the cohort must come from a folder")
    nodes = video_nodes(cohort)
    n = len(nodes)
    pixels = np.zeros((n, frames, SCALES, size, size), np.uint8)
    extra = np.zeros((n, CLIP_EXTRA), np.float32)
    index = np.zeros((n, frames), int)
    rows = nodes.to_dict("records")
    steps = track(range(n), description="reading node clips", transient=True) if progress and n > 50 else range(n)
    for i in steps:
        key = _key(cohort, rows[i], frames, size, sampling)
        if key not in _CACHE:
            if len(_CACHE) >= _CACHE_MAX:
                _CACHE.clear()
            _CACHE[key] = _clip(cohort, rows[i], frames, size, sampling)
        pixels[i], extra[i], index[i] = _CACHE[key]
    return Clips(pd.Index(nodes["node_id"], name="node_id"), pixels, extra, index)
