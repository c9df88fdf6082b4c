"""Fully developed speckle, depth attenuation with time-gain compensation, and log compression.

The echo of a tissue region is the sum of many sub-resolution scatterers with random phases: we draw complex
Gaussian scatterers whose variance is the local backscatter (the reflectivity map), convolve them with the
scanner's point-spread function (a separable Gaussian: the axial width from the pulse length, the lateral
width from the beam; both follow the centre's `resolution_mm` and `speckle_size`), and detect the envelope
as the magnitude. In uniform tissue the envelope is then Rayleigh distributed: mean/std = 1.91.
Bright specular points (microcalcifications) are added as strong coherent scatterers before the convolution.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

RAYLEIGH_SNR = float(np.sqrt(np.pi / (4 - np.pi)))  # 1.913
TISSUE_ATTENUATION = 0.6  # dB / cm / MHz, soft tissue; echoes travel the depth twice


def psf_sigma_px(resolution_mm: float, speckle_size: float, spacing_mm: float) -> tuple[float, float]:
    """(axial, lateral) Gaussian PSF widths in pixels; lateral resolution is about twice the axial one.

    Clipped to 1.2-2.4 px laterally: a zoomed-in crop is scanned with a finer focus, so speckle grains keep
    a plausible size on screen while the centre's speckle_size/resolution still shift them.
    """
    lateral = float(np.clip(resolution_mm * speckle_size / spacing_mm, 1.2, 2.4))
    axial = float(np.clip(0.45 * lateral, 0.7, 1.1))
    return axial, lateral


def _gain(sigma: float) -> float:
    """Root of the summed squared weights of scipy's Gaussian kernel (keeps the mean echo power)."""
    delta = np.zeros(129, np.float64)
    delta[64] = 1.0
    return float(np.sqrt(np.sum(ndimage.gaussian_filter1d(delta, sigma, mode="constant") ** 2)))


def speckle_envelope(reflectivity: np.ndarray, sigma_px: tuple[float, float], rng: np.random.Generator,
                     points: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Envelope of the beamformed echo of `reflectivity` (mean echo power per pixel), float32.

    `points`: (rows, cols, amplitudes) of coherent point reflectors added to the scatterers.
    E[envelope^2] equals the reflectivity in uniform regions.
    """
    shape = reflectivity.shape
    amp = np.sqrt(np.maximum(reflectivity, 0.0)).astype(np.float32) * np.float32(np.sqrt(0.5))
    re = rng.standard_normal(shape, dtype=np.float32) * amp
    im = rng.standard_normal(shape, dtype=np.float32) * amp
    if points is not None and len(points[0]):
        rows, cols, a = points
        phase = rng.uniform(0, 2 * np.pi, len(rows))
        np.add.at(re, (rows, cols), (a * np.cos(phase)).astype(np.float32))
        np.add.at(im, (rows, cols), (a * np.sin(phase)).astype(np.float32))
    sa, sl = sigma_px
    norm = np.float32(1.0 / (_gain(sa) * _gain(sl)))
    re = ndimage.gaussian_filter(re, (sa, sl), mode="reflect") * norm
    im = ndimage.gaussian_filter(im, (sa, sl), mode="reflect") * norm
    return np.hypot(re, im)


def attenuate(envelope: np.ndarray, attenuation: np.ndarray, spacing_mm: float, frequency_mhz: float,
              tgc: float) -> np.ndarray:
    """Apply the two-way attenuation integrated down each column (rows are depth) and the scanner's TGC.

    `attenuation`: local coefficient in dB/cm/MHz (fluid ~0.002, tissue ~0.6, calcium much more), so regions
    below a cyst come out brighter (posterior enhancement) and below a calcification darker (shadow).
    `tgc`: the share of the nominal tissue attenuation the time-gain compensation restores.
    """
    step_cm = spacing_mm / 10.0
    lost_db = 2.0 * frequency_mhz * step_cm * np.cumsum(attenuation, axis=0, dtype=np.float32)
    depth_cm = (np.arange(envelope.shape[0], dtype=np.float32)[:, None] + 1.0) * step_cm
    restored_db = 2.0 * frequency_mhz * TISSUE_ATTENUATION * tgc * depth_cm
    return envelope * np.power(np.float32(10.0), (restored_db - lost_db) / np.float32(20.0))


def log_compress(envelope: np.ndarray, gain_db: float, dynamic_range_db: float) -> np.ndarray:
    """8-bit display: 20 log10 of the envelope, shifted by half the gain's departure from 50 dB, with the
    `dynamic_range_db` window placed so soft tissue (envelope ~0.55) lands mid-grey and fluid near black."""
    db = 20.0 * np.log10(envelope + np.float32(1e-5)) + np.float32(0.5 * (gain_db - 50.0))
    out = (db + np.float32(0.55 * dynamic_range_db)) * np.float32(255.0 / dynamic_range_db)
    return np.clip(out, 0, 255).astype(np.uint8)
