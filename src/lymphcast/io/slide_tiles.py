"""Tiles of a cytology slide at a set magnification, skipping background, in bounded memory.

`plan_tiles` lays a grid of square tiles (`TileSpec.size` pixels at `TileSpec.mpp` micrometres per pixel) over
the slide, measures the tissue fraction of every tile on a low-resolution image (the coarsest pyramid level
still giving >= MASK_PX_PER_TILE pixels per tile side, downsampled further when the slide has no such level),
and keeps tiles with at least `min_tissue`. `iter_tiles` then reads the kept tiles from the coarsest level still
as fine as the target (mpp <= target x 1.05; level 0 when none is), in tile-aligned bands of at most BAND_BYTES,
and resizes them to the target with Pillow (area average down, Lanczos up). Neither ever holds a whole level.

Tissue is optical density relative to the slide's own background: -log10(rgb / background) summed over the
three channels. The background is the median colour of the brightest pixels, so white glass (Papanicolaou,
Diff-Quik) and a tinted (e.g. magenta, proteinaceous) Diff-Quik background both read as OD ~0, while stained
cells (blue/green/pink Pap, purple/blue Diff-Quik) read well above TISSUE_OD.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .slide import Slide, open_slide

# Summed 3-channel OD above the background that counts as tissue: clean glass with JPEG noise stays below ~0.05,
# pale squamous cytoplasm reaches ~0.15-0.2, nuclei and Diff-Quik-stained cells 0.5 and more.
TISSUE_OD = 0.15
BACKGROUND_QUANTILE = 0.95  # the brightest 5% of the thumbnail give the background colour ...
MAX_BACKGROUND_OD = 0.35    # ... unless even they are this stained (a smear covering everything): then white
MASK_PX_PER_TILE = 4        # mask resolution: at least 4 x 4 thumbnail pixels per tile
BAND_BYTES = 64 * 2 ** 20   # at most this much RGB is read at once when tiling
MPP_SLACK = 1.05            # a level up to 5% coarser than the target still counts as fine enough


@dataclass(frozen=True)
class TileSpec:
    size: int = 64                 # tile side in pixels at the target pixel size
    mpp: float = 1.0               # target micrometres per pixel
    min_tissue: float = 0.25       # keep a tile when at least this fraction of it is tissue
    max_tiles: int | None = None   # at most this many tiles: a seeded uniform random subset of the tissue tiles

    def __post_init__(self):
        if self.size < 1 or not self.mpp > 0 or not 0 <= self.min_tissue <= 1:
            raise ValueError(f"tile size must be >= 1, mpp > 0 and min_tissue in 0..1, got {self}")
        if self.max_tiles is not None and self.max_tiles < 1:
            raise ValueError(f"max_tiles must be >= 1 or None, got {self.max_tiles}")


@dataclass(frozen=True, eq=False)
class TilePlan:
    coords: np.ndarray      # (n, 2) int64 top-left (x, y) of each kept tile, in level-0 pixels
    tissue: np.ndarray      # (n,) tissue fraction of each kept tile
    grid: tuple[int, int]   # (rows, cols) of the full tile grid over the slide
    cell: np.ndarray        # (n, 2) int (row, col) of each kept tile in the grid, row-major order
    level: int              # pyramid level the tiles are read from
    scale: float            # pixels of that level per target pixel (> 1: the tiles are downsampled)
    tile_base_px: float     # tile side in level-0 pixels (tile x spacing of the grid)
    thumbnail: np.ndarray   # (h, w, 3) uint8 RGB of the whole slide, for heat maps
    thumbnail_mpp: float    # micrometres per thumbnail pixel
    mpp: float              # target micrometres per pixel of the tiles
    size: int               # tile side in pixels at `mpp`

    def __len__(self) -> int:
        return len(self.coords)


def _downsample(region: np.ndarray, f: int) -> np.ndarray:
    """Box average by an integer factor (the region's sides are multiples of f)."""
    if f == 1:
        return region
    h, w = region.shape[0] // f, region.shape[1] // f
    s = region.reshape(h, f, w, f, 3).sum(axis=(1, 3), dtype=np.uint32)
    return ((s + f * f // 2) // (f * f)).astype(np.uint8)


def thumbnail(slide: Slide, level: int, factor: int) -> np.ndarray:
    """`level` reduced by `factor`, read in bands of whole stored tiles (never the level at once)."""
    lv = slide.levels[level]
    width = -(-lv.width // factor) * factor
    native_h = max(1, slide.native_tile(level)[1])
    band = max(factor, -(-min(native_h, lv.height) // factor) * factor)
    band = max(factor, min(band, (BAND_BYTES // (3 * width)) // factor * factor))
    parts = [_downsample(slide.read(level, 0, y, width, band), factor) for y in range(0, lv.height, band)]
    return np.concatenate(parts, axis=0)[:-(-lv.height // factor)]


def tissue_mask(rgb: np.ndarray, threshold: float = TISSUE_OD) -> np.ndarray:
    """True where summed optical density relative to the image's background exceeds `threshold`."""
    flat = rgb.reshape(-1, 3).astype(np.float32)
    lum = flat.sum(axis=1)
    bright = flat[lum >= np.quantile(lum, BACKGROUND_QUANTILE)]
    bg = np.maximum(np.median(bright, axis=0), 1.0)
    if np.log10(255.0 / bg).sum() > MAX_BACKGROUND_OD:
        bg = np.full(3, 255.0, np.float32)
    od = np.log10(bg / np.maximum(rgb.astype(np.float32), 1.0)).clip(min=0).sum(axis=-1)
    return od > threshold


def _axis_counts(n: int, step: float) -> np.ndarray:
    """Pixels (centres at j + 0.5) falling in each of n cells of `step` pixels along one axis."""
    edges = np.ceil(np.arange(n + 1) * step - 0.5)
    return np.diff(edges)


def read_level(slide: Slide, mpp: float) -> int:
    """The coarsest level at least as fine as `mpp` (5% slack), else the finest."""
    fine = [i for i, lv in enumerate(slide.levels) if lv.mpp <= mpp * MPP_SLACK]
    return max(fine, key=lambda i: slide.levels[i].mpp) if fine else 0


def plan_tiles(slide: Slide, spec: TileSpec = TileSpec(), rng_seed: int = 0) -> TilePlan:
    """The tissue tiles of `slide` for `spec` (see the module doc)."""
    lv0 = slide.levels[0]
    tile0 = spec.size * spec.mpp / lv0.mpp  # tile side in level-0 pixels
    rows, cols = math.ceil(lv0.height / tile0 - 1e-9), math.ceil(lv0.width / tile0 - 1e-9)
    downs = [lv0.width / lv.width for lv in slide.levels]
    usable = [i for i, d in enumerate(downs) if tile0 / d >= MASK_PX_PER_TILE]
    mlevel = max(usable, key=lambda i: downs[i]) if usable else 0
    # a level much finer than needed (a single-level image) is box-reduced, keeping >= 2 x 4 pixels per tile
    factor = max(1, int(tile0 / downs[mlevel] // (2 * MASK_PX_PER_TILE)))
    thumb = thumbnail(slide, mlevel, factor)
    thumb_ds = downs[mlevel] * factor  # level-0 pixels per thumbnail pixel
    step = tile0 / thumb_ds            # thumbnail pixels per tile side
    mask = tissue_mask(thumb)
    r = np.floor((np.arange(mask.shape[0]) + 0.5) / step).astype(np.int64)
    c = np.floor((np.arange(mask.shape[1]) + 0.5) / step).astype(np.int64)
    inside = (r[:, None] < rows) & (c[None, :] < cols)
    flat = (r[:, None] * cols + c[None, :])[inside]
    counts = np.bincount(flat, weights=mask[inside], minlength=rows * cols)
    # nominal pixels per cell, counting the part of an edge tile beyond the slide as background
    area = np.outer(_axis_counts(rows, step), _axis_counts(cols, step)).ravel()
    frac = (counts / np.maximum(area, 1)).clip(0, 1)
    keep = np.flatnonzero(frac >= spec.min_tissue)
    if spec.max_tiles is not None and len(keep) > spec.max_tiles:
        keep = np.sort(np.random.default_rng(rng_seed).choice(keep, spec.max_tiles, replace=False))
    cell = np.stack([keep // cols, keep % cols], axis=1).astype(np.int64)
    coords = np.round(cell[:, ::-1] * tile0).astype(np.int64)
    level = read_level(slide, spec.mpp)
    return TilePlan(coords=coords.reshape(-1, 2), tissue=frac[keep], grid=(rows, cols), cell=cell.reshape(-1, 2),
                    level=level, scale=spec.mpp / slide.levels[level].mpp, tile_base_px=tile0, thumbnail=thumb,
                    thumbnail_mpp=lv0.mpp * thumb_ds, mpp=spec.mpp, size=spec.size)


def _chunks(plan: TilePlan, src: float, band_rows: int) -> Iterator[np.ndarray]:
    """Indices of kept tiles grouped into bands of `band_rows` grid rows, split so each read <= BAND_BYTES."""
    band = plan.cell[:, 0] // band_rows
    max_cols = max(1, int(BAND_BYTES // (3 * (band_rows * src + 2) * (src + 2))))
    for b in np.unique(band):
        idx = np.flatnonzero(band == b)
        idx = idx[np.argsort(plan.cell[idx, 1], kind="stable")]
        cols = plan.cell[idx, 1]
        start = 0
        while start < len(idx):  # a chunk spans at most max_cols grid columns
            stop = start + int(np.searchsorted(cols[start:], cols[start] + max_cols))
            yield idx[start:stop]
            start = stop


def iter_tiles(slide: Slide, plan: TilePlan, batch: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of (indices into plan.coords, uint8 tiles (b, size, size, 3)), read band by band."""
    from PIL import Image

    lv, size = plan.level, plan.size
    down = slide.levels[0].width / slide.levels[lv].width
    src = plan.tile_base_px / down  # tile side in pixels of the read level
    exact = abs(src - size) < 1e-6 and abs(src - round(src)) < 1e-9
    resample = Image.Resampling.BOX if src >= size else Image.Resampling.LANCZOS
    band_rows = max(1, round(slide.native_tile(lv)[1] / src))
    out_idx, out = [], np.empty((batch, size, size, 3), np.uint8)
    for idx in _chunks(plan, src, band_rows):
        rr, cc = plan.cell[idx, 0], plan.cell[idx, 1]
        bx, by = math.floor(cc.min() * src), math.floor(rr.min() * src)
        bw, bh = math.ceil((cc.max() + 1) * src) + 1 - bx, math.ceil((rr.max() + 1) * src) + 1 - by
        region = slide.read(lv, bx, by, bw, bh)
        image = None if exact else Image.fromarray(region)
        for i, r, c in zip(idx, rr, cc):
            fx, fy = c * src - bx, r * src - by
            if exact:
                tile = region[round(fy):round(fy) + size, round(fx):round(fx) + size]
            else:
                tile = np.asarray(image.resize((size, size), resample, box=(fx, fy, fx + src, fy + src)))
            out[len(out_idx)] = tile
            out_idx.append(i)
            if len(out_idx) == batch:
                yield np.asarray(out_idx, np.int64), out
                out_idx, out = [], np.empty((batch, size, size, 3), np.uint8)
        del region, image, tile  # free this band (tile is a view of it) before the next is read
    if out_idx:
        yield np.asarray(out_idx, np.int64), out[:len(out_idx)]


def read_tiles(path: str | Path, spec: TileSpec = TileSpec(), mpp: float | None = None,
               rng_seed: int = 0) -> tuple[TilePlan, np.ndarray]:
    """Every kept tile of a (small) slide at once: (plan, uint8 (n, size, size, 3) in plan order)."""
    with open_slide(path, mpp=mpp) as slide:
        plan = plan_tiles(slide, spec, rng_seed)
        tiles = np.empty((len(plan), spec.size, spec.size, 3), np.uint8)
        for idx, batch in iter_tiles(slide, plan):
            tiles[idx] = batch
    return plan, tiles
