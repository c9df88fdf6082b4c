"""Stain normalisation of cytology tiles (Macenko et al., ISBI 2009, as implemented by torchstain).

The model learns one reference from its training slides (two stain vectors in optical density and their 99th
percentile amounts); every image, at training and at prediction, is mapped onto that reference as a whole (all
of its tiles in one mosaic, so the stain estimate rests on the whole smear, not on one tile's few cells). A lab
whose stain differs (Diff-Quik against Papanicolaou) then reaches the network in the training labs' colours.
"""

from __future__ import annotations

import warnings

import numpy as np

MOSAIC_TILES = 2048  # tiles sampled from the training images to fit the reference


def _mosaic(tiles: np.ndarray) -> np.ndarray:
    """(n, s, s, 3) → (n * s, s, 3): one image holding every tile, as the normaliser expects."""
    n, s = tiles.shape[:2]
    return np.ascontiguousarray(tiles.reshape(n * s, s, 3))


def fit_reference(tiles: np.ndarray, seed: int = 0) -> dict:
    """Reference stain vectors (3, 2) and maximal amounts (2,) from a sample of training tiles ("fitted": False
    when they hold too little stain to estimate them, and torchstain's default reference is used)."""
    from torchstain.numpy.normalizers import NumpyMacenkoNormalizer

    rng = np.random.default_rng(seed)
    pick = rng.choice(len(tiles), size=min(MOSAIC_TILES, len(tiles)), replace=False)
    norm = NumpyMacenkoNormalizer()
    default = {"he": np.asarray(norm.HERef, float), "max_c": np.asarray(norm.maxCRef, float), "fitted": False}
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            norm.fit(_mosaic(tiles[np.sort(pick)]))
    except (np.linalg.LinAlgError, ValueError, IndexError):
        return default  # too little stain in the training tiles: torchstain's published reference instead
    fitted = {"he": np.asarray(norm.HERef, float), "max_c": np.asarray(norm.maxCRef, float), "fitted": True}
    ok = np.isfinite(fitted["he"]).all() and np.isfinite(fitted["max_c"]).all() and (fitted["max_c"] > 0).all()
    return fitted if ok else default


def normalise_tiles(tiles: np.ndarray, reference: dict) -> tuple[np.ndarray, bool]:
    """One image's tiles mapped onto the reference stains; (tiles, True), or (tiles unchanged, False) when the
    image holds too little stain to estimate its own vectors."""
    from torchstain.numpy.normalizers import NumpyMacenkoNormalizer

    if len(tiles) == 0:
        return tiles, False
    norm = NumpyMacenkoNormalizer()
    norm.HERef, norm.maxCRef = np.asarray(reference["he"]), np.asarray(reference["max_c"])
    n, s = tiles.shape[:2]
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            out, _, _ = norm.normalize(_mosaic(tiles), stains=False)
    except (np.linalg.LinAlgError, ValueError, IndexError):  # no stained pixel to estimate from
        return tiles, False
    if not np.isfinite(out).all():
        return tiles, False
    return out.reshape(n, s, s, 3), True
