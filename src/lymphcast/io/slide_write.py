"""Writing a whole-slide image as a pyramidal tiled TIFF, the layout slide scanners and OpenSlide use.

Level 0 is the full resolution; each further level halves it, down to about one tile. Every level is its own
TIFF directory (the first full-resolution, the others marked reduced-resolution), tiled and compressed, with the
pixel size in the resolution tags (pixels per centimetre), so any reader finds the magnification without a side
file. Levels are made strip by strip from the one above, so a memory-mapped level 0 of 20,000 x 20,000 pixels is
written without ever being held whole. The file appears only when complete (written under a temporary name).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

DEFAULT_TILE = 256
DEFAULT_QUALITY = 90
COMPRESSIONS = ("jpeg", "zlib", "none")
STRIP_ROWS = 2048  # rows of the level above processed at a time when making the next level


def _halve(image: np.ndarray) -> np.ndarray:
    """The next pyramid level: 2 x 2 box average, rounded (an odd last row or column is averaged with itself)."""
    h, w = image.shape[:2]
    if h % 2:
        image = np.concatenate([image, image[-1:]], axis=0)
    if w % 2:
        image = np.concatenate([image, image[:, -1:]], axis=1)
    total = image[0::2, 0::2].astype(np.uint16) + image[1::2, 0::2] + image[0::2, 1::2] + image[1::2, 1::2]
    return ((total + 2) >> 2).astype(np.uint8)


def _next_level(level: np.ndarray) -> np.ndarray:
    h, w = level.shape[:2]
    out = np.empty(((h + 1) // 2, (w + 1) // 2, level.shape[2]), np.uint8)
    for top in range(0, h, STRIP_ROWS):  # STRIP_ROWS is even, so strips halve without overlap
        out[top // 2:(min(h, top + STRIP_ROWS) + 1) // 2] = _halve(np.asarray(level[top:top + STRIP_ROWS]))
    return out


def _tile_iter(level: np.ndarray, tile: int):
    """Tiles of `level` in TIFF order (row by row), padded at the right and bottom edges."""
    h, w, c = level.shape
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            block = np.asarray(level[y:y + tile, x:x + tile])
            if block.shape[:2] != (tile, tile):
                padded = np.full((tile, tile, c), 255, np.uint8)
                padded[:block.shape[0], :block.shape[1]] = block
                block = padded
            yield block


def write_pyramid(path: str | Path, image: np.ndarray, mpp: float, *, tile: int = DEFAULT_TILE,
                  compression: str = "jpeg", quality: int = DEFAULT_QUALITY, description: str = "") -> Path:
    """Write an RGB uint8 image (H, W, 3; a numpy memmap works) at `mpp` micrometres per pixel as a pyramidal
    tiled TIFF at `path`. Returns the path."""
    import tifffile

    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}, not '{compression}'")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    if not mpp > 0:
        raise ValueError(f"microns per pixel must be positive, got {mpp}")
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    codec = None if compression == "none" else compression
    codec_args = {"jpeg": {"level": quality}, "zlib": {"level": 6}}.get(compression)
    big = image.nbytes > 2 ** 31  # classic TIFF offsets stop at 4 GB; stay far from it
    level, scale = image, 1
    try:
        with tifffile.TiffWriter(tmp, bigtiff=big) as tif:
            while True:
                px_per_cm = 1e4 / (mpp * scale)
                tif.write(_tile_iter(level, tile), shape=level.shape, dtype=np.uint8, tile=(tile, tile),
                          photometric="rgb", compression=codec, compressionargs=codec_args,
                          resolution=(px_per_cm, px_per_cm),
                          resolutionunit="CENTIMETER", subfiletype=0 if scale == 1 else 1,
                          description=description if scale == 1 else None, metadata=None)
                if max(level.shape[:2]) <= tile:
                    break
                level, scale = _next_level(level), scale * 2
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
