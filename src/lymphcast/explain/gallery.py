"""The report's gallery: the model's most confident correct and wrong patient-level calls, each shown by its
most suspicious lymph node with Grad-CAM heat maps over its ultrasound views.

A call is positive when the patient's probability is at or above the threshold (the one fixed on training
data). Confidence is the distance of the probability from that threshold, so the gallery shows what the
model is surest about: its clearest successes and its most instructive failures. Only patients with a
recorded label and at least one node image qualify.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..cohort import Cohort
from ..modalities.us_regions import image_nodes
from .gradcam import heatmap_picture, node_heatmaps

CATEGORIES = ("true positive", "true negative", "false positive", "false negative")
FOLDER = "gallery"


@dataclass(frozen=True)
class GalleryEntry:
    category: str
    patient_id: str
    probability: float       # patient level
    label: int               # recorded N1b
    node_id: str             # the patient's most suspicious node
    node_probability: float
    png: str                 # path relative to the report folder, "/" separated
    threshold: float         # a call is positive at probability >= threshold
    details: str = ""        # what else the model can say about the node (CT: its measurements)

    def to_dict(self) -> dict:
        return asdict(self)


def call_category(label, probability, threshold: float) -> np.ndarray:
    """'true positive', 'true negative', 'false positive' or 'false negative' per patient."""
    y = np.asarray(label, int)
    positive = np.asarray(probability, float) >= threshold
    names = np.array(CATEGORIES)
    return names[np.where(positive, np.where(y == 1, 0, 2), np.where(y == 0, 1, 3))]


def choose_cases(frame: pd.DataFrame, threshold: float, per_category: int = 3) -> pd.DataFrame:
    """Up to `per_category` rows of `frame` (patient_id, probability, label) per category, most confident
    (largest |probability - threshold|) first; ties by patient_id. Adds columns category and confidence."""
    data = frame[frame["label"].notna() & frame["probability"].notna()].copy()
    data["label"] = data["label"].astype(int)
    data["category"] = call_category(data["label"], data["probability"], threshold)
    data["confidence"] = (data["probability"] - threshold).abs()
    data = data.sort_values(["confidence", "patient_id"], ascending=[False, True], kind="mergesort")
    chosen = [data[data["category"] == c].head(per_category) for c in CATEGORIES]
    return pd.concat(chosen, ignore_index=True)


def ultrasound_pictures(model, cohort: Cohort, node_ids) -> dict[str, np.ndarray]:
    """node_id → RGB picture of its ultrasound views and their Grad-CAM (UsImageModel)."""
    return {node: heatmap_picture(views) for node, views in node_heatmaps(model, cohort, node_ids).items()}


def build_gallery(model, cohort: Cohort, predictions: pd.DataFrame, threshold: float, report_dir: str | Path,
                  *, per_category: int = 3, media_nodes=image_nodes, pictures=ultrasound_pictures,
                  folder: str = FOLDER, details=None) -> list[GalleryEntry]:
    """Choose the cases (choose_cases) among the patients of `predictions` (patient_id, probability) with nodes
    in `media_nodes(cohort)`, write one PNG per case (`pictures(model, cohort, node_ids)` → RGB arrays) to
    report_dir/<folder>/ and return the entries in CATEGORIES order. Labels come from the cohort; `model` is a
    fitted node-level model (the ultrasound image model by default; explain.gradcam3d for CT); `details(model,
    cohort, node_ids)` → {node_id: text} adds a caption line per node."""
    from PIL import Image

    with_images = set(media_nodes(cohort)["patient_id"])
    labels = cohort.labels()
    frame = predictions[["patient_id", "probability"]][predictions["patient_id"].isin(with_images)]
    frame = frame.assign(label=labels.reindex(frame["patient_id"]).to_numpy())
    cases = choose_cases(frame, threshold, per_category)
    if cases.empty:
        return []
    chosen = cohort.subset(cases["patient_id"])
    p_nodes = model.predict_nodes(chosen).rename("node_probability").rename_axis("node_id").reset_index()
    p_nodes = p_nodes.merge(chosen.nodes[["node_id", "patient_id"]], on="node_id")
    top = (p_nodes.sort_values(["node_probability", "node_id"], ascending=[False, True], kind="mergesort")
           .drop_duplicates("patient_id").set_index("patient_id"))
    picture = pictures(model, chosen, top["node_id"].tolist())
    notes = details(model, chosen, top["node_id"].tolist()) if details is not None else {}
    entries, rank = [], {}
    for case in cases.itertuples(index=False):
        node = top.loc[case.patient_id]
        rank[case.category] = rank.get(case.category, 0) + 1
        name = f"{case.category.replace(' ', '_')}_{rank[case.category]}.png"
        (Path(report_dir) / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture[node["node_id"]]).save(Path(report_dir) / folder / name, format="PNG")
        entries.append(GalleryEntry(case.category, str(case.patient_id), float(case.probability),
                                    int(case.label), str(node["node_id"]), float(node["node_probability"]),
                                    f"{folder}/{name}", float(threshold), notes.get(str(node["node_id"]), "")))
    return entries


def report_items(entries: list[GalleryEntry], root: str | Path) -> list[dict]:
    """The entries as the report template takes them: their fields plus image_base64, the PNG under `root`
    embedded, so report.html stays self-contained."""
    import base64

    return [{**e.to_dict(), "image_base64": base64.b64encode((Path(root) / e.png).read_bytes()).decode("ascii")}
            for e in entries]
