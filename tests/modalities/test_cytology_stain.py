"""Macenko normalisation onto a reference: the same cells stained by another lab come back in the reference's
colours; an image without stain is left alone and says so."""

from __future__ import annotations

import numpy as np

from lymphcast.modalities.cytology_stain import fit_reference, normalise_tiles


def _stained(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """Tiles (40, 16, 16, 3) of nuclei (stain 1) and cytoplasm (stain 2) on white, by Beer-Lambert."""
    rng = np.random.default_rng(seed)
    amounts = np.zeros((40, 16, 16, 2))
    for t in range(40):
        r, c = rng.integers(2, 10, 2)
        amounts[t, r:r + 6, c:c + 6, 1] = rng.uniform(0.3, 0.6)
        amounts[t, r + 2:r + 4, c + 2:c + 4, 0] = rng.uniform(0.8, 1.2)
    od = amounts @ vectors.T
    return np.clip(255 * np.exp(-od), 0, 255).astype(np.uint8)


PAP = np.array([[0.65, 0.07], [0.70, 0.99], [0.29, 0.11]])   # columns: nuclear, cytoplasmic stain
OTHER = np.array([[0.45, 0.20], [0.80, 0.80], [0.40, 0.56]])


def _mean_tissue_colour(tiles, darkest: int = 700):
    pixels = tiles.reshape(-1, 3).astype(float)
    return pixels[pixels.sum(1) < darkest].mean(0)


def test_another_labs_stain_is_brought_to_the_reference():
    reference = fit_reference(_stained(PAP), seed=0)
    assert reference["fitted"] and reference["he"].shape == (3, 2)
    other = _stained(OTHER / np.linalg.norm(OTHER, axis=0), seed=1)
    normalised, ok = normalise_tiles(other, reference)
    target = _mean_tissue_colour(_stained(PAP, seed=1))
    before = np.abs(_mean_tissue_colour(other) - target).sum()
    after = np.abs(_mean_tissue_colour(normalised) - target).sum()
    assert ok and normalised.shape == other.shape and normalised.dtype == np.uint8
    assert after < 0.7 * before  # Macenko's percentile estimates of the stains are approximate: closer, not equal
    nuclei = [np.abs(_mean_tissue_colour(x, 400) - _mean_tissue_colour(_stained(PAP, seed=1), 400)).sum()
              for x in (other, normalised)]
    assert nuclei[1] < 0.3 * nuclei[0]


def test_blank_image_is_left_alone():
    blank = np.full((5, 16, 16, 3), 250, np.uint8)
    out, ok = normalise_tiles(blank, fit_reference(_stained(PAP)))
    assert not ok and np.array_equal(out, blank)
    assert not fit_reference(blank)["fitted"]
