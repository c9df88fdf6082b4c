"""One cine clip: a transverse probe sweep along a lymph node's long axis, SIZE x SIZE pixels per frame.

Sweep (drawn once, then applied frame by frame): the plane moves from beyond one pole of the node to beyond the
other (1.15-1.35 long semi-axes each way, centred within 8% of the node's middle, either direction) at a hand's
steady speed of 4-5.5 mm/s (so the node's length shows as the time it stays in view; sweep_plan) with an
uneven pace (+-25% sinusoidal) and a little elevation jitter; the node's long axis is slightly oblique to the
sweep, so its section drifts a little across the image. Probe shake: a smooth lateral jitter (AR(1), sd 0.1-0.3
mm, never beyond 0.8 mm) applied as a whole-pixel shift of the scene, speckle included.
Scene: the neck layers, vessel and cortex texture live on one canvas a few pixels wider than the frame, drawn once
per clip (us_tissue); each frame is a window of it plus the node's section at that plane (us_cine_node), computed
on a crop around the node only. Speckle: the complex scatterer field of us_speckle evolves as an AR(1) process,
frame-to-frame correlation rho = base x exp(-dz^2 / (4 elev_sd^2)) for a plane step dz and elevation beam sd
elev_sd (2.5 x the centre's resolution_mm), base 0.85-0.95 for tissue motion and noise: a moving, partially
correlated pattern (its innovations are windows of one noise pool per clip at random offsets). The neck's
attenuation/TGC factor is computed once; a frame only multiplies in the node's extra attenuation from its crop
down. The PSF, attenuation/TGC and log compression are those of the still views (us_speckle), and
the pixel spacing is the still renderer's (us_renderer.node_spacing), so a clip and the stills of a node agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .us_cine_node import Solid, draw_solid, foci_at, node_shape, scale_at, section
from .us_renderer import node_spacing
from .us_speckle import _gain, attenuate, log_compress, psf_sigma_px
from .us_tissue import SIZE, Grid, add_vessel, background, smooth_field, vessel

TGC = 0.9
MAX_SHAKE_MM = 0.8
ELEVATION_PER_RESOLUTION = 2.5
HAND_SPEED_MM_S = (4.0, 5.5)  # a steady transverse sweep; sets how long a node stays in view
POOL_MARGIN = 24  # extra rows/columns of the speckle innovation pool


@dataclass(frozen=True)
class Clip:
    frames: np.ndarray       # uint8 (T, SIZE, SIZE)
    fps: int
    spacing_mm: float
    plane_mm: np.ndarray     # (T,) elevation of the scan plane from the node's centre
    section_mm2: np.ndarray  # (T,) area of the node's section
    hilum: np.ndarray        # (T,) bool: the fatty hilum is cut (>= 4 pixels)
    foci: np.ndarray         # (T,) number of microcalcifications within the elevation beam's half width
    cystic: np.ndarray       # (T,) bool: a fluid area is cut (>= 4 pixels)
    key_frame: int           # frame with the largest section
    box: tuple[int, int, int, int]  # node box in the key frame: x0, y0, x1, y1 (exclusive)


def frame_count(duration_s: float, fps: int) -> int:
    """Frames for a duration, kept within 2-5 s at that rate."""
    return int(np.clip(round(duration_s * fps), int(np.ceil(2 * fps)), int(5 * fps)))


def _ar1(n: int, sd: float, phi: float, rng: np.random.Generator) -> np.ndarray:
    e = rng.standard_normal(n) * sd * np.sqrt(1 - phi**2)
    x = np.empty(n)
    x[0] = rng.standard_normal() * sd
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


@dataclass(frozen=True)
class Sweep:
    z: np.ndarray        # (T,) plane elevation, mm
    shift: np.ndarray    # (T,) lateral shake, whole pixels
    drift: tuple         # (dy/dz, dx/dz) obliquity of the long axis


def sweep_plan(solid: Solid, fps: int, rng: np.random.Generator) -> tuple[int, float]:
    """Frame count and half length (mm) of a sweep: the plane passes 1.15-1.35 long semi-axes beyond the node's
    centre each way at a hand's steady speed (HAND_SPEED_MM_S), so a longer node takes longer; a clip is kept
    within 2-5 s: held to 2 s, the sweep goes on further beyond the poles at the same speed (a short node then
    fills fewer of the frames); cut to 5 s, the hand moves faster."""
    half = solid.c * rng.uniform(1.15, 1.35)
    speed = rng.uniform(*HAND_SPEED_MM_S)
    n = frame_count(2 * half / speed, fps)
    return n, max(half, 0.5 * speed * (n - 1) / fps)


def draw_sweep(solid: Solid, n: int, fps: int, spacing: float, rng: np.random.Generator,
               half: float | None = None) -> Sweep:
    half = solid.c * rng.uniform(1.15, 1.35) if half is None else half
    t = np.arange(n) / fps
    speed = 1.0 + 0.25 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t + rng.uniform(0, 2 * np.pi))
    progress = np.concatenate([[0.0], np.cumsum(speed[1:])])
    progress /= progress[-1]
    direction = float(rng.choice([-1.0, 1.0]))
    z = solid.c * rng.uniform(-0.08, 0.08) + direction * half * (2 * progress - 1) + _ar1(n, 0.08, 0.7, rng)
    shake = np.clip(_ar1(n, rng.uniform(0.1, 0.3), 0.85, rng), -MAX_SHAKE_MM, MAX_SHAKE_MM)
    shift = np.trunc(shake / spacing).astype(int)  # whole pixels, never beyond MAX_SHAKE_MM
    return Sweep(z, shift, (rng.uniform(-0.03, 0.08), rng.uniform(-0.08, 0.08)))


def _canvas_grid(spacing: float, pad: int) -> Grid:
    y = (np.arange(SIZE, dtype=np.float32) + 0.5) * np.float32(spacing)
    x = (np.arange(SIZE + 2 * pad, dtype=np.float32) - pad + 0.5) * np.float32(spacing)
    return Grid(spacing, y[:, None], x[None, :])


def _crop_box(solid: Solid, k: float, centre, spacing: float) -> tuple[int, int, int, int]:
    s = solid.shape
    grow = (1.0 + abs(s.wobble[0]) + abs(s.wobble[2])) * k
    c, sn = np.cos(s.angle), np.sin(s.angle)
    hx, hy = grow * float(np.hypot(s.a * c, s.b * sn)), grow * float(np.hypot(s.a * sn, s.b * c))
    r0, r1 = max(int((centre[0] - hy) / spacing) - 2, 0), min(int(np.ceil((centre[0] + hy) / spacing)) + 2, SIZE)
    c0, c1 = max(int((centre[1] - hx) / spacing) - 2, 0), min(int(np.ceil((centre[1] + hx) / spacing)) + 2, SIZE)
    return r0, r1, c0, c1


@dataclass(frozen=True)
class Scene:
    """What stays put during a sweep, on a canvas `pad` pixels wider than the frame on each side."""

    grid: Grid
    pad: int
    refl: np.ndarray       # neck reflectivity (node excluded)
    atten: np.ndarray      # its attenuation, dB/cm/MHz
    gain: np.ndarray       # its two-way attenuation with TGC, as a linear factor on the envelope
    texture: np.ndarray    # (2, ...) smooth unit fields for the cortex texture
    patches: np.ndarray    # (2, ...) smooth unit fields for hypoechoic patches (heterogeneous nodes)


def draw_scene(solid: Solid, spacing: float, freq: float, rng: np.random.Generator) -> Scene:
    shape = solid.shape
    pad = int(MAX_SHAKE_MM / spacing) + 1
    g = _canvas_grid(spacing, pad)
    refl, atten = background(g, shape.cy - shape.b, rng)
    if rng.random() < 0.55:  # jugular vein / carotid beside the node, along the whole sweep
        radius, side = rng.uniform(2.5, 4.5), int(rng.choice([-1, 1]))
        lumen, wall = vessel(g, (shape.cy + rng.uniform(-0.8, 0.8) * shape.b,
                                 shape.cx + side * (shape.a + radius + 1.5)), radius)
        add_vessel(refl, atten, lumen, wall)
    wide = refl.shape
    tex_sd = max(0.5 / spacing, 1.5) if solid.heterogeneous else 2.0
    texture = np.stack([smooth_field(wide, tex_sd, rng) for _ in range(2)])
    patches = np.stack([smooth_field(wide, max(0.8 / spacing, 2.0), rng) for _ in range(2)]) \
        if solid.heterogeneous else np.zeros((2,) + wide, np.float32)
    gain = attenuate(np.ones(wide, np.float32), atten, spacing, freq, TGC)
    return Scene(g, pad, refl, atten, gain, texture, patches)


class Speckle:
    """Complex scatterers on the canvas as an AR(1) process over frames. Innovations are windows at random offsets
    of one pool of white noise drawn per clip (cheaper than fresh noise for every frame)."""

    def __init__(self, shape: tuple[int, int], rng: np.random.Generator):
        self.rng = rng
        self.field = rng.standard_normal((2,) + shape, dtype=np.float32)
        self.pool = rng.standard_normal((2, shape[0] + POOL_MARGIN, shape[1] + POOL_MARGIN), dtype=np.float32)

    def step(self, rho: float) -> None:
        oy, ox = (int(v) for v in self.rng.integers(0, POOL_MARGIN + 1, 2))
        h, w = self.field.shape[1:]
        self.field *= np.float32(rho)
        self.field += np.float32(np.sqrt(1 - rho**2)) * self.pool[:, oy:oy + h, ox:ox + w]


def render_clip(feats: dict, us: dict, fps: int, rng: np.random.Generator) -> Clip:
    """A sweep through the node whose NODE_FEATURES values are `feats`; `us` is the centre's US profile."""
    s = node_spacing(float(feats["short_axis_mm"]), float(feats["long_short_ratio"]), float(us["depth_cm"]))
    extent, freq = SIZE * s, float(us["frequency_mhz"])
    shape, ratio = node_shape(feats, extent, rng)
    solid = draw_solid(feats, shape, ratio, rng)
    n, half = sweep_plan(solid, fps, rng)
    sweep = draw_sweep(solid, n, fps, s, rng, half)
    scene = draw_scene(solid, s, freq, rng)
    sa, sl = psf_sigma_px(float(us["resolution_mm"]), float(us["speckle_size"]), s)
    norm = np.float32(1.0 / (_gain(sa) * _gain(sl)))  # filtering then keeps the mean echo power
    elev_sd = ELEVATION_PER_RESOLUTION * float(us["resolution_mm"])
    base = rng.uniform(0.85, 0.95)
    speckle = Speckle(scene.refl.shape, rng)
    per_unit = 2.0 * freq * s / 10.0  # dB lost per unit of attenuation in one pixel
    frames = np.empty((n, SIZE, SIZE), np.uint8)
    area, hilum, cystic, foci = np.zeros(n), np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, int)
    boxes = np.zeros((n, 4), int)
    for t in range(n):
        z = float(sweep.z[t])
        if t:
            speckle.step(base * np.exp(-((z - sweep.z[t - 1]) ** 2) / (4 * elev_sd**2)))
        w0 = scene.pad + int(sweep.shift[t])
        win = slice(w0, w0 + SIZE)
        refl, gain = scene.refl[:, win].copy(), scene.gain[:, win].copy()
        k = scale_at(solid, z)
        cy = float(np.clip(shape.cy + sweep.drift[0] * z, shape.b * k + 2 * s, extent - shape.b * k - 2 * s))
        cx = float(np.clip(shape.cx + sweep.drift[1] * z, shape.a * k + 2 * s, extent - shape.a * k - 2 * s))
        cx -= sweep.shift[t] * s
        r0, r1, c0, c1 = _crop_box(solid, max(k, 0.3), (cy, cx), s)
        if len(solid.foci):  # foci echo from off the plane too, even beyond the node's poles
            fy, fx, are, aim, shadow, w = foci_at(solid, z, (cy, cx), elev_sd)
            pr = np.clip(np.round(fy / s - 0.5).astype(int), 0, SIZE - 1)
            pc = np.clip(np.round(fx / s - 0.5).astype(int), 0, SIZE - 1)
            if len(pr):
                r0, c0, c1 = min(r0, int(pr.min())), min(c0, int(pc.min()) - 1), max(c1, int(pc.max()) + 2)
                r0, r1, c0, c1 = r0, max(r1, r0 + 1), max(c0, 0), min(c1, SIZE)
        extra = np.zeros((SIZE - r0, c1 - c0), np.float32)  # attenuation beyond the neck's, from the crop down
        if k > 0:
            cg = Grid(s, scene.grid.y[r0:r1], ((np.arange(c0, c1, dtype=np.float32) + 0.5) * np.float32(s))[None, :])
            crop, ccrop = (slice(r0, r1), slice(c0, c1)), (slice(r0, r1), slice(w0 + c0, w0 + c1))
            sec = section(solid, z, cg, (cy, cx), scene.texture[(slice(None),) + ccrop],
                          scene.patches[(slice(None),) + ccrop])
            refl[crop] = np.where(sec.inside, sec.refl, refl[crop])
            extra[: r1 - r0] = np.where(sec.inside, sec.atten - scene.atten[ccrop], 0.0)
            if sec.inside.any():
                rows, cols = np.flatnonzero(sec.inside.any(axis=1)), np.flatnonzero(sec.inside.any(axis=0))
                boxes[t] = c0 + cols[0], r0 + rows[0], c0 + cols[-1] + 1, r0 + rows[-1] + 1
            area[t], hilum[t], cystic[t] = sec.inside.sum() * s * s, sec.hilum_px >= 4, sec.cyst_px >= 4
        amp = np.sqrt(np.maximum(refl, 0.0)) * np.float32(np.sqrt(0.5)) * norm
        re, im = speckle.field[0][:, win] * amp, speckle.field[1][:, win] * amp
        if len(solid.foci):
            np.add.at(re, (pr, pc), (are * norm).astype(np.float32))
            np.add.at(im, (pr, pc), (aim * norm).astype(np.float32))
            for dc, wt in ((-1, 0.5), (0, 1.0), (1, 0.5)):  # a shadow as wide as the focus's echo
                np.add.at(extra, (pr - r0, np.clip(pc + dc - c0, 0, c1 - c0 - 1)),
                          (wt * shadow / per_unit).astype(np.float32))
            foci[t] = int((w >= 0.5).sum())
        gain[r0:, c0:c1] *= np.power(np.float32(10.0), np.cumsum(extra, axis=0) * np.float32(-per_unit / 20.0))
        re = ndimage.gaussian_filter(re, (sa, sl), mode="reflect")
        im = ndimage.gaussian_filter(im, (sa, sl), mode="reflect")
        frames[t] = log_compress(np.hypot(re, im) * gain, float(us["gain_db"]), float(us["dynamic_range_db"]))
    key = int(np.argmax(area))
    return Clip(frames, int(fps), s, sweep.z, area, hilum, foci, cystic, key, tuple(int(v) for v in boxes[key]))
