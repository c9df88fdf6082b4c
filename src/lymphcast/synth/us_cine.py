"""The `us_video` renderer: one cine clip per node, a transverse probe sweep along its long axis (us_cine_clip).

Frame rate per centre: the centre's acquisition["us"]["fps"] when its profile sets one, otherwise its scanner
vendor's default (VENDOR_FPS, 15-30 frames/s); duration 2-5 s per clip. Files go to media/us_video/<node_id>.mp4
(H.264) or, for the centres that write DICOM stills (us_renderer.dicom_centres), <node_id>.dcm (Ultrasound
Multi-frame Image). Node columns: us_video_file, us_video_fps, us_video_frames, us_video_pixel_spacing_mm, and
the frame an annotator would mark (us_video_key_frame: largest section) with the node's box in it
(us_video_box_*). Each clip draws from its own generator (seeded from the renderer's), so it can be
re-rendered alone with render_clip. What each frame shows (plane position, section area, hilum, foci, cystic
area) is truth, so it goes to truth/us_video_frames.csv, one row per frame, never to nodes.csv.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..cohort.media_fields import US_VIDEO_NODE_FIELDS
from .centres import CentreProfile
from .chunk import Chunk
from .render_base import Rendered, Renderer
from .us_cine_clip import Clip, render_clip
from .us_cine_io import write_cine_dicom, write_mp4
from .us_renderer import NODE_FEATURES, dicom_centres

VENDOR_FPS = {"Aurelia": 30, "Boreal": 25, "Cygnus": 20, "Dorado": 15, "Eridan": 24}
DEFAULT_FPS = 20
TRUTH_FILE = "us_video_frames.csv"


def centre_fps(us: dict) -> int:
    return int(us.get("fps") or VENDOR_FPS.get(str(us.get("vendor")), DEFAULT_FPS))


def frame_truth(node_id: str, clip: Clip) -> pd.DataFrame:
    n = len(clip.frames)
    return pd.DataFrame({"node_id": np.repeat(node_id, n), "frame": np.arange(n),
                         "time_s": np.round(np.arange(n) / clip.fps, 4), "plane_mm": np.round(clip.plane_mm, 3),
                         "section_mm2": np.round(clip.section_mm2, 3), "hilum": clip.hilum.astype(np.int8),
                         "foci": clip.foci, "cystic": clip.cystic.astype(np.int8)})


def render_us_video(chunk: Chunk, out_dir: Path, centres: Sequence[CentreProfile],
                    rng: np.random.Generator) -> Rendered:
    media = Path(out_dir) / "media" / "us_video"
    media.mkdir(parents=True, exist_ok=True)
    nodes = chunk.nodes
    n = len(chunk.node_ids)
    feats_all = {k: np.asarray(nodes.features[k]) for k in NODE_FEATURES}
    dicom = dicom_centres(centres)
    token = str(int(rng.integers(2**62)))
    seeds = rng.integers(2**63, size=n)  # one stream per clip: a clip is reproducible on its own
    files = np.empty(n, dtype=object)
    fps, count, key = np.zeros(n, int), np.zeros(n, int), np.zeros(n, int)
    spacing, boxes = np.zeros(n), np.zeros((n, 4), int)
    truth = []
    for i in range(n):
        centre = int(chunk.centre_idx[nodes.patient[i]])
        us = centres[centre].acquisition["us"]
        node_id, patient_id = str(chunk.node_ids[i]), str(chunk.patient_ids[nodes.patient[i]])
        clip = render_clip({k: v[i] for k, v in feats_all.items()}, us, centre_fps(us),
                           np.random.default_rng(seeds[i]))
        if centre in dicom:
            write_cine_dicom(media / f"{node_id}.dcm", clip.frames, clip.fps, patient_id=patient_id,
                             spacing_mm=clip.spacing_mm, token=token, study=patient_id, series=f"{node_id}_cine",
                             description="lymph node transverse sweep", vendor=str(us["vendor"]),
                             frequency_mhz=float(us["frequency_mhz"]))
            files[i] = f"media/us_video/{node_id}.dcm"
        else:
            write_mp4(media / f"{node_id}.mp4", clip.frames, clip.fps)
            files[i] = f"media/us_video/{node_id}.mp4"
        fps[i], count[i], key[i] = clip.fps, len(clip.frames), clip.key_frame
        spacing[i], boxes[i] = round(clip.spacing_mm, 5), clip.box
        truth.append(frame_truth(node_id, clip))
    frames = pd.concat(truth, ignore_index=True) if truth else frame_truth("", _empty_clip()).iloc[:0]
    return Rendered(nodes={"us_video_file": files, "us_video_fps": fps, "us_video_frames": count,
                           "us_video_pixel_spacing_mm": spacing, "us_video_key_frame": key,
                           "us_video_box_x0": boxes[:, 0], "us_video_box_y0": boxes[:, 1],
                           "us_video_box_x1": boxes[:, 2], "us_video_box_y1": boxes[:, 3]},
                    truth={TRUTH_FILE: frames})


def _empty_clip() -> Clip:
    z = np.zeros(0)
    return Clip(np.zeros((0, 2, 2), np.uint8), 1, 1.0, z, z, z.astype(bool), z.astype(int), z.astype(bool), 0,
                (0, 0, 0, 0))


US_VIDEO = Renderer("us_video", render_us_video, node_fields=US_VIDEO_NODE_FIELDS)
