"""Neck tissue around a lymph node: reflectivity and attenuation maps of skin, fat, muscle and vessels.

Maps are float32 arrays of the image size, rows = depth from the skin (top) down. Reflectivity is the mean
echo power of the scatterers (bright tissue ~1), attenuation is in dB/cm/MHz. The layout is drawn so the
node fits below the sternocleidomastoid band: skin line, subcutaneous fat with echogenic septa, the
hypoechoic striated muscle between bright fascia lines, then deep cervical fat/connective tissue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .us_speckle import TISSUE_ATTENUATION

SIZE = 128
BLOOD = 0.0008         # reflectivity of flowing blood (anechoic on B-mode)
BLOOD_ATTENUATION = 0.15


@dataclass(frozen=True)
class Grid:
    """Pixel centres in mm: y = depth below the skin, x = lateral position."""

    spacing: float
    y: np.ndarray  # (SIZE, 1)
    x: np.ndarray  # (1, SIZE)


def grid(spacing_mm: float, size: int = SIZE) -> Grid:
    c = (np.arange(size, dtype=np.float32) + 0.5) * np.float32(spacing_mm)
    return Grid(spacing_mm, c[:, None], c[None, :])


def smooth_field(shape: tuple[int, int], sigma_px: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-sd smooth Gaussian random field (tissue texture, heterogeneity)."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma_px, mode="wrap")
    return f / np.float32(f.std() + 1e-6)


def _line(g: Grid, depth: np.ndarray, width_mm: float) -> np.ndarray:
    """Soft horizontal-ish line profile at depth(x)."""
    return np.exp(-0.5 * ((g.y - depth) / np.float32(width_mm)) ** 2)


def _wavy(g: Grid, mean_mm: float, rng: np.random.Generator, amp_mm: float = 0.6) -> np.ndarray:
    wavelength = rng.uniform(15, 40)
    slope = rng.uniform(-0.06, 0.06)
    return (mean_mm + amp_mm * np.sin(2 * np.pi * g.x / wavelength + rng.uniform(0, 2 * np.pi))
            + slope * (g.x - g.x.mean())).astype(np.float32)


def background(g: Grid, node_top_mm: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(reflectivity, attenuation) of the neck layers; the muscle band ends above `node_top_mm`."""
    shape = (g.y.shape[0], g.x.shape[1])
    skin = rng.uniform(0.8, 1.4)
    muscle_end = max(node_top_mm - rng.uniform(0.8, 2.5), skin + 2.0)
    fat_end = skin + rng.uniform(0.25, 0.45) * (muscle_end - skin)
    fat_b, muscle_b = _wavy(g, fat_end, rng), _wavy(g, muscle_end, rng, amp_mm=0.4)
    fat = (g.y >= skin) & (g.y < fat_b)
    muscle = (g.y >= fat_b) & (g.y < muscle_b)
    deep = g.y >= muscle_b

    texture = np.exp(0.35 * smooth_field(shape, 2.5, rng))
    refl = np.where(fat, 0.30, 0.0) + np.where(muscle, 0.09, 0.0) + np.where(deep, 0.38, 0.0)
    refl = refl * texture + np.where(g.y < skin, 1.6, 0.0)
    # fat septa: a few thin oblique echogenic lines
    for _ in range(int(rng.integers(2, 6))):
        depth = _wavy(g, rng.uniform(skin, max(fat_end, skin + 0.5)), rng, amp_mm=0.5)
        refl += (0.9 * _line(g, depth, 0.12) * fat).astype(np.float32)
    # muscle fibrils (perimysium): fine parallel striations following the band
    period = rng.uniform(0.7, 1.2)
    phase = (g.y - fat_b) / period + rng.uniform(0, 1)
    refl += (0.22 * (0.5 + 0.5 * np.cos(2 * np.pi * phase)) ** 8 * muscle).astype(np.float32)
    # fasciae bounding the muscle
    refl += 1.1 * (_line(g, fat_b, 0.15) + _line(g, muscle_b, 0.15))
    atten = np.full(shape, TISSUE_ATTENUATION, np.float32)
    atten[np.broadcast_to(fat, shape)] = 0.5
    return refl.astype(np.float32), atten


def vessel(g: Grid, centre_mm: tuple[float, float], radius_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """(lumen mask, wall profile) of a round vessel seen in cross-section (jugular vein or carotid)."""
    r = np.sqrt((g.y - centre_mm[0]) ** 2 + (g.x - centre_mm[1]) ** 2)
    lumen = r < radius_mm
    wall = np.exp(-0.5 * ((r - radius_mm - 0.2) / 0.25) ** 2).astype(np.float32)
    return lumen, wall


def add_vessel(refl: np.ndarray, atten: np.ndarray, lumen: np.ndarray, wall: np.ndarray) -> None:
    refl += 1.2 * wall
    refl[lumen] = BLOOD
    atten[lumen] = BLOOD_ATTENUATION
