"""Nodes found by the detector in full-field frames, turned into regions the node model can score.

A neck side that has a full-field frame but no node images (nobody drew boxes or cut out the nodes) is scored
through its frame: the detector's boxes become regions exactly as a boxed node image would (square crop with
the same context margin, resized), B-mode only (a frame has no Doppler; the view says so, see
us_regions.EXTRA), with the physical size from the frame's pixel spacing. A detected node has an id
`<patient>-<side>-F<k>` and no level (the detector does not know it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..cohort import Cohort
from .us_detect_data import FRAME_COLUMN, SPACING_COLUMN, read_frame
from .us_regions import EXTRA, VIEWS, Regions, crop, image_nodes, square_window, view_extra


def frame_only_sides(cohort: Cohort) -> pd.MultiIndex:
    """(patient_id, side) pairs that have a full-field frame but no node with an ultrasound image."""
    nodes = cohort.nodes
    if not len(nodes) or FRAME_COLUMN not in nodes.columns:
        return pd.MultiIndex.from_tuples([], names=["patient_id", "side"])
    has_frame = nodes[FRAME_COLUMN].astype("string").fillna("").str.strip() != ""
    framed = pd.MultiIndex.from_frame(nodes.loc[has_frame, ["patient_id", "side"]]).unique()
    imaged = image_nodes(cohort)
    with_images = pd.MultiIndex.from_frame(imaged[["patient_id", "side"]]) if len(imaged) else framed[:0]
    return framed.difference(with_images).set_names(["patient_id", "side"])


def detected_node_ids(detections: pd.DataFrame) -> pd.Index:
    """`<patient>-<side>-F<k>`, k counting the detections of one frame from 1 (highest score first)."""
    k = detections.groupby(["patient_id", "side"]).cumcount() + 1
    ids = detections["patient_id"].astype(str) + "-" + detections["side"].astype(str) + "-F" + k.map("{:02d}".format)
    return pd.Index(ids, name="node_id")


def frame_regions(cohort: Cohort, detections: pd.DataFrame, *, size: int, margin: float) -> Regions:
    """Regions (one B-mode view each) of the detected boxes in `detections` (rows of
    NodeDetector.detect_frames)."""
    n = len(detections)
    pixels = np.zeros((n, VIEWS, 2, size, size), np.uint8)
    extra = np.zeros((n, VIEWS, EXTRA), np.float32)
    present = np.zeros((n, VIEWS), bool)
    boxes = np.zeros((n, VIEWS, 4))
    spacing = _recorded_spacing(cohort)
    frames: dict[str, tuple] = {}
    for i, row in enumerate(detections.itertuples(index=False)):
        ref = getattr(row, FRAME_COLUMN)
        if ref not in frames:
            image = read_frame(cohort, ref)
            frames[ref] = (image.pixels, image.spacing_mm or spacing.get(ref))
        frame, mm = frames[ref]
        box = (row.x0, row.y0, row.x1, row.y1)
        window = square_window(box, margin)
        pixels[i, 0, 0] = crop(frame, window, size)
        extra[i, 0] = view_extra(box, mm, has_flow=False, image_shape=frame.shape)
        present[i, 0] = True
        boxes[i, 0] = window
    return Regions(detected_node_ids(detections), pixels, extra, present, boxes)


def _recorded_spacing(cohort: Cohort) -> dict[str, float]:
    nodes = cohort.nodes
    if SPACING_COLUMN not in nodes.columns:
        return {}
    known = nodes[[FRAME_COLUMN, SPACING_COLUMN]].dropna()
    return dict(zip(known[FRAME_COLUMN], known[SPACING_COLUMN].astype(float)))
