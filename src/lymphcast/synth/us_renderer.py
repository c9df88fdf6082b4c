"""The `us_image` renderer: two B-mode views per node (transverse, longitudinal), a Doppler map and a mask each.

Per view: reflectivity/attenuation maps of the neck and the node (us_tissue, us_node), fully developed
speckle with the centre's PSF (us_speckle), two-way attenuation with TGC, log compression with the centre's
gain and dynamic range, 8-bit output of SIZE x SIZE pixels. Pixel spacing starts from the centre's depth
setting (depth_cm over 256 rows) and zooms so the node takes ~40-60% of the width (kept
between 0.5x and 3x of that spacing); it is recorded per node. Files go to media/us/<node_id>_v<k>.png with
_doppler.png and _mask.png (0/255); the last centre of a cohort with two or more centres (or any centre whose
acquisition["us"]["format"] is "dicom") writes the B-mode and Doppler images as DICOM (.dcm) instead.
The node box (x0, y0, x1, y1; x1/y1 exclusive) is that of the first (transverse) view's mask.
The same renderer also writes one full-field frame per patient side with nodes (us_frame), holding all of that
side's nodes: media/us_frames/<patient_id>_<side>.png (.dcm for the DICOM centres) and _mask.png (label map),
with the us_frame_* node columns. Frames draw from a generator seeded after the node views, so the node views are
the same with or without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..cohort.media_fields import US_FRAME_NODE_FIELDS, US_IMAGE_NODE_FIELDS
from ..cohort.schema import SIDES
from .centres import CentreProfile
from .chunk import Chunk
from .render_base import Rendered, Renderer
from .us_dicom import write_us_dicom
from .us_doppler import flow_map
from .us_frame import render_frame
from .us_node import NodeShape, node_maps, semi_axes
from .us_speckle import attenuate, log_compress, psf_sigma_px, speckle_envelope
from .us_tissue import SIZE, add_vessel, background, grid, vessel

VIEWS = ("transverse", "longitudinal")
TGC = 0.9
NODE_FEATURES = ("short_axis_mm", "long_short_ratio", "hilum_present", "cystic_change", "calcification",
                 "hyperechoic", "heterogeneous", "vascularity")


@dataclass(frozen=True)
class NodeImages:
    bmode: list[np.ndarray]    # per view, uint8 (SIZE, SIZE)
    doppler: list[np.ndarray]  # per view, uint8: 0 no flow
    mask: list[np.ndarray]     # per view, uint8 0/255
    spacing_mm: float


def node_spacing(short_mm: float, ratio: float, depth_cm: float) -> float:
    """Transverse width ~45% of the image, long axis at most 70%, within 0.5-3x the depth-set spacing."""
    base = depth_cm * 10.0 / 256.0
    width_mm = 2 * semi_axes(short_mm, ratio, 0)[0]
    want = max(width_mm / (0.45 * SIZE), short_mm * ratio / (0.7 * SIZE))
    return float(np.clip(want, 0.5 * base, 3.0 * base))


def render_node(feats: dict, us: dict, rng: np.random.Generator) -> NodeImages:
    """Both views of one node; `feats` holds the NODE_FEATURES values, `us` the centre's US profile."""
    short, ratio = float(feats["short_axis_mm"]), float(feats["long_short_ratio"])
    s = node_spacing(short, ratio, float(us["depth_cm"]))
    extent = SIZE * s
    # node size is clipped so it always fits the frame (a very long node is shown up to 85% of the width)
    b = min(short / 2.0, 0.3 * extent)
    ratio = min(ratio, 0.42 * extent / b)
    cy = extent * rng.uniform(0.5, 0.6)
    cy = float(np.clip(cy, b + 0.25 * extent, extent - b - 0.06 * extent))
    cx = extent * (0.5 + rng.uniform(-0.05, 0.05))
    angle = rng.uniform(-0.2, 0.2)
    wobble = (rng.uniform(0, 0.05), rng.uniform(0, 6.3), rng.uniform(0, 0.04), rng.uniform(0, 6.3))
    hilum_offset, hilum_side = rng.uniform(-0.3, 0.3), int(rng.choice([-1, 1]))
    has_vessel = rng.random() < 0.55
    v_radius, v_side, v_dy = rng.uniform(2.5, 4.5), int(rng.choice([-1, 1])), rng.uniform(-0.8, 0.8)
    sigma = psf_sigma_px(float(us["resolution_mm"]), float(us["speckle_size"]), s)
    g = grid(s)
    out = NodeImages([], [], [], s)
    for view in range(len(VIEWS)):
        a, bb = semi_axes(2 * b, ratio, view)
        shape = NodeShape(cy, cx, a, bb, angle, wobble, hilum_offset, hilum_side)
        refl, atten = background(g, cy - bb, rng)
        inside, n_refl, n_atten, points, _, coords = node_maps(g, shape, feats, view, rng,
                                                                   float(us["frequency_mhz"]))
        refl = np.where(inside, n_refl, refl)
        atten = np.where(inside, n_atten, atten)
        lumen = None
        if has_vessel and view == 0:
            vx = cx + v_side * (a + v_radius + 1.5)
            lumen, wall = vessel(g, (cy + v_dy * bb, vx), v_radius)
            lumen &= ~inside
            add_vessel(refl, atten, lumen, wall * ~inside)
        env = speckle_envelope(refl, sigma, rng, points)
        env = attenuate(env, atten, s, float(us["frequency_mhz"]), TGC)
        out.bmode.append(log_compress(env, float(us["gain_db"]), float(us["dynamic_range_db"])))
        out.doppler.append(flow_map(int(feats["vascularity"]), coords, shape, view, lumen, rng))
        out.mask.append(np.where(inside, 255, 0).astype(np.uint8))
    return out


