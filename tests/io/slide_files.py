"""Small synthetic slides for the slide reader and tiling tests."""

from __future__ import annotations

import numpy as np

from lymphcast.io.slide_write import write_pyramid

BACKGROUND = (240, 238, 242)
RED = (200, 30, 60)


def blank(h: int, w: int, colour=BACKGROUND) -> np.ndarray:
    return np.broadcast_to(np.asarray(colour, np.uint8), (h, w, 3)).copy()


def planted(h: int = 1000, w: int = 1200, box=(400, 300, 520, 420), colour=RED) -> np.ndarray:
    """A pale field with one coloured square at box = (x0, y0, x1, y1) in pixels."""
    img = blank(h, w)
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1] = colour
    return img


def cells(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, colours, seed: int = 0) -> np.ndarray:
    """Fill the box with round 'cells' (radius 6-12 px) of the given colours, densely packed."""
    rng = np.random.default_rng(seed)
    for _ in range((x1 - x0) * (y1 - y0) // 60):
        cx, cy, r = rng.uniform(x0, x1), rng.uniform(y0, y1), rng.uniform(6, 12)
        bx0, by0 = max(x0, int(cx - r)), max(y0, int(cy - r))
        bx1, by1 = min(x1, int(cx + r) + 1), min(y1, int(cy + r) + 1)
        yy, xx = np.mgrid[by0:by1, bx0:bx1]
        img[by0:by1, bx0:bx1][(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = colours[rng.integers(len(colours))]
    return img


def write(path, img: np.ndarray, mpp: float = 0.5, **kw):
    return write_pyramid(path, img, mpp, **kw)
