"""Full-field B-mode frames: one per patient side with nodes, holding all of that side's nodes and their boxes.

A frame is FRAME x FRAME pixels at one fixed spacing per centre: the centre's depth setting covers the frame
height (spacing = depth_cm * 10 / FRAME mm, square pixels). It is a longitudinal sweep of the lateral neck: skin,
subcutaneous fat, the sternocleidomastoid band (us_tissue.background), then the deep compartment where the nodes
lie, shown along their long axis (us_node longitudinal view: width = long axis, height = short axis) with the
same sign functions, and sometimes the internal jugular vein in long section (an anechoic horizontal tube) in the
lower part of the deep compartment. Nodes are placed at random, largest first, in the deep compartment with a gap
of at least GAP_MM between their bounding rectangles, so boxes never overlap. Nodes are drawn at their true size
in mm; when a side's nodes do not fit (a node wider than the frame, or too many for the space), all the nodes of
that frame are shrunk by the same factor until they do, and the factor is recorded per node (`us_frame_scale`, 1
= true size; the vein is dropped first). The speckle, attenuation/TGC and log-compression pipeline is that of the
node views (us_speckle). Each node's reflectivity is computed on a crop around it only, which keeps a frame near
15-25 ms. The label map (_mask.png) holds k (1, 2, ...) for the k-th node of the side in node order, 0 elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .us_node import NodeShape, node_maps, semi_axes
from .us_speckle import attenuate, log_compress, psf_sigma_px, speckle_envelope
from .us_tissue import Grid, add_vessel, background, grid

FRAME = 256
GAP_MM = 0.8
VIEW = 1  # longitudinal
CANDIDATES = 256
TGC = 0.9


@dataclass(frozen=True)
class Frame:
    bmode: np.ndarray      # uint8 (FRAME, FRAME)
    labels: np.ndarray     # uint8 (FRAME, FRAME): k for the k-th node (1-based), 0 elsewhere
    boxes: np.ndarray      # (n, 4) int: x0, y0, x1, y1 (x1/y1 exclusive)
    spacing_mm: float
    scale: float


def frame_spacing(depth_cm: float) -> float:
    return depth_cm * 10.0 / FRAME


def _half_extent(a: float, b: float, angle: float, wobble: tuple) -> tuple[float, float]:
    """Half width/height (mm) of a rectangle containing the rotated, lobulated ellipse."""
    grow = 1.0 + abs(wobble[0]) + abs(wobble[2])
    c, s = np.cos(angle), np.sin(angle)
    return grow * float(np.hypot(a * c, b * s)), grow * float(np.hypot(a * s, b * c))


def _place(half: np.ndarray, zone: tuple[float, float, float, float], blocked: list, rng: np.random.Generator):
    """Centres (n, 2: y, x) for rectangles of half sizes `half` (n, 2: hy, hx) inside zone (y0, y1, x0, x1),
    not within GAP_MM of each other or of `blocked` rectangles (y0, y1, x0, x1); None when one does not fit."""
    y0, y1, x0, x1 = zone
    rects = [np.asarray(r, float) for r in blocked]
    centres = np.zeros((len(half), 2))
    for i in np.argsort(-(half[:, 0] * half[:, 1]), kind="stable"):
        hy, hx = half[i]
        if 2 * hy > y1 - y0 or 2 * hx > x1 - x0:
            return None
        cy = rng.uniform(y0 + hy, y1 - hy, CANDIDATES)
        cx = rng.uniform(x0 + hx, x1 - hx, CANDIDATES)
        ok = np.ones(CANDIDATES, bool)
        for r in rects:
            ok &= ~((cy + hy + GAP_MM > r[0]) & (cy - hy - GAP_MM < r[1])
                    & (cx + hx + GAP_MM > r[2]) & (cx - hx - GAP_MM < r[3]))
        if not ok.any():
            return None
        j = int(np.argmax(ok))
        centres[i] = cy[j], cx[j]
        rects.append(np.array([cy[j] - hy, cy[j] + hy, cx[j] - hx, cx[j] + hx]))
    return centres


def _crop_grid(spacing: float, rows: int, cols: int) -> Grid:
    c = (np.arange(max(rows, cols), dtype=np.float32) + 0.5) * np.float32(spacing)
    return Grid(spacing, c[:rows, None], c[None, :cols])


def render_frame(feats: list[dict], us: dict, rng: np.random.Generator) -> Frame:
    """One frame holding the nodes whose NODE_FEATURES values are `feats`; `us` is the centre's US profile."""
    s = frame_spacing(float(us["depth_cm"]))
    extent = FRAME * s
    n = len(feats)
    node_top = extent * rng.uniform(0.24, 0.32)
    zone = (node_top + 1.0, extent - 0.6, 0.6, extent - 0.6)
    shapes = []
    for f in feats:
        a, b = semi_axes(float(f["short_axis_mm"]), float(f["long_short_ratio"]), VIEW)
        wobble = (rng.uniform(0, 0.05), rng.uniform(0, 6.3), rng.uniform(0, 0.04), rng.uniform(0, 6.3))
        shapes.append((a, b, rng.uniform(-0.12, 0.12), wobble, rng.uniform(-0.3, 0.3), int(rng.choice([-1, 1]))))
    base_half = np.array([_half_extent(a, b, ang, w)[::-1] for a, b, ang, w, _, _ in shapes])  # (hy, hx)
    vein_r = rng.uniform(2.0, 3.5)
    vein_y = zone[0] + rng.uniform(0.45, 0.8) * (zone[1] - zone[0])
    vein = rng.random() < 0.5 and vein_y - vein_r > zone[0] + 3.0 and vein_y + vein_r < zone[1] - 2.0
    zh, zw = zone[1] - zone[0], zone[3] - zone[2]
    scale = float(min(1.0, 0.95 * zw / (2 * base_half[:, 1].max()), 0.95 * zh / (2 * base_half[:, 0].max())))
    while True:
        blocked = [(vein_y - vein_r - 0.3, vein_y + vein_r + 0.3, -1e9, 1e9)] if vein else []
        centres = _place(base_half * scale, zone, blocked, rng)
        if centres is not None:
            break
        if vein:
            vein = False
        else:
            scale *= 0.9
    g = grid(s, FRAME)
    refl, atten = background(g, node_top, rng)
    if vein:
        dist = np.abs(g.y - np.float32(vein_y)) + np.zeros_like(g.x)
        lumen = dist < vein_r
        wall = np.exp(-0.5 * ((dist - vein_r - 0.2) / 0.25) ** 2).astype(np.float32)
        add_vessel(refl, atten, lumen, wall)
    labels = np.zeros((FRAME, FRAME), np.uint8)
    rows_pts, cols_pts, amps = [], [], []
    freq = float(us["frequency_mhz"])
    for k, ((a, b, ang, wob, h_off, h_side), (cy, cx), (hy, hx)) in enumerate(zip(shapes, centres, base_half * scale)):
        r0, r1 = max(int((cy - hy) / s) - 2, 0), min(int(np.ceil((cy + hy) / s)) + 2, FRAME)
        c0, c1 = max(int((cx - hx) / s) - 2, 0), min(int(np.ceil((cx + hx) / s)) + 2, FRAME)
        cg = _crop_grid(s, r1 - r0, c1 - c0)
        shape = NodeShape(cy - r0 * s, cx - c0 * s, a * scale, b * scale, ang, wob, h_off, h_side)
        inside, n_refl, n_atten, pts, _, _ = node_maps(cg, shape, feats[k], VIEW, rng, freq)
        sl = (slice(r0, r1), slice(c0, c1))
        refl[sl] = np.where(inside, n_refl, refl[sl])
        atten[sl] = np.where(inside, n_atten, atten[sl])
        labels[sl][inside] = k + 1
        rows_pts.append(pts[0] + r0)
        cols_pts.append(pts[1] + c0)
        amps.append(pts[2])
    points = (np.concatenate(rows_pts), np.concatenate(cols_pts), np.concatenate(amps).astype(np.float32))
    sigma = psf_sigma_px(float(us["resolution_mm"]), float(us["speckle_size"]), s)
    env = speckle_envelope(refl, sigma, rng, points)
    env = attenuate(env, atten, s, freq, TGC)
    bmode = log_compress(env, float(us["gain_db"]), float(us["dynamic_range_db"]))
    boxes = np.zeros((n, 4), int)
    for k, sl in enumerate(ndimage.find_objects(labels, max_label=n)):
        if sl is None:  # a node too small to cover a pixel centre: its placed rectangle's pixel
            cy, cx = centres[k]
            boxes[k] = int(cx / s), int(cy / s), int(cx / s) + 1, int(cy / s) + 1
        else:
            boxes[k] = sl[1].start, sl[0].start, sl[1].stop, sl[0].stop
    return Frame(bmode, labels, boxes, s, scale)
