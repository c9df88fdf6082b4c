"""Box overlap and detection matching: pure functions on arrays, plus the per-cohort recall/precision/F1.

Boxes are (x0, y0, x1, y1) in pixels with x1/y1 exclusive, so a box's area is (x1 - x0) * (y1 - y0).
Matching is greedy by score, as in PASCAL VOC / COCO: predictions are taken from the highest score down,
each takes the unmatched true box it overlaps most, if that IoU is at least the threshold; a true box is
matched at most once, so a duplicate prediction of an already found node is a false positive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..cohort import Cohort

DETECTION_COLUMNS = ("us_frame_file", "patient_id", "side", "x0", "y0", "x1", "y1", "score")


def _boxes(boxes, width: int) -> np.ndarray:
    arr = np.asarray(boxes, dtype=float)
    if arr.size == 0:
        return np.zeros((0, width))
    if arr.ndim != 2 or arr.shape[1] < 4:
        raise ValueError(f"expected boxes as rows of (x0, y0, x1, y1[, score]); got shape {arr.shape}")
    return arr


def box_iou(a, b) -> np.ndarray:
    """IoU matrix (len(a), len(b)) between two sets of (x0, y0, x1, y1, ...) boxes; extra columns ignored."""
    a, b = _boxes(a, 4)[:, :4], _boxes(b, 4)[:, :4]
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area = lambda z: np.clip(z[:, 2] - z[:, 0], 0, None) * np.clip(z[:, 3] - z[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_boxes(pred, truth, iou: float = 0.5) -> np.ndarray:
    """For each predicted box (x0, y0, x1, y1, score), the index of the true box it matches, or -1.

    Greedy by descending score (ties: input order); a true box is matched at most once; a match needs
    IoU >= `iou`. Predictions without a score column are taken in input order.
    """
    pred, truth = _boxes(pred, 5), _boxes(truth, 4)
    out = np.full(len(pred), -1, dtype=int)
    if not len(pred) or not len(truth):
        return out
    overlap = box_iou(pred, truth)
    order = np.argsort(-pred[:, 4], kind="stable") if pred.shape[1] > 4 else np.arange(len(pred))
    free = np.ones(len(truth), bool)
    for i in order:
        cand = np.where(free, overlap[i], -1.0)
        j = int(np.argmax(cand))
        if cand[j] >= iou:
            out[i], free[j] = j, False
    return out


def count_matches(pred, truth, iou: float = 0.5) -> tuple[int, int, int]:
    """(true positives, number predicted, number true) for one frame."""
    matched = match_boxes(pred, truth, iou)
    return int((matched >= 0).sum()), len(matched), len(_boxes(truth, 4))


def scores_from_counts(tp: int, n_pred: int, n_true: int) -> dict:
    """recall, precision, F1 (= 2 tp / (n_pred + n_true)); NaN where the denominator is zero."""
    div = lambda a, b: float(a / b) if b else float("nan")  # noqa: E731
    return {"recall": div(tp, n_true), "precision": div(tp, n_pred), "f1": div(2 * tp, n_pred + n_true),
            "n_true": int(n_true), "n_pred": int(n_pred), "tp": int(tp)}


def detection_metrics(cohort: Cohort, detections: pd.DataFrame, iou: float = 0.5) -> dict:
    """Recall, precision and F1 at IoU `iou` of `detections` (columns us_frame_file, x0, y0, x1, y1, score;
    as NodeDetector.detect_frames returns) against the node boxes of `cohort`'s full-field frames.

    Every frame of the cohort counts, also those without detections; detections on frames the cohort does
    not have are false positives.
    """
    from .us_detect_data import frame_table

    frames = frame_table(cohort, need_boxes=True)
    missing = [c for c in ("us_frame_file", "x0", "y0", "x1", "y1", "score") if c not in detections.columns]
    if missing:
        raise ValueError(f"detections lack column(s) {', '.join(missing)}")
    by_frame = {ref: g[["x0", "y0", "x1", "y1", "score"]].to_numpy(float)
                for ref, g in detections.groupby("us_frame_file", sort=False)}
    tp = n_pred = n_true = 0
    for ref, truth in zip(frames["us_frame_file"], frames["boxes"]):
        t, p, n = count_matches(by_frame.pop(ref, np.zeros((0, 5))), truth, iou)
        tp, n_pred, n_true = tp + t, n_pred + p, n_true + n
    n_pred += sum(len(v) for v in by_frame.values())
    return scores_from_counts(tp, n_pred, n_true)
