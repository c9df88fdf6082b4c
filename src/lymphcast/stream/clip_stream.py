"""ClipStream: the us_video node risk updated after every frame of a cine sweep, as the frames arrive.

Each pushed frame is cropped at the model's scales (the same windows as offline: us_video_clips.frame_crops
around the node box, or the whole frame) and encoded once by ClipNet.frame_features; its feature vector is kept.
Then only ClipNet.aggregate (the bidirectional GRU, attention and head) reruns over `model.frames` features
sampled evenly (sample_indices, as offline) from the frames seen so far, or from the last `window` frames. So
after the last frame of a clip, with no window, the risk is the offline `predict_nodes` risk of that clip, and
the backward direction of the GRU always reads the frames already seen. The clip numbers (clip_extra: node size
and the sweep's log duration) are recomputed each frame from the frames used and the median step of their times.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from ..cohort.errors import LymphCastError
from ..io.video import luma
from ..modalities.us_video_clips import clip_extra, frame_crops, frame_interval, sample_indices, scale_windows
from ..nets.clip_net import prepare


@dataclass(frozen=True)
class StreamUpdate:
    index: int              # 0-based position of the frame in the stream
    time_s: float | None    # the frame's time as its source gave it
    risk: float             # calibrated P(node metastatic) from the frames used
    logit: float            # the network's raw node logit
    latency_ms: float       # from the frame's release (or the push) to this update
    frames_used: int        # frames the update was computed from (all seen so far, or the window)


class ClipStream:
    """Streaming node risk from one cine sweep. box: node box x0, y0, x1, y1 in pixels (None: the whole frame,
    as offline without a box); spacing_mm: size of a pixel (None: unknown); window: use only the last `window`
    frames (None: every frame seen so far; one small feature vector per frame is kept); fps: the source's
    recorded frame rate, for the sweep duration while frame times are unknown (as offline); threads: torch
    intra-op threads while a frame is processed (None: torch's setting as it is). One by default: a frame is a
    handful of tiny operations, and a second thread only adds synchronisation that stalls for whole scheduler
    slices whenever the other core is busy — on 2 cores beside other work, latency then grew to seconds."""

    def __init__(self, model, *, box=None, spacing_mm: float | None = None, window: int | None = None,
                 fps: float | None = None, threads: int | None = 1):
        if getattr(model, "sampling", "sweep") != "sweep":
            raise LymphCastError(f"this us_video model reads the annotated key frame only (sampling="
                                 f"{model.sampling!r}); streaming needs a model trained on whole sweeps")
        if window is not None and (int(window) != window or window < 1):
            raise LymphCastError(f"window must be a whole number of frames >= 1, got {window}")
        if box is not None:
            box = tuple(float(v) for v in box)
            if len(box) != 4 or not (box[2] > box[0] and box[3] > box[1]):
                raise LymphCastError(f"node box must be x0,y0,x1,y1 with x1 > x0 and y1 > y0, got {box}")
        if spacing_mm is not None and not spacing_mm > 0:
            raise LymphCastError(f"pixel spacing must be > 0 mm, got {spacing_mm}")
        self.model, self.box, self.spacing_mm, self.window, self.fps = model, box, spacing_mm, window, fps
        self.threads = threads
        self.net = model.network()  # eval mode; raises if the model is not fitted
        self.frames, self.size = int(model.frames), int(model.size)
        # A window bounds memory; without one the buffer grows by one (hidden,) vector per frame.
        self._feats: deque = deque(maxlen=window)
        self._sources: deque = deque(maxlen=window)  # stream index of each kept feature
        self._steps = _Steps(window)
        self._shape = self._box = self._windows = None
        self._count = 0
        self._attention = self._sampled = None
        self.latest: StreamUpdate | None = None

    @property
    def buffered(self) -> int:
        """Feature vectors held now (at most `window`)."""
        return len(self._feats)

    def push(self, pixels: np.ndarray, time_s: float | None = None, released_at: float | None = None) -> StreamUpdate:
        """Add one frame (grey uint8 (H, W) or RGB (H, W, 3)) and return the updated node risk. released_at: the
        time.perf_counter() at which the frame became available (default: now), so latency counts any wait."""
        start = time.perf_counter() if released_at is None else released_at
        grey = self._grey(pixels)
        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)  # restored below: the caller's setting stays its own
        try:
            logit, attention = self._run(grey, time_s)
        finally:
            torch.set_num_threads(before)
        raw = np.array([float(logit[0])])
        risk = float(self.model._calibrated(raw)[0])
        self._attention = attention[0].numpy().astype(float)
        self.latest = StreamUpdate(index=self._count, time_s=time_s, risk=risk, logit=float(raw[0]),
                                   latency_ms=(time.perf_counter() - start) * 1000.0, frames_used=len(self._feats))
        self._count += 1
        return self.latest

    def _run(self, grey: np.ndarray, time_s: float | None):
        """Encode the new frame, keep its features, rerun the temporal part over the sampled ones."""
        self._steps.add(time_s)
        extra = clip_extra(self._box, self.spacing_mm, self._shape, min(self._count + 1, self.window or math.inf),
                           self._steps.interval(self.fps))
        with torch.inference_mode():
            x = prepare(torch.from_numpy(frame_crops(grey, self._windows, self.size))[None, None])
            self._feats.append(self.net.frame_features(x)[0, 0])
            self._sources.append(self._count)
            pick = sample_indices(len(self._feats), self.frames)
            feats = torch.stack([self._feats[i] for i in pick])[None]
            self._sampled = np.array([self._sources[i] for i in pick])
            return self.net.aggregate(feats, torch.from_numpy(extra)[None])

    def key_frames(self, k: int = 3) -> list[int]:
        """Stream indices of the k frames with the largest attention in the latest update."""
        return [frame for frame, _ in self.key_frame_weights(k)]

    def key_frame_weights(self, k: int = 3) -> list[tuple[int, float]]:
        """(stream index, attention weight) of the k most attended frames of the latest update, largest first (a
        frame sampled twice, in a stream shorter than model.frames, counts its weights together)."""
        if self._attention is None:
            return []
        weights: dict[int, float] = {}
        for source, w in zip(self._sampled.tolist(), self._attention.tolist()):
            weights[source] = weights.get(source, 0.0) + w
        return [(s, weights[s]) for s in sorted(weights, key=lambda s: (-weights[s], s))[:k]]

    def attention(self) -> tuple[np.ndarray, np.ndarray]:
        """(stream indices, attention weights) of the frames sampled for the latest update."""
        if self._attention is None:
            return np.zeros(0, int), np.zeros(0)
        return self._sampled.copy(), self._attention.copy()

    def _grey(self, pixels) -> np.ndarray:
        pixels = np.asarray(pixels)
        if pixels.dtype != np.uint8:
            raise LymphCastError(f"frame {self._count}: expected uint8 pixels, got {pixels.dtype}")
        if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
            pixels = luma(pixels)  # as read_image and the video readers make grey
        elif pixels.ndim != 2:
            raise LymphCastError(f"frame {self._count}: expected a grey (H, W) or RGB (H, W, 3) frame, got shape "
                                 f"{pixels.shape}")
        if self._shape is None:
            self._start(pixels.shape)
        elif pixels.shape != self._shape:
            raise LymphCastError(f"frame {self._count} is {pixels.shape[1]}x{pixels.shape[0]} pixels but the stream "
                                 f"began with {self._shape[1]}x{self._shape[0]} frames; one stream is one sweep of "
                                 "one size (start a new stream for a new clip)")
        return pixels

    def _start(self, shape) -> None:
        """The first frame fixes the crop windows and the frame size, as the key frame does offline."""
        h, w = shape
        box = self.box if self.box is not None else (0.0, 0.0, float(w), float(h))
        if box[0] >= w or box[1] >= h or box[2] <= 0 or box[3] <= 0:
            raise LymphCastError(f"node box {','.join(f'{v:g}' for v in box)} lies outside the {w}x{h} frame")
        self._shape, self._box, self._windows = tuple(shape), box, scale_windows(box)


class _Steps:
    """Frame-time steps of the frames used, for frame_interval's median step without re-sorting every frame: a
    sorted list when every frame is used (insort), the window's steps otherwise."""

    def __init__(self, window: int | None):
        self.window, self.last = window, None
        self.steps = [] if window is None else deque(maxlen=max(window - 1, 1))

    def add(self, t: float | None) -> None:
        step = None if t is None or self.last is None else t - self.last
        if t is not None:
            self.last = t
        if self.window is None:
            if step is not None and math.isfinite(step) and step > 0:
                bisect.insort(self.steps, step)
        elif self.window > 1:  # a window of one frame spans no step
            self.steps.append(step if step is not None else math.nan)

    def interval(self, fps: float | None) -> float:
        steps = self.steps if self.window is None else sorted(s for s in self.steps if math.isfinite(s) and s > 0)
        n = len(steps)
        if n:  # the median, as frame_interval takes it
            return (steps[(n - 1) // 2] + steps[n // 2]) / 2
        return frame_interval([], fps)


@dataclass(frozen=True)
class StreamSummary:
    frames: int
    seconds: float          # from the first frame's release to the last update
    fps: float              # sustained: frames / seconds
    latency_median_ms: float
    latency_p95_ms: float
    final_risk: float | None


def summarise(updates: list[StreamUpdate], first_released: float | None, last_done: float | None) -> StreamSummary:
    """Sustained rate and latency figures of a finished stream (perf_counter times of its two ends)."""
    n = len(updates)
    seconds = (last_done - first_released) if n and first_released is not None else 0.0
    lat = np.array([u.latency_ms for u in updates]) if n else np.zeros(1) * np.nan
    return StreamSummary(frames=n, seconds=seconds, fps=n / seconds if seconds > 0 else float("nan"),
                         latency_median_ms=float(np.median(lat)), latency_p95_ms=float(np.percentile(lat, 95)),
                         final_risk=updates[-1].risk if n else None)
