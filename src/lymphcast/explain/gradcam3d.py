"""3D Grad-CAM for the CT node model, shown as three orthogonal slices through the node with the heat overlaid.

MONAI's GradCAM is taken at the last encoder block of CtNet (4^3 cells for a 32^3 cube): the gradient of the
node logit, averaged per channel, weighs that block's activations; negative sums are cut to 0 and the map is
upsampled (trilinear) to the cube and scaled to 0..1 (all zeros when nothing raised the logit). The network is
copied first so MONAI's hooks never stay on the fitted model.

Pictures follow the radiological convention: axial seen from the feet (anterior up, the patient's right on the
image's left), coronal seen from the front (head up, the patient's right on the image's left), sagittal with
the head up and anterior on the image's left.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..cohort import Cohort
from .gradcam import PANEL_PX, _unit_range, node_positions, overlay

PLANES = ("axial", "coronal", "sagittal")
WINDOW = (-160.0, 240.0)  # HU shown as grey (neck soft tissue)


def cube_heatmap(net, crop: np.ndarray, present: np.ndarray) -> np.ndarray:
    """One node's cube (n_inputs, s, s, s) in HU / mg/mL and its channel flags → heat (s, s, s) in 0..1."""
    import copy

    import torch
    from monai.visualize import GradCAM

    from ..nets.ct_net import CubeOnly, prepare

    net = copy.deepcopy(net).eval()
    flags = torch.from_numpy(np.asarray(present, bool))[None]
    wrapper = CubeOnly(net, flags)
    cam = GradCAM(nn_module=wrapper, target_layers=f"net.encoder.{len(net.encoder) - 1}", postprocessing=_unit_range)
    x = prepare(torch.from_numpy(np.asarray(crop, np.float32))[None], flags)
    with torch.enable_grad():
        heat = cam(x=x, class_idx=0)[0, 0].detach().numpy().astype(np.float32)
    return np.clip(heat, 0.0, 1.0)


def node_cubes(model, cohort: Cohort, node_ids) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """node_id → (conventional cube (s, s, s) in HU, heat (s, s, s) in 0..1) for the fitted CT model."""
    from ..modalities.ct_crops import ct_nodes

    node_ids = list(dict.fromkeys(node_ids))
    if not node_ids:
        return {}
    nodes = ct_nodes(cohort)
    crops = model.crops(cohort.subset(nodes.loc[nodes["node_id"].isin(node_ids), "patient_id"].unique()))
    position = node_positions(crops.node_ids, node_ids, cohort, "CT study", "CT")
    net = model.network()
    out = {}
    for n in node_ids:
        crop = crops.volumes[position[n]].astype(np.float32)
        out[n] = (crop[0], cube_heatmap(net, crop, crops.present[position[n]]))
    return out


def orthogonal_slices(volume: np.ndarray, centre=None) -> dict[str, np.ndarray]:
    """The three planes through `centre` (default the cube's middle) of a (z, y, x) cube whose axes run
    inferior→superior, anterior→posterior, right→left (LPS), oriented for display."""
    z, y, x = (np.asarray(volume.shape) // 2) if centre is None else centre
    return {"axial": volume[z],                                  # rows anterior→posterior, columns right→left
            "coronal": volume[::-1, :, :][:, y, :],              # rows head→feet, columns right→left
            "sagittal": volume[::-1, :, x]}                      # rows head→feet, columns anterior→posterior


def _grey(hu: np.ndarray) -> np.ndarray:
    lo, hi = WINDOW
    return np.round(255 * (np.clip(hu, lo, hi) - lo) / (hi - lo)).astype(np.uint8)


def cube_picture(hu: np.ndarray, heat: np.ndarray, *, panel_px: int = PANEL_PX) -> np.ndarray:
    """RGB uint8: two rows (CT in a soft-tissue window; Grad-CAM overlay) of three planes (axial, coronal,
    sagittal), each panel enlarged to at least `panel_px` wide, 4 px white gaps."""
    grey, hot = orthogonal_slices(_grey(hu)), orthogonal_slices(heat)
    scale = max(1, -(-panel_px // hu.shape[-1]))
    rows = []
    for make in (lambda p: np.repeat(grey[p][..., None], 3, axis=-1), lambda p: overlay(grey[p], hot[p])):
        panels = [np.kron(make(p), np.ones((scale, scale, 1), np.uint8)) for p in PLANES]
        gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
        rows.append(np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1))
    return np.concatenate([rows[0], np.full((4, rows[0].shape[1], 3), 255, np.uint8), rows[1]], axis=0)


def save_cube_png(hu: np.ndarray, heat: np.ndarray, path: str | Path) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(cube_picture(hu, heat)).save(path, format="PNG")
    return path


def ct_pictures(model, cohort: Cohort, node_ids) -> dict[str, np.ndarray]:
    """node_id → RGB picture of its three planes and their 3D Grad-CAM (for explain.gallery.build_gallery)."""
    return {node: cube_picture(hu, heat) for node, (hu, heat) in node_cubes(model, cohort, node_ids).items()}