def box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def _png(path: Path, pixels: np.ndarray) -> None:
    Image.fromarray(pixels).save(path, compress_level=1)


def dicom_centres(centres: Sequence[CentreProfile]) -> set[int]:
    marked = {i for i, c in enumerate(centres) if c.acquisition.get("us", {}).get("format") == "dicom"}
    return marked or ({len(centres) - 1} if len(centres) >= 2 else set())


def render_us_image(chunk: Chunk, out_dir: Path, centres: Sequence[CentreProfile],
                    rng: np.random.Generator) -> Rendered:
    media = Path(out_dir) / "media" / "us"
    media.mkdir(parents=True, exist_ok=True)
    nodes = chunk.nodes
    n = len(chunk.node_ids)
    feats_all = {k: np.asarray(nodes.features[k]) for k in NODE_FEATURES}
    dicom = dicom_centres(centres)
    token = str(int(rng.integers(2**62)))
    cols = {k: [] for k in ("us_image_file", "us_doppler_file", "us_mask_file")}
    boxes = np.zeros((n, 4), int)
    spacing = np.zeros(n)
    for i in range(n):
        centre = int(chunk.centre_idx[nodes.patient[i]])
        us = centres[centre].acquisition["us"]
        node_id, patient_id = str(chunk.node_ids[i]), str(chunk.patient_ids[nodes.patient[i]])
        imgs = render_node({k: v[i] for k, v in feats_all.items()}, us, rng)
        refs = {k: [] for k in cols}
        for k in range(len(VIEWS)):
            stem = f"{node_id}_v{k + 1}"
            if centre in dicom:
                for kind, pixels in (("", imgs.bmode[k]), ("_doppler", imgs.doppler[k])):
                    write_us_dicom(media / f"{stem}{kind}.dcm", pixels, patient_id=patient_id,
                                   spacing_mm=imgs.spacing_mm, token=token, study=patient_id,
                                   series=f"{node_id}{kind}", instance=k + 1,
                                   description=f"lymph node {VIEWS[k]}{' doppler' if kind else ''}",
                                   vendor=str(us["vendor"]), frequency_mhz=float(us["frequency_mhz"]))
                ext = "dcm"
            else:
                _png(media / f"{stem}.png", imgs.bmode[k])
                _png(media / f"{stem}_doppler.png", imgs.doppler[k])
                ext = "png"
            _png(media / f"{stem}_mask.png", imgs.mask[k])
            refs["us_image_file"].append(f"media/us/{stem}.{ext}")
            refs["us_doppler_file"].append(f"media/us/{stem}_doppler.{ext}")
            refs["us_mask_file"].append(f"media/us/{stem}_mask.png")
        for key in cols:
            cols[key].append(";".join(refs[key]))
        boxes[i] = box(imgs.mask[0])
        spacing[i] = round(imgs.spacing_mm, 5)
    frames = render_frames(chunk, media, centres, dicom, token, feats_all,
                           np.random.default_rng(int(rng.integers(2**63))))
    return Rendered(nodes={**{k: np.array(v, dtype=object) for k, v in cols.items()},
                           "us_box_x0": boxes[:, 0], "us_box_y0": boxes[:, 1], "us_box_x1": boxes[:, 2],
                           "us_box_y1": boxes[:, 3], "us_pixel_spacing_mm": spacing, **frames})


