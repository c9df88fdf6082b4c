"""What a cine-clip model is compared with: an ultrasound *image* model (trained on stills) scoring the frames of
the same clips one at a time.

Each sampled frame of a node's clip is cut out as the image model cuts a still (square window around the
key-frame box with the image model's margin, its input size, B-mode only: a clip has no Doppler view, which the
view's numbers say) and scored by the image model; the node's score is then the key frame's score, the mean over
the frames, or their maximum. Patient and side probabilities come from the image model's own roll-up (fitted on
stills), so the comparison keeps everything of the image model except the view it sees.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..cohort import Cohort
from .rollup import side_features
from .us_regions import VIEWS, Regions, crop, square_window, view_extra
from .us_video_clips import number, read_node_clip, sample_indices, video_nodes

SUMMARIES = ("key", "mean", "max")


def frame_regions(cohort: Cohort, *, frames: int, size: int, margin: float) -> tuple[Regions, pd.DataFrame]:
    """Regions (one B-mode view each) of `frames` frames sampled over every node clip, plus the key frame, and a
    table (node_id, frame, is_key) saying which region is which."""
    rows, pixels, extra, boxes = [], [], [], []
    for row in video_nodes(cohort).to_dict("records"):
        node = read_node_clip(cohort, row)
        clip, box, key = node.pixels, node.box, node.key
        t, h, w = clip.shape
        window = square_window(box, margin)
        numbers = view_extra(box, number(row, "us_video_pixel_spacing_mm"), False, (h, w))
        sampled = [(int(k), False) for k in np.unique(sample_indices(t, frames))]
        for k, is_key in [*sampled, (key, True)]:  # the key frame once more, flagged, after the sampled ones
            rows.append((row["node_id"], k, is_key))
            pixels.append(crop(clip[k], window, size))
            extra.append(numbers)
            boxes.append(window)
    n = len(rows)
    px = np.zeros((n, VIEWS, 2, size, size), np.uint8)
    ex = np.zeros((n, VIEWS, len(extra[0]) if extra else 6), np.float32)
    present = np.zeros((n, VIEWS), bool)
    bx = np.zeros((n, VIEWS, 4))
    if n:
        px[:, 0, 0], ex[:, 0], present[:, 0], bx[:, 0] = np.stack(pixels), np.stack(extra), True, np.asarray(boxes)
    table = pd.DataFrame(rows, columns=["node_id", "frame", "is_key"])
    return Regions(pd.Index(table["node_id"], name="node_id"), px, ex, present, bx), table


def frame_scores(image_model, cohort: Cohort, *, frames: int = 16) -> pd.DataFrame:
    """Per node: the image model's probability of its key frame, the mean and the max over `frames` sampled
    frames. Index node_id, columns SUMMARIES."""
    regions, table = frame_regions(cohort, frames=frames, size=image_model.size, margin=image_model.margin)
    table["p"] = image_model._calibrated(image_model._logits(regions))
    key = table[table["is_key"]].set_index("node_id")["p"]
    sampled = table[~table["is_key"]].groupby("node_id", sort=False)["p"]
    return pd.DataFrame({"key": key, "mean": sampled.mean(), "max": sampled.max()})


def rolled_up(image_model, cohort: Cohort, node_p: pd.Series) -> pd.Series:
    """Patient probabilities from node probabilities of the clips' nodes through the image model's roll-up."""
    frame = pd.DataFrame({"node_id": node_p.index, "p": node_p.to_numpy()}).merge(
        video_nodes(cohort)[["node_id", "patient_id", "side", "level"]], on="node_id")
    sides = side_features(frame, cohort.patients["patient_id"])
    return image_model.rollup_model_.patients(sides).reindex(cohort.patients["patient_id"])


def image_model_on_frames(image_model, cohort: Cohort, *, frames: int = 16) -> dict[str, pd.Series]:
    """summary ("key", "mean", "max") → patient probabilities of the image model scoring the clips' frames."""
    scores = frame_scores(image_model, cohort, frames=frames)
    return {name: rolled_up(image_model, cohort, scores[name]) for name in SUMMARIES}
