"""Full-field ultrasound frames for the node detector: the frame table, reading and resizing, training
targets, and the ultrasound-aware augmentation.

- One frame per patient side holds several nodes; nodes.csv gives each node's frame (`us_frame_file`) and
  its box in that frame (`us_frame_box_*`). A frame trains the detector only when every node on it has a
  box: an unboxed node would otherwise be taught as background.
- Targets are ellipses inscribed in the boxes, drawn on the network grid: a node is a rounded blob whose
  bounding box is the box, so an ellipse is closer to what the pixels show than the filled rectangle
  (whose corners are background), and neighbours' targets stay apart even when their boxes nearly touch.
- Augmentation, drawn per frame in `draw_augment` and applied deterministically in `apply_augment`, so a
  draw can be replayed: left-right flips only (depth runs top to bottom: an up-down flip would put the
  skin under the nodes), gain (brightness), contrast and gamma jitter, as between scanners and presets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from ..cohort import Cohort, LymphCastError
from ..io.images import ImageReadError, read_image

FRAME_COLUMN = "us_frame_file"
BOX_COLUMNS = ("us_frame_box_x0", "us_frame_box_y0", "us_frame_box_x1", "us_frame_box_y1")
SPACING_COLUMN = "us_frame_pixel_spacing_mm"


def frame_table(cohort: Cohort, *, need_boxes: bool) -> pd.DataFrame:
    """One row per full-field frame: us_frame_file, patient_id, side, boxes ((n, 4) float array),
    spacing_mm (NaN when not recorded). With `need_boxes`, only frames whose nodes all have boxes."""
    name = cohort.meta.name
    nodes = cohort.nodes
    if not len(nodes) or FRAME_COLUMN not in nodes.columns:
        raise LymphCastError(f"cohort '{name}' has no full-field ultrasound frames: nodes.csv has no column "
                             f"'{FRAME_COLUMN}'" + ("" if len(nodes) else " (it has no nodes at all)"))
    refs = nodes[FRAME_COLUMN].astype("string").fillna("").str.strip()
    nodes = nodes.assign(**{FRAME_COLUMN: refs})[refs != ""]
    if not len(nodes):
        raise LymphCastError(f"cohort '{name}' has no full-field ultrasound frames: column '{FRAME_COLUMN}' "
                             "is empty for every node")
    missing = [c for c in BOX_COLUMNS if c not in nodes.columns]
    if need_boxes and missing:
        raise LymphCastError(f"cohort '{name}' has frames but no node boxes in them: nodes.csv lacks column(s) "
                             f"{', '.join(repr(c) for c in missing)}")
    rows = []
    for ref, g in nodes.groupby(FRAME_COLUMN, sort=False):
        boxes = g[list(BOX_COLUMNS)].to_numpy(float, na_value=np.nan) if not missing else np.zeros((0, 4))
        complete = bool(np.isfinite(boxes).all()) and len(boxes) == len(g)
        if need_boxes and not complete:
            continue
        boxes = boxes[np.isfinite(boxes).all(axis=1)]
        spacing = pd.to_numeric(g[SPACING_COLUMN], errors="coerce").dropna() if SPACING_COLUMN in g else []
        rows.append({FRAME_COLUMN: ref, "patient_id": g["patient_id"].iloc[0],
                     "side": g["side"].iloc[0] if "side" in g else None, "boxes": boxes,
                     "spacing_mm": float(spacing.iloc[0]) if len(spacing) else np.nan})
    if not rows:
        raise LymphCastError(f"cohort '{name}' has no frame whose nodes all have boxes "
                             f"({', '.join(BOX_COLUMNS)}); the detector needs complete boxes to train")
    return pd.DataFrame(rows)


def read_frame(cohort: Cohort, ref: str):
    """The frame as LoadedImage (uint8 grey + spacing); an unreadable file is a LymphCastError naming it."""
    try:
        return read_image(cohort.media_path(ref))
    except ImageReadError as err:
        raise LymphCastError(f"{ref}: cannot read the ultrasound frame ({err})") from None


def to_grid(pixels: np.ndarray, size: int) -> np.ndarray:
    """`pixels` resized to size x size (uint8; Pillow's bilinear resize is antialiased when it shrinks)."""
    if pixels.shape == (size, size):
        return np.ascontiguousarray(pixels, dtype=np.uint8)
    img = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def ellipse_target(boxes: np.ndarray, shape: tuple[int, int], size: int, *, ring: float = 2.0,
                   small: float = 0.2, max_weight: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Target and loss weights on the size x size grid for `boxes` in a frame of `shape`.

    Target: uint8, 1 inside the ellipse inscribed in each box. Weights: float32, 1 except for nodes smaller
    than (small * size)^2 pixels, whose ellipse and a `ring`-pixel band around it weigh area-inversely up to
    `max_weight`: otherwise the loss, summed over pixels, is made by the large nodes, and the small ones
    (where a pixel or two decides IoU >= 0.5) are found late and drawn too small.
    """
    target = np.zeros((size, size), np.uint8)
    weight = np.ones((size, size), np.float32)
    sy, sx = size / shape[0], size / shape[1]
    centres = np.arange(size) + 0.5
    ref = (small * size) ** 2
    for x0, y0, x1, y1 in np.asarray(boxes, float).reshape(-1, 4):
        cx, cy = (x0 + x1) / 2 * sx, (y0 + y1) / 2 * sy
        rx, ry = max((x1 - x0) / 2 * sx, 0.5), max((y1 - y0) / 2 * sy, 0.5)  # at least one pixel centre
        dx, dy = centres[None, :] - cx, centres[:, None] - cy
        target[(dx / rx) ** 2 + (dy / ry) ** 2 <= 1.0] = 1
        w = min(max(ref / (np.pi * rx * ry), 1.0), max_weight)
        if w > 1.0:
            near = (dx / (rx + ring)) ** 2 + (dy / (ry + ring)) ** 2 <= 1.0
            weight[near] = np.maximum(weight[near], w)
    return target, weight


def normalise(images: np.ndarray) -> np.ndarray:
    """uint8 or [0, 1] float frames → network input (fixed affine map, so brightness differences remain
    visible to the augmentation rather than being erased per frame)."""
    x = images.astype(np.float32)
    if images.dtype == np.uint8:
        x /= 255.0
    return (x - 0.45) / 0.25


def draw_augment(rng: np.random.Generator, n: int) -> dict:
    """Random parameters for `n` frames (drawn here, applied in apply_augment)."""
    return {"flip": rng.random(n) < 0.5,
            "gain": rng.uniform(-0.08, 0.08, n),          # added to [0, 1] intensities
            "contrast": np.exp(rng.uniform(-0.3, 0.3, n)),  # scales around the frame mean
            "gamma": np.exp(rng.uniform(-0.3, 0.3, n))}


def apply_augment(images: np.ndarray, maps: tuple[np.ndarray, ...], params: dict) -> tuple[np.ndarray, ...]:
    """Apply `params` to uint8 images (n, h, w) and to the per-pixel `maps` (n, h, w) that go with them
    (targets, weights: flipped alike); returns float32 [0, 1] images and float32 maps. Left-right flips
    only (never up-down: depth has a direction)."""
    flip = params["flip"]
    x = images.astype(np.float32) / 255.0
    x[flip] = x[flip][:, :, ::-1]
    out = []
    for m in maps:
        m = m.astype(np.float32)
        m[flip] = m[flip][:, :, ::-1]
        out.append(m)
    x = x ** params["gamma"][:, None, None].astype(np.float32)
    mean = x.mean(axis=(1, 2), keepdims=True)
    x = (x - mean) * params["contrast"][:, None, None].astype(np.float32) + mean
    x += params["gain"][:, None, None].astype(np.float32)
    return (np.clip(x, 0.0, 1.0), *out)
