"""Rasterise a square region of a cytology scene at any pixel size, so one scene gives the slide and its fields.

Each primitive is evaluated in a small patch around it (patches of equal size evaluated together in one
vectorised call), turned into R, G, B optical density by its stain densities and the slide's stain vectors, and
added into the region's OD image; overlapping cells therefore darken as real overlapping nuclei do. Focus blur
is each object's edge width; uneven illumination a smooth OD ramp and vignette; then Beer-Lambert and camera
noise (cyto_stain.transmit).
"""

from __future__ import annotations

import numpy as np

from .cyto_cells import extent, values
from .cyto_stain import SlideStain, transmit

PATCH_STEP = 8  # patch sides are rounded up to a multiple of this: few distinct sizes, little waste
COARSE = 4      # coarse objects are drawn on a grid this many times coarser


def rasterise(prims: dict, x0: float, y0: float, size_px: int, mpp: float, stain: SlideStain,
              rng: np.random.Generator, *, focus_um: float | None = None, vignette: float = 0.0) -> np.ndarray:
    """RGB uint8 (size_px, size_px, 3) of the square whose top-left corner is (x0, y0) um, at `mpp` um/px.

    `focus_um`: edge width of objects (default: the slide's focus); `vignette`: OD added at the corners."""
    edge = max(0.7 * mpp, stain.focus_um if focus_um is None else focus_um)
    coarse = prims["coarse"] > 0
    od = _draw(prims, ~coarse, x0, y0, size_px, mpp, edge, stain, rng)
    if coarse.any() and size_px % COARSE == 0:  # colloid sheets: smooth and large, drawn at 1/COARSE resolution
        low = _draw(prims, coarse, x0, y0, size_px // COARSE, mpp * COARSE, 1.5 * COARSE * mpp, stain, rng)
        n = size_px // COARSE
        od.reshape(n, COARSE, n, COARSE, 3)[...] += low[:, None, :, None, :]
    elif coarse.any():
        od += _draw(prims, coarse, x0, y0, size_px, mpp, edge, stain, rng)
    # background, illumination ramp and vignette are separable: one row term and one column term
    ramp = np.linspace(-1, 1, size_px, dtype=np.float32)[:, None]
    half_vig = np.float32(vignette / 2) * ramp ** 2
    od += (stain.background + stain.tilt[0] * ramp + half_vig)[None, :, :]
    od += (stain.tilt[1] * ramp + half_vig)[:, None, :]
    return transmit(od, stain.noise, rng)


def _draw(prims: dict, chosen: np.ndarray, x0: float, y0: float, size_px: int, mpp: float, edge: float,
          stain: SlideStain, rng: np.random.Generator) -> np.ndarray:
    """OD image (size_px, size_px, 3) of the `chosen` primitives, patches of equal size drawn together."""
    od = np.zeros((size_px, size_px, 3), np.float32)
    reach = extent(prims) + 2 * edge
    span = size_px * mpp
    x, y = prims["x"] - x0, prims["y"] - y0
    inside = chosen & (x + reach > 0) & (x - reach < span) & (y + reach > 0) & (y - reach < span)
    sides = np.ceil((2 * reach / mpp + 2) / PATCH_STEP).astype(int) * PATCH_STEP
    colour = (prims["dens"] @ stain.vectors).astype(np.float32)  # (N, 3) OD per unit profile
    for side in np.unique(sides[inside]):
        idx = np.flatnonzero(inside & (sides == side))
        for part in np.array_split(idx, max(1, len(idx) * side * side // 2_000_000)):  # bounded memory
            _splat(od, {k: v[part] for k, v in prims.items()}, x[part], y[part], colour[part], int(side), mpp,
                   edge, rng)
    return od


def _splat(od: np.ndarray, t: dict, x: np.ndarray, y: np.ndarray, colour: np.ndarray, side: int, mpp: float,
           edge: float, rng: np.random.Generator) -> None:
    """Evaluate primitives `t` (centres x, y um relative to the region) in side x side patches and add them."""
    h, w = od.shape[:2]
    ix = np.floor(x / mpp).astype(int) - side // 2
    iy = np.floor(y / mpp).astype(int) - side // 2
    steps = np.arange(side, dtype=np.float32)
    dx = ((ix[:, None] + steps + 0.5) * mpp - x[:, None]).astype(np.float32)[:, None, :]
    dy = ((iy[:, None] + steps + 0.5) * mpp - y[:, None]).astype(np.float32)[:, :, None]
    patches = values(t, dx, dy, edge, rng)[..., None] * colour[:, None, None, :]
    for k in range(len(ix)):  # cheap slice adds; patches of one size overlap, so no single fancy-index add
        r0, c0 = iy[k], ix[k]
        r1, c1 = r0 + side, c0 + side
        a, b, c, d = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
        if a < b and c < d:
            od[a:b, c:d] += patches[k, a - r0:b - r0, c - c0:d - c0]
