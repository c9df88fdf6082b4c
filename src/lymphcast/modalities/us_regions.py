"""Node regions from ultrasound images: what the node model sees, read once per cohort and kept in memory.

For each node and each of its first VIEWS views: a square crop around the node box with a context margin
(square, so the node's shape — round or oval — is not distorted), resized to `size` x `size`, two channels
(B-mode, and colour-Doppler flow where the cohort has it, else zeros), plus the node's physical size. Node views
in the synthetic cohort (and many exported images) are zoomed to the node, so size lives in the box and the
pixel spacing, not in the pixels: it goes to the network as three numbers per view (log width and height of
the box in mm, and whether the spacing is known).

The box of a view: the bounding box of that view's mask when one is given, else the us_box_* columns (they
describe the first view), else the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from ..cohort import Cohort, LymphCastError
from ..io.images import ImageReadError, read_image

VIEWS = 2
BOX_COLUMNS = ("us_box_x0", "us_box_y0", "us_box_x1", "us_box_y1")
# log box width and height in mm, spacing known (0/1), Doppler present (0/1), and — only where the spacing is
# unknown (most JPEG exports) — log box width and height as a share of the image: the nearest size cue left
EXTRA = 6
_CACHE: dict[tuple, tuple] = {}
_CACHE_MAX = 200_000  # node views; ~8 KB each at 64 px


@dataclass(frozen=True)
class Regions:
    node_ids: pd.Index
    pixels: np.ndarray     # uint8 (n, VIEWS, 2, size, size): B-mode, Doppler
    extra: np.ndarray      # float32 (n, VIEWS, EXTRA)
    present: np.ndarray    # bool (n, VIEWS): the view exists
    boxes: np.ndarray      # float (n, VIEWS, 4): crop window x0, y0, x1, y1 in the source image (for heat maps)

    def __len__(self) -> int:
        return len(self.node_ids)


def nodes_with(cohort: Cohort, column: str) -> pd.DataFrame:
    """The cohort's nodes whose media `column` (e.g. us_image_file) is filled in."""
    nodes = cohort.nodes
    if not len(nodes) or column not in nodes.columns:
        return nodes.iloc[0:0] if len(nodes) else pd.DataFrame(columns=["node_id", "patient_id", "side", "level"])
    has = nodes[column].fillna("").astype(str).str.strip() != ""
    return nodes[has].reset_index(drop=True)


def image_nodes(cohort: Cohort) -> pd.DataFrame:
    """The cohort's nodes that have at least one ultrasound image."""
    return nodes_with(cohort, "us_image_file")


def _refs(value) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [r.strip() for r in str(value).split(";") if r.strip()]


def _read(cohort: Cohort, ref: str, what: str):
    try:
        return read_image(cohort.media_path(ref))
    except ImageReadError as err:
        raise LymphCastError(f"{ref}: cannot read the {what} ({err})") from None


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.nonzero(mask)
    if not len(rows):
        return None
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def square_window(box, margin: float) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0, 1) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2


def crop(pixels: np.ndarray, window, size: int) -> np.ndarray:
    """`window` of `pixels` resized to size x size; PIL fills what lies outside the image with 0 and its
    bilinear resize is antialiased when it shrinks."""
    img = Image.fromarray(pixels).crop(tuple(int(round(v)) for v in window))
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def _row_box(row, view: int, mask_refs: list[str], cohort: Cohort, shape) -> tuple:
    if view < len(mask_refs):
        box = mask_box(_read(cohort, mask_refs[view], "node mask").pixels)
        if box is not None:
            return box
    if view == 0 and all(c in row and pd.notna(row[c]) for c in BOX_COLUMNS):
        return tuple(float(row[c]) for c in BOX_COLUMNS)
    return 0, 0, shape[1], shape[0]


def _view(cohort: Cohort, row, view: int, size: int, margin: float):
    refs = _refs(row.get("us_image_file"))
    doppler_refs, mask_refs = _refs(row.get("us_doppler_file")), _refs(row.get("us_mask_file"))
    image = _read(cohort, refs[view], "ultrasound image")
    box = _row_box(row, view, mask_refs, cohort, image.pixels.shape)
    window = square_window(box, margin)
    bmode = crop(image.pixels, window, size)
    doppler = np.zeros_like(bmode)
    has_flow = view < len(doppler_refs)
    if has_flow:
        flow = _read(cohort, doppler_refs[view], "Doppler image").pixels
        if flow.shape != image.pixels.shape:
            raise LymphCastError(f"{doppler_refs[view]}: the Doppler image is {flow.shape[1]}x{flow.shape[0]} "
                                 f"pixels but its B-mode image is {image.pixels.shape[1]}x{image.pixels.shape[0]}")
        doppler = crop(flow, window, size)
    spacing = row.get("us_pixel_spacing_mm")
    spacing = float(spacing) if spacing is not None and pd.notna(spacing) else image.spacing_mm
    extra = view_extra(box, spacing, has_flow, image.pixels.shape)
    return np.stack([bmode, doppler]), extra, np.asarray(window, float)


def view_extra(box, spacing_mm: float | None, has_flow: bool, image_shape=None) -> np.ndarray:
    """The numbers that go with a view (see EXTRA)."""
    w, h = max(box[2] - box[0], 1), max(box[3] - box[1], 1)
    if spacing_mm:
        return np.asarray((np.log(w * spacing_mm), np.log(h * spacing_mm), 1.0, float(has_flow), 0.0, 0.0),
                          np.float32)
    share = (np.log(w / image_shape[1]), np.log(h / image_shape[0])) if image_shape is not None else (0.0, 0.0)
    return np.asarray((0.0, 0.0, 0.0, float(has_flow), *share), np.float32)


def _key(cohort: Cohort, row, view: int, size: int, margin: float) -> tuple:
    cols = ("us_image_file", "us_doppler_file", "us_mask_file", "us_pixel_spacing_mm", *BOX_COLUMNS)
    stamps = []
    for col in ("us_image_file", "us_doppler_file", "us_mask_file"):  # a file rewritten in place is re-read
        refs = _refs(row.get(col))
        try:
            stat = cohort.media_path(refs[view]).stat() if view < len(refs) else None
            stamps.append((stat.st_mtime_ns, stat.st_size) if stat else None)
        except OSError:
            stamps.append(None)
    return (str(cohort.root), view, size, margin, *stamps, *(str(row.get(c)) for c in cols))


def node_regions(cohort: Cohort, *, size: int = 64, margin: float = 0.25, progress: bool = True) -> Regions:
    """Regions of every node of `cohort` with an ultrasound image (see the module docstring)."""
    from rich.progress import track

    nodes = image_nodes(cohort)
    n = len(nodes)
    pixels = np.zeros((n, VIEWS, 2, size, size), np.uint8)
    extra = np.zeros((n, VIEWS, EXTRA), np.float32)
    present = np.zeros((n, VIEWS), bool)
    boxes = np.zeros((n, VIEWS, 4))
    rows = nodes.to_dict("records")
    steps = track(range(n), description="reading node images", transient=True) if progress and n > 200 else range(n)
    for i in steps:
        row = rows[i]
        for v in range(min(VIEWS, len(_refs(row.get("us_image_file"))))):
            key = _key(cohort, row, v, size, margin)
            if key not in _CACHE:
                if len(_CACHE) >= _CACHE_MAX:
                    _CACHE.clear()
                _CACHE[key] = _view(cohort, row, v, size, margin)
            pixels[i, v], extra[i, v], boxes[i, v] = _CACHE[key]
            present[i, v] = True
    return Regions(pd.Index(nodes["node_id"], name="node_id"), pixels, extra, present, boxes)
