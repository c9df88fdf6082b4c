"""Lymph node detector for full-field ultrasound frames: where are the nodes in a frame of the lateral neck?

A small UNet (nets.detector_net) predicts, on the frame resized to `size` x `size`, the probability that each
pixel lies inside a node; it learns from node boxes only (ellipses inscribed in them, us_detect_data). The
probability map is resized back to the frame, thresholded, and each connected component large enough becomes
one box (its bounding box), scored by its mean probability. Boxes never overlap in these frames, so touching
components need no splitting. Small nodes weigh more in the loss (us_detect_data.ellipse_target): they are
where detection fails first. Left-right flip test-time averaging is on by default (flips are valid views;
up-down flips are not). Recall/precision/F1 at IoU 0.5: us_detect_metrics.detection_metrics.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
from scipy import ndimage

from ..cohort import Cohort
from .base import NotFittedError
from .us_detect_data import (FRAME_COLUMN, apply_augment, draw_augment, ellipse_target, frame_table, normalise,
                             read_frame, to_grid)
from .us_detect_metrics import DETECTION_COLUMNS, detection_metrics, match_boxes  # noqa: F401  (re-exported)

Box = tuple[int, int, int, int, float]


class NodeDetector:
    """Finds lymph nodes in full-field B-mode frames; boxes are (x0, y0, x1, y1, score) in frame pixels,
    x1/y1 exclusive. Settings are stored as given; learned state ends with `_`."""

    def __init__(self, *, seed: int = 0, epochs: int = 30, size: int = 128, threshold: float = 0.5,
                 min_area_px: int = 30, min_area_mm2: float = 2.0, channels: tuple = (8, 16, 32, 64, 128, 256),
                 batch_size: int = 16, lr: float = 3e-3, val_fraction: float = 0.15, patience: int = 5,
                 flip_tta: bool = True, progress: bool = True):
        self.seed = seed
        self.epochs = epochs
        self.size = size
        self.threshold = threshold
        self.min_area_px = min_area_px
        self.min_area_mm2 = min_area_mm2
        self.channels = channels
        self.batch_size = batch_size
        self.lr = lr
        self.val_fraction = val_fraction
        self.patience = patience
        self.flip_tta = flip_tta
        self.progress = progress

    # --- plumbing ---------------------------------------------------------------------------------
    def get_params(self) -> dict:
        return {p: getattr(self, p) for p in inspect.signature(type(self).__init__).parameters if p != "self"}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def __getstate__(self) -> dict:
        # the torch module is rebuilt from state_dict_ on demand; pickles hold plain tensors only
        return {k: v for k, v in self.__dict__.items() if k != "_net"}

    def _check_settings(self) -> None:
        levels = len(self.channels) - 1
        if self.size < 16 or self.size % (2 ** levels):
            raise ValueError(f"size must be >= 16 and a multiple of {2 ** levels} (channels has {levels + 1} "
                             f"levels); got {self.size}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must lie in (0, 1); got {self.threshold}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")

    def _model(self):
        if not hasattr(self, "state_dict_"):
            raise NotFittedError("the node detector is not fitted; call fit() first")
        if getattr(self, "_net", None) is None:
            from ..nets.detector_net import detector_net

            net = detector_net(self.channels)
            net.load_state_dict(self.state_dict_)
            self._net = net.eval()
        return self._net

    # --- training ---------------------------------------------------------------------------------
    def fit(self, cohort: Cohort) -> "NodeDetector":
        """Train on every frame of `cohort` whose nodes all have boxes; a share of the patients (never of
        frames: a patient's two sides look alike) is held out for early stopping."""
        import torch

        from ..nets.detector_net import detector_net, train_segmenter

        self._check_settings()
        frames = frame_table(cohort, need_boxes=True)
        images, targets, weights = self._training_arrays(cohort, frames)
        rng = np.random.default_rng(self.seed)
        patients = frames["patient_id"].unique()
        n_val = min(int(round(self.val_fraction * len(patients))), len(patients) - 1)
        val = frames["patient_id"].isin(rng.permutation(patients)[:n_val]).to_numpy()
        tr_idx, va_idx = np.flatnonzero(~val), np.flatnonzero(val)
        tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)[:, None])  # noqa: E731

        def train_batches(epoch_rng: np.random.Generator):
            order = epoch_rng.permutation(tr_idx)
            for s in range(0, len(order), self.batch_size):
                idx = np.sort(order[s:s + self.batch_size])
                x, y, w = apply_augment(images[idx], (targets[idx], weights[idx]), draw_augment(epoch_rng, len(idx)))
                yield tensor(normalise(x)), tensor(y), tensor(w)

        val_batches = [(tensor(normalise(images[idx])), tensor(targets[idx]), tensor(weights[idx]))
                       for idx in np.array_split(va_idx, int(np.ceil(len(va_idx) / 64)))] if len(va_idx) else []
        torch.manual_seed(self.seed)  # the initial weights, too, follow the seed
        net = detector_net(self.channels)
        result = train_segmenter(net, train_batches, val_batches, epochs=self.epochs, lr=self.lr, seed=self.seed,
                                 patience=self.patience, progress=self.progress, description="node detector")
        self.state_dict_ = result.state
        self.history_ = pd.DataFrame(result.history)
        self.best_epoch_ = result.best_epoch
        self.n_frames_ = {"train": int(len(tr_idx)), "validation": int(len(va_idx))}
        self.fit_seconds_ = result.seconds
        self._net = net
        return self

    def _training_arrays(self, cohort: Cohort, frames: pd.DataFrame):
        """Frames on the network grid (uint8), their targets (uint8) and loss weights (float16: half the
        memory, and weights need no precision)."""
        images = np.zeros((len(frames), self.size, self.size), np.uint8)
        targets = np.zeros_like(images)
        weights = np.ones(images.shape, np.float16)
        for i, (ref, boxes) in enumerate(zip(frames[FRAME_COLUMN], frames["boxes"])):
            pixels = read_frame(cohort, ref).pixels
            images[i] = to_grid(pixels, self.size)
            targets[i], weights[i] = ellipse_target(boxes, pixels.shape, self.size)
        return images, targets, weights

    # --- detection --------------------------------------------------------------------------------
    def probability_maps(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Per-pixel "inside a node" probability for each 2-D uint8 frame, at the frame's own size."""
        import torch

        from ..nets.detector_net import channels_last

        net = self._model()
        out = []
        for s in range(0, len(frames), 64):
            chunk = frames[s:s + 64]
            grid = normalise(np.stack([to_grid(f, self.size) for f in chunk]))
            x = channels_last(torch.from_numpy(grid[:, None]))
            with torch.no_grad():
                prob = torch.sigmoid(net(x))
                if self.flip_tta:  # average with the mirrored frame (a valid view), un-mirrored
                    prob = (prob + torch.sigmoid(net(x.flip(-1))).flip(-1)) / 2
                for f, p in zip(chunk, prob):
                    up = torch.nn.functional.interpolate(p[None], size=f.shape, mode="bilinear", align_corners=False)
                    out.append(up[0, 0].numpy())
        return out

    def boxes_from_map(self, prob: np.ndarray, spacing_mm: float | None = None) -> list[Box]:
        """Connected components of prob >= threshold → boxes scored by mean probability, highest first;
        components under min_area_px pixels (or min_area_mm2 when the spacing is known) are dropped."""
        labels, n = ndimage.label(prob >= self.threshold)
        if not n:
            return []
        area = np.bincount(labels.ravel(), minlength=n + 1)[1:]
        mean = np.bincount(labels.ravel(), weights=prob.ravel(), minlength=n + 1)[1:] / np.maximum(area, 1)
        keep = area >= self.min_area_px
        if spacing_mm is not None and np.isfinite(spacing_mm) and spacing_mm > 0:
            keep &= area * float(spacing_mm) ** 2 >= self.min_area_mm2
        boxes = [(sl[1].start, sl[0].start, sl[1].stop, sl[0].stop, float(mean[k]))
                 for k, sl in enumerate(ndimage.find_objects(labels)) if sl is not None and keep[k]]
        return sorted(boxes, key=lambda b: -b[4])

    def detect(self, pixels: np.ndarray, spacing_mm: float | None = None) -> list[Box]:
        """Node boxes (x0, y0, x1, y1, score) in one 2-D grey frame (uint8; other types are clipped to
        0..255), in its own pixel coordinates, highest score first. `spacing_mm` enables min_area_mm2."""
        pixels = np.asarray(pixels)
        if pixels.ndim != 2:
            raise ValueError(f"expected one 2-D grey frame; got an array of shape {pixels.shape}")
        if pixels.dtype != np.uint8:
            pixels = np.clip(pixels, 0, 255).astype(np.uint8)
        return self.boxes_from_map(self.probability_maps([pixels])[0], spacing_mm)

    def detect_frames(self, cohort: Cohort) -> pd.DataFrame:
        """One row per detected box in every full-field frame of `cohort`: columns DETECTION_COLUMNS."""
        from rich.progress import track

        self._model()
        frames = frame_table(cohort, need_boxes=False)
        rows, chunk = [], 64
        starts = range(0, len(frames), chunk)
        if self.progress and len(frames) > chunk:
            starts = track(starts, description="detecting nodes", transient=True)
        for s in starts:
            part = frames.iloc[s:s + chunk]
            images = [read_frame(cohort, ref) for ref in part[FRAME_COLUMN]]
            maps = self.probability_maps([im.pixels for im in images])
            for (_, fr), im, prob in zip(part.iterrows(), images, maps):
                spacing = im.spacing_mm if im.spacing_mm else fr["spacing_mm"]
                for box in self.boxes_from_map(prob, spacing):
                    rows.append((fr[FRAME_COLUMN], fr["patient_id"], fr["side"], *box))
        out = pd.DataFrame(rows, columns=list(DETECTION_COLUMNS))
        return out.astype({"x0": int, "y0": int, "x1": int, "y1": int, "score": float})

    def score(self, cohort: Cohort, iou: float = 0.5) -> dict:
        """detection_metrics of this detector on `cohort`."""
        return detection_metrics(cohort, self.detect_frames(cohort), iou)

