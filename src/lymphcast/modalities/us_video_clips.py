"""Node clips from ultrasound cine sweeps: what the video model sees, read once per cohort and kept in memory.

For each node with a clip (`us_video_file`): `frames` frames sampled evenly over the whole sweep, each cropped
at two scales around the node box of the key frame (us_video_box_*): the node region (square, 25% margin, as
us_regions) and a wider context window (2.5× the box side), both resized to `size` x `size`. The node's
physical size goes with them as us_regions.view_extra numbers (log box width and height in mm from
us_video_pixel_spacing_mm, else as a share of the frame).

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
MAX_CLIP_FRAMES = 5000  # a node sweep is seconds long; anything longer is not a node clip
_CACHE: dict[tuple, tuple] = {}
_CACHE_MAX = 20_000  # node clips


@dataclass(frozen=True)
class Clips:
    node_ids: pd.Index
    pixels: np.ndarray   # uint8 (n, T, SCALES, size, size)
    extra: np.ndarray    # float32 (n, EXTRA)
    frames: np.ndarray   # int (n, T): index in the source clip of each sampled frame

    def __len__(self) -> int:
        return len(self.node_ids)


def video_nodes(cohort: Cohort) -> pd.DataFrame:
    """The cohort's nodes that have an ultrasound clip."""
    return nodes_with(cohort, "us_video_file")


def sample_indices(n: int, frames: int) -> np.ndarray:
    """`frames` indices spread evenly over a clip of n frames (repeats when the clip is shorter)."""
    return np.round(np.linspace(0, max(n - 1, 0), frames)).astype(int)


def _number(row, col):
    v = row.get(col)
    return float(v) if v is not None and pd.notna(v) else None


def _clip(cohort: Cohort, row, frames: int, size: int):
    ref = str(row["us_video_file"]).strip()
    try:
        pixels, _ = read_clip(cohort.media_path(ref), max_frames=MAX_CLIP_FRAMES)
    except LymphCastError as err:
        raise LymphCastError(f"{ref}: cannot read the ultrasound clip of node {row['node_id']} ({err})") from None
    t, h, w = pixels.shape
    box = tuple(_number(row, c) for c in BOX_COLUMNS)
    if any(v is None for v in box):
        box = (0.0, 0.0, float(w), float(h))
    idx = sample_indices(t, frames)
    out = np.zeros((frames, SCALES, size, size), np.uint8)
    for s, margin in enumerate(MARGINS):
        window = square_window(box, margin)
        for i, k in enumerate(idx):
            out[i, s] = crop(pixels[k], window, size)
    extra = view_extra(box, _number(row, "us_video_pixel_spacing_mm"), False, (h, w))
    return out, extra, idx


def _key(cohort: Cohort, row, frames: int, size: int) -> tuple:
    ref = str(row["us_video_file"]).strip()
    try:
        stat = cohort.media_path(ref).stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
    except (OSError, LymphCastError):
        stamp = None
    cols = ("us_video_file", "us_video_pixel_spacing_mm", *BOX_COLUMNS)
    return (str(cohort.root), frames, size, stamp, *(str(row.get(c)) for c in cols))


def node_clips(cohort: Cohort, *, frames: int = 16, size: int = 48, progress: bool = True) -> Clips:
    """Clips of every node of `cohort` with an ultrasound clip (see the module docstring)."""
    from rich.progress import track

    if cohort.root is None:
        raise LymphCastError("the us_video model reads clips, so the cohort must come from a folder")
    nodes = video_nodes(cohort)
    n = len(nodes)
    pixels = np.zeros((n, frames, SCALES, size, size), np.uint8)
    extra = np.zeros((n, EXTRA), np.float32)
    index = np.zeros((n, frames), int)
    rows = nodes.to_dict("records")
    steps = track(range(n), description="reading node clips", transient=True) if progress and n > 50 else range(n)
    for i in steps:
        key = _key(cohort, rows[i], frames, size)
        if key not in _CACHE:
            if len(_CACHE) >= _CACHE_MAX:
                _CACHE.clear()
            _CACHE[key] = _clip(cohort, rows[i], frames, size)
        pixels[i], extra[i], index[i] = _CACHE[key]
    return Clips(pd.Index(nodes["node_id"], name="node_id"), pixels, extra, index)