def render_frames(chunk: Chunk, media: Path, centres: Sequence[CentreProfile], dicom: set[int], token: str,
                  feats_all: dict, rng: np.random.Generator) -> dict:
    """One full-field frame per patient side with nodes; returns the us_frame_* node columns."""
    nodes = chunk.nodes
    n = len(chunk.node_ids)
    frames_dir = media.parent / "us_frames"  # not under media/us: its listing holds node views only
    frames_dir.mkdir(exist_ok=True)
    files = np.empty(n, dtype=object)
    boxes = np.zeros((n, 4), int)
    spacing, scale = np.zeros(n), np.zeros(n)
    side_id = 2 * np.asarray(nodes.patient) + np.asarray(nodes.side)
    for sid in np.unique(side_id):
        idx = np.flatnonzero(side_id == sid)
        patient = int(nodes.patient[idx[0]])
        centre = int(chunk.centre_idx[patient])
        us = centres[centre].acquisition["us"]
        patient_id, side = str(chunk.patient_ids[patient]), SIDES[int(nodes.side[idx[0]])]
        frame = render_frame([{k: v[i] for k, v in feats_all.items()} for i in idx], us, rng)
        stem = f"{patient_id}_{side}"
        if centre in dicom:
            write_us_dicom(frames_dir / f"{stem}.dcm", frame.bmode, patient_id=patient_id, spacing_mm=frame.spacing_mm,
                           token=token, study=patient_id, series=f"{patient_id}_{side}_frame", instance=1,
                           description=f"lateral neck {side} full field", vendor=str(us["vendor"]),
                           frequency_mhz=float(us["frequency_mhz"]))
            ext = "dcm"
        else:
            _png(frames_dir / f"{stem}.png", frame.bmode)
            ext = "png"
        _png(frames_dir / f"{stem}_mask.png", frame.labels)
        files[idx] = f"media/us_frames/{stem}.{ext}"
        boxes[idx] = frame.boxes
        spacing[idx] = round(frame.spacing_mm, 5)
        scale[idx] = round(frame.scale, 4)
    return {"us_frame_file": files, "us_frame_box_x0": boxes[:, 0], "us_frame_box_y0": boxes[:, 1],
            "us_frame_box_x1": boxes[:, 2], "us_frame_box_y1": boxes[:, 3], "us_frame_pixel_spacing_mm": spacing,
            "us_frame_scale": scale}


NODE_FIELDS = {**US_IMAGE_NODE_FIELDS, **US_FRAME_NODE_FIELDS}

US_IMAGE = Renderer("us_image", render_us_image, node_fields=NODE_FIELDS)
