"""The report's cine-clip panel: for sample clips, the node risk as it evolved frame by frame while the sweep
played (the streaming path, stream.ClipStream, so the report shows what a sonographer would have seen on
screen) and the key frames, those the clip model's attention weighed most at the end of the sweep.

The sample: as the Grad-CAM gallery, the patients on whom the model was surest, right and wrong (gallery.
choose_cases, one per category by default), each by its most suspicious node that has a clip.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..cohort import Cohort
from .gallery import choose_cases

FOLDER = "clips"
KEY_FRAMES = 3


@dataclass(frozen=True)
class ClipEntry:
    category: str
    patient_id: str
    probability: float       # patient level
    label: int               # recorded N1b
    node_id: str
    node_probability: float  # at the end of the sweep
    key_frames: list         # source frame indices, most attended first
    png: str                 # relative to the report folder

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RiskTrace:
    times: np.ndarray        # (T,) seconds
    risk: np.ndarray         # (T,) node risk after each frame
    key_frames: list         # frame indices, most attended first
    weights: list            # their attention weights
    frames: np.ndarray       # (T, H, W) the clip
    box: tuple               # node box in pixels


def risk_trace(model, cohort: Cohort, row: dict) -> RiskTrace:
    """Stream one node's clip through the model frame by frame (no window: the offline risk at the end)."""
    from ..modalities.us_video_clips import number, read_node_clip
    from ..stream.clip_stream import ClipStream

    clip = read_node_clip(cohort, row)
    frames, times, box = clip.pixels, clip.times, clip.box
    fps = number(row, "us_video_fps")
    stream = ClipStream(model, box=box, spacing_mm=number(row, "us_video_pixel_spacing_mm"), fps=fps)
    risk = np.array([stream.push(f, None if np.isnan(t) else float(t)).risk for f, t in zip(frames, times)])
    keys = stream.key_frame_weights(KEY_FRAMES)
    step = 1.0 / fps if fps else 1.0
    times = np.where(np.isnan(times), np.arange(len(times)) * step, times)
    return RiskTrace(times, risk, [k for k, _ in keys], [w for _, w in keys], frames, box)


def save_trace_png(trace: RiskTrace, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig = plt.figure(figsize=(8, 4.6), dpi=100)
    grid = fig.add_gridspec(2, KEY_FRAMES, height_ratios=(1.0, 1.25))
    ax = fig.add_subplot(grid[0, :])
    ax.plot(trace.times, trace.risk, color="#b2182b", lw=1.8)
    for rank, k in enumerate(trace.key_frames):
        ax.axvline(trace.times[k], color="#2166ac", lw=1, ls="--")
        ax.annotate(str(rank + 1), (trace.times[k], 1.0), color="#2166ac", ha="center", va="bottom", fontsize=8)
    ax.set(ylim=(0, 1.05), xlim=(trace.times[0], trace.times[-1]), xlabel="time in the sweep (s)",
           ylabel="node risk")
    ax.set_title(title, fontsize=9)
    x0, y0, x1, y1 = trace.box
    side = max(x1 - x0, y1 - y0) * 2.0  # a view of the node with some context
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    for i, k in enumerate(trace.key_frames):
        sub = fig.add_subplot(grid[1, i])
        sub.imshow(trace.frames[k], cmap="gray", vmin=0, vmax=255)
        sub.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="#fdae61", lw=1))
        sub.set(xlim=(cx - side / 2, cx + side / 2), ylim=(cy + side / 2, cy - side / 2), xticks=[], yticks=[])
        sub.set_title(f"key frame {i + 1}: frame {k}, {trace.times[k]:.2f} s, weight {trace.weights[i]:.2f}",
                      fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def build_clip_gallery(model, cohort: Cohort, predictions: pd.DataFrame, threshold: float,
                       report_dir: str | Path, *, per_category: int = 1) -> list[ClipEntry]:
    """Choose patients with clips (gallery.choose_cases), stream each one's most suspicious node clip, write one
    PNG per case to report_dir/clips/ and return the entries."""
    from ..modalities.us_video_clips import video_nodes

    nodes = video_nodes(cohort)
    frame = predictions[["patient_id", "probability"]][predictions["patient_id"].isin(set(nodes["patient_id"]))]
    frame = frame.assign(label=cohort.labels().reindex(frame["patient_id"]).to_numpy())
    cases = choose_cases(frame, threshold, per_category)
    if cases.empty:
        return []
    chosen = cohort.subset(cases["patient_id"])
    p_nodes = model.predict_nodes(chosen).rename("p").rename_axis("node_id").reset_index()
    p_nodes = p_nodes.merge(nodes, on="node_id")
    top = (p_nodes.sort_values(["p", "node_id"], ascending=[False, True], kind="mergesort")
           .drop_duplicates("patient_id").set_index("patient_id"))
    entries = []
    for i, case in enumerate(cases.itertuples(index=False)):
        row = top.loc[case.patient_id]
        trace = risk_trace(model, chosen, row.to_dict())
        name = f"{case.category.replace(' ', '_')}_{i + 1}.png"
        title = (f"{case.category}: node {row['node_id']} (level {row['level']}, {row['side']}), "
                 f"final risk {trace.risk[-1]:.2f}")
        save_trace_png(trace, Path(report_dir) / FOLDER / name, title)
        entries.append(ClipEntry(case.category, str(case.patient_id), float(case.probability), int(case.label),
                                 str(row["node_id"]), float(trace.risk[-1]), list(map(int, trace.key_frames)),
                                 f"{FOLDER}/{name}"))
    return entries
