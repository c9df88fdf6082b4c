"""Grad-CAM heat maps for the ultrasound node model: where in a node's view the network found the evidence
that raised its metastasis logit.

Each view of a node is scored alone (nets.node_cnn.OneView: the view's image and its own size numbers) and
MONAI's GradCAM is taken at the last encoder block, the coarsest feature map (4 x 4 cells at 64 px): the
gradient of the logit, averaged per channel, weighs that block's activations; negative sums are cut to 0
(ReLU) and the map is upsampled to the region and scaled to 0..1. A map with no positive evidence at all
is all zeros, not noise stretched to full range. The network is copied first: MONAI's hooks stay on the
module they were put on, and the fitted model must not collect them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..cohort import Cohort, LymphCastError
from ..modalities.us_regions import image_nodes

DEFAULT_ALPHA = 0.5
DEFAULT_CMAP = "jet"
PANEL_PX = 160  # each panel of a saved picture is at least this wide


def target_layer(net) -> str:
    """MONAI layer name of the last encoder block of `net` wrapped in OneView."""
    return f"net.encoder.{len(net.encoder) - 1}"


def _unit_range(x):
    """Scale each map to 0..1 (min → 0, max → 1); a constant map becomes zeros. (MONAI's default
    normaliser maps max → 0, the other way round.)"""
    import torch

    flat = x.flatten(1)
    low, high = flat.min(1).values, flat.max(1).values
    span = (high - low).view(-1, *[1] * (x.dim() - 1))
    out = (x - low.view_as(span)) / span.clamp(min=1e-12)
    return torch.where(span > 1e-12, out, torch.zeros_like(x))


def view_heatmaps(net, pixels: np.ndarray, extra: np.ndarray,
                  present: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """One node's views (pixels uint8 (V, 2, S, S), extra (V, E), present (V,)) → [(B-mode uint8 S x S,
    heat float32 S x S in 0..1)] for every view present. `net` is a NodeNet; it is not modified."""
    import copy

    import torch
    from monai.visualize import GradCAM

    from ..nets.node_cnn import OneView, prepare

    net = copy.deepcopy(net).eval()
    wrapper = OneView(net, torch.zeros(1, extra.shape[-1]))
    cam = GradCAM(nn_module=wrapper, target_layers=target_layer(net), postprocessing=_unit_range)
    out = []
    with torch.enable_grad():
        for v in np.flatnonzero(present):
            wrapper.extra = torch.from_numpy(np.asarray(extra[v], np.float32))[None]
            x = prepare(torch.from_numpy(np.ascontiguousarray(pixels[v]))[None])
            heat = cam(x=x, class_idx=0)[0, 0].detach().numpy().astype(np.float32)
            out.append((np.array(pixels[v, 0], np.uint8), np.clip(heat, 0.0, 1.0)))
    return out


def node_positions(ids_read, node_ids, cohort: Cohort, media: str, short: str) -> dict[str, int]:
    """Row of each requested node among the node inputs read (`ids_read`); a node without its media is an error."""
    position = {node: i for i, node in enumerate(ids_read)}
    missing = [n for n in node_ids if n not in position]
    if missing:
        raise LymphCastError(f"{len(missing)} node(s) have no {media} in cohort '{cohort.meta.name}' "
                             f"(first: {missing[0]}); Grad-CAM needs the node's {short}")
    return position


def node_heatmaps(model, cohort: Cohort, node_ids) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Grad-CAM of the fitted ultrasound-image model for `node_ids` of `cohort`: node_id → one
    (B-mode region uint8 S x S, heat float32 S x S in 0..1) per view, S the model's region size."""
    node_ids = list(dict.fromkeys(node_ids))
    if not node_ids:
        return {}
    nodes = image_nodes(cohort)
    regions = model._regions(cohort.subset(nodes.loc[nodes["node_id"].isin(node_ids), "patient_id"].unique()))
    position = node_positions(regions.node_ids, node_ids, cohort, "ultrasound image", "image")
    net = model.network()
    return {n: view_heatmaps(net, regions.pixels[position[n]], regions.extra[position[n]],
                             regions.present[position[n]]) for n in node_ids}


def overlay(image: np.ndarray, heat: np.ndarray, *, alpha: float = DEFAULT_ALPHA,
            cmap: str = DEFAULT_CMAP) -> np.ndarray:
    """Heat drawn in a matplotlib colour map over the grey image: RGB uint8 (H, W, 3). Each pixel blends
    by alpha x heat, so where the network saw nothing the B-mode shows through unchanged."""
    import matplotlib

    image, heat = np.asarray(image), np.clip(np.asarray(heat, float), 0.0, 1.0)
    if image.shape != heat.shape:
        raise ValueError(f"image {image.shape} and heat {heat.shape} must have the same shape")
    grey = np.repeat(image.astype(float)[..., None] / 255.0, 3, axis=-1)
    colour = matplotlib.colormaps[cmap](heat)[..., :3]
    weight = alpha * heat[..., None]
    return np.round(255 * ((1 - weight) * grey + weight * colour)).astype(np.uint8)


def heatmap_picture(views: list[tuple[np.ndarray, np.ndarray]], *, panel_px: int = PANEL_PX) -> np.ndarray:
    """One RGB uint8 picture: for each view its B-mode, then its Grad-CAM overlay, left to right, each panel
    enlarged (nearest neighbour, whole multiples) to at least `panel_px` wide, 4 px white gaps."""
    if not views:
        raise ValueError("no views to draw")
    panels = []
    for image, heat in views:
        grey = np.repeat(np.asarray(image, np.uint8)[..., None], 3, axis=-1)
        panels += [grey, overlay(image, heat)]
    height = max(p.shape[0] for p in panels)
    scale = max(1, -(-panel_px // max(p.shape[1] for p in panels)))
    gap = np.full((height * scale, 4, 3), 255, np.uint8)
    row = []
    for panel in panels:
        big = np.kron(panel, np.ones((scale, scale, 1), np.uint8))
        padded = np.full((height * scale, big.shape[1], 3), 255, np.uint8)
        padded[:big.shape[0]] = big
        row += [padded, gap]
    return np.concatenate(row[:-1], axis=1)


def save_heatmap_png(views: list[tuple[np.ndarray, np.ndarray]], path: str | Path, *,
                     panel_px: int = PANEL_PX) -> Path:
    """Write heatmap_picture(views) as a PNG at `path` (folders created); returns the path."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(heatmap_picture(views, panel_px=panel_px)).save(path, format="PNG")
    return path
