"""Stain colour of a cytology slide: stain vectors per stain system, Beer-Lambert, centre and slide variation.

Every object in a scene carries densities of a few stain channels (nuclear stain, cyanophilic and eosinophilic
cytoplasm, red cells, colloid/background). A stain system maps each channel to an optical density (OD) per
unit density in R, G, B; the slide's transmitted light is 255 * exp(-sum_k density_k * vector_k). A centre's
`hue_shift` rotates the vectors about the grey axis (a lab's batch of dye), `intensity` scales them (staining
time); each slide adds a little of both, and its own illumination, focus and camera noise. None of this reads
the patient's features, so colour is a nuisance a model has to ignore.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

NUC, CYAN, EOS, RBC, COLLOID = range(5)
CHANNELS = 5
STAINS = ("Pap", "Diff-Quik")


def _od(rgb) -> np.ndarray:
    """OD vector of a colour (0-1) seen through unit density."""
    return -np.log(np.asarray(rgb, float))


# Colour of each channel at unit density, then a faint uniform background OD (glass, mounting medium, protein).
SYSTEMS = {
    "Pap": {"vectors": np.stack([_od(c) for c in (
        (0.38, 0.30, 0.62),     # haematoxylin: blue-purple nuclei
        (0.50, 0.72, 0.74),     # light green: cyanophilic (blue-green) cytoplasm
        (0.95, 0.55, 0.45),     # eosin / orange G: eosinophilic, pink-orange cytoplasm
        (0.96, 0.42, 0.22),     # red cells: orange-red
        (0.80, 0.88, 0.78))]),  # colloid: thin, pale green-blue
        "background": _od((0.975, 0.975, 0.97))},
    "Diff-Quik": {"vectors": np.stack([_od(c) for c in (
        (0.36, 0.22, 0.55),     # nuclei: dark purple-blue
        (0.62, 0.62, 0.80),     # cytoplasm: grey-blue
        (0.66, 0.52, 0.76),     # dense cytoplasm: purple
        (0.86, 0.62, 0.66),     # red cells: pinkish grey
        (0.68, 0.38, 0.72))]),  # colloid: magenta-violet
        "background": _od((0.95, 0.93, 0.95))},
}
HUE_RADIANS = np.pi            # hue_shift 0.08 turns the vectors by ~14 degrees
SLIDE_HUE_SD = 0.015           # per slide, in hue_shift units
SLIDE_INTENSITY = (0.9, 1.1)   # per slide, times the centre's intensity
CHANNEL_JITTER = (0.9, 1.1)    # per slide and channel: uneven uptake of each dye


@dataclass(frozen=True)
class SlideStain:
    """What one slide's colour and optics are: OD per unit density (CHANNELS, 3), background OD, focus."""

    stain: str
    vectors: np.ndarray
    background: np.ndarray
    focus_um: float            # blur of the slide scan (edge width of every object)
    noise: float               # camera noise, 8-bit levels (sd)
    tilt: np.ndarray           # OD added per unit of x and y across a region (uneven illumination)


def rotate_hue(vectors: np.ndarray, angle: float) -> np.ndarray:
    """Rotate OD vectors about the grey axis (1, 1, 1): changes hue, keeps density (Rodrigues' formula)."""
    k = np.ones(3) / np.sqrt(3.0)
    v = np.atleast_2d(vectors)
    out = (v * np.cos(angle) + np.cross(k, v) * np.sin(angle) + np.outer(v @ k, k) * (1 - np.cos(angle)))
    return np.maximum(out, 0.0).reshape(np.shape(vectors))  # a negative OD would be light created by a dye


def slide_stain(stain: str, acquisition: dict, rng: np.random.Generator) -> SlideStain:
    """The stain of one slide from its centre's cytology acquisition settings plus the slide's own variation."""
    system = SYSTEMS[stain]
    hue = float(acquisition.get("hue_shift", 0.0)) + SLIDE_HUE_SD * rng.standard_normal()
    scale = float(acquisition.get("intensity", 1.0)) * rng.uniform(*SLIDE_INTENSITY)
    jitter = rng.uniform(*CHANNEL_JITTER, CHANNELS)[:, None]
    vectors = rotate_hue(system["vectors"], hue * HUE_RADIANS) * scale * jitter
    return SlideStain(stain, vectors.astype(np.float32), (system["background"] * scale).astype(np.float32),
                      focus_um=float(rng.uniform(0.3, 0.9)), noise=float(rng.uniform(0.6, 1.4)),
                      tilt=rng.uniform(-0.03, 0.03, 2))


def transmit(od: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Beer-Lambert: RGB uint8 from an OD image (H, W, 3) float32, overwritten; mild camera noise added.
    A negative OD (a pseudo-inclusion over thin background) saturates at white."""
    np.subtract(np.float32(np.log(255.0)), od, out=od)  # 255 * exp(-od) = exp(ln 255 - od)
    np.exp(od, out=od)
    if noise > 0:  # Gaussian noise by table look-up of random bytes: much cheaper than Gaussian draws
        table = (noise * ndtri((np.arange(256) + 0.5) / 256)).astype(np.float32)
        od += table[np.frombuffer(rng.bytes(od.size), np.uint8).reshape(od.shape)]
    od += np.float32(0.5)  # round, not truncate
    np.clip(od, 0, 255, out=od)
    return od.astype(np.uint8)
