"""Failure analysis of a fused model: the patients with lateral neck metastasis (N1b) it rated lowest.

These are the errors that cost most (a missed lateral dissection), so the report lists each one with what every
modality said and what was missing, which side and levels were truly involved against the fused side and level
risks, the key clinical values, one plain-words line read off those numbers, and, where a node-level model can
draw it cheaply, the Grad-CAM picture of the patient's most suspicious node. The threshold is the one the
report already uses for the fused model (the bundle's Youden threshold from its held-out stacking patients), so
"missed" means what it means everywhere else in the report.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd

from ..cohort import Cohort
from ..cohort.schema import LATERAL_LEVELS, SIDES

WORDS = {"clinical": "clinical", "us_image": "ultrasound", "us_video": "ultrasound clips", "ct": "CT",
         "cytology": "cytology"}
KEY_FIELDS = ("age", "sex", "tumour_size_mm", "tumour_side", "extrathyroidal_extension", "multifocal",
              "braf_v600e", "palpable_adenopathy")
PICTURE_MODELS = ("us_image", "ct")  # node-level models with a Grad-CAM drawing in explain/


def lowest_risk_n1b(fused: pd.Series, labels: pd.Series, n: int) -> pd.Series:
    """The `n` patients recorded N1b with the lowest fused risk, lowest first (ties by patient_id)."""
    positive = labels[labels.notna() & (labels.astype(float) == 1)].index
    risk = fused.reindex(positive).dropna()
    order = pd.DataFrame({"patient_id": risk.index, "p": risk.to_numpy()}).sort_values(["p", "patient_id"],
                                                                                       kind="mergesort")
    return pd.Series(order["p"].to_numpy(), index=pd.Index(order["patient_id"], name="patient_id")).head(n)


def _listing(names: list[str]) -> str:
    words = [WORDS.get(n, n) for n in names]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def explain_line(calls: dict[str, str]) -> str:
    """One line from each modality's call ("low", "raised" or "missing"), e.g. "ultrasound and CT both low; only
    clinical raised risk; cytology missing"."""
    low = [n for n, c in calls.items() if c == "low"]
    raised = [n for n, c in calls.items() if c == "raised"]
    missing = [n for n, c in calls.items() if c == "missing"]
    parts = []
    if low:
        parts.append(_listing(low) + (" low" if len(low) == 1 else " both low" if len(low) == 2 else " all low"))
    if raised:
        parts.append(("only " if low else "") + _listing(raised) + " raised risk")
    elif low:
        parts.append("no modality raised risk")
    if missing:
        parts.append(_listing(missing) + " missing")
    return "; ".join(parts) if parts else "no modality scored this patient"


def modality_calls(model, probabilities: pd.Series, threshold: float) -> list[dict]:
    """Each fused modality's probability for one patient against its own Youden threshold (from the stacking
    patients; the fused threshold where the model has none)."""
    own = getattr(model, "model_thresholds_", {})
    rows = []
    for name, p in probabilities.items():
        cut = float(own.get(name, threshold))
        present = pd.notna(p)
        rows.append({"name": name, "probability": float(p) if present else None, "threshold": cut,
                     "call": "missing" if not present else "raised" if p >= cut else "low"})
    return rows


def involvement(cohort: Cohort, scored: dict, patient_id) -> list[dict]:
    """Per side: recorded lateral status and involved levels (metastatic nodes) against the fused side risk and
    the fused risk of every lateral level."""
    row = cohort.patients.set_index("patient_id").loc[patient_id]
    nodes = cohort.nodes[cohort.nodes["patient_id"] == patient_id] if len(cohort.nodes) else cohort.nodes
    if len(nodes) and "metastatic" in nodes:
        positive = nodes[pd.to_numeric(nodes["metastatic"], errors="coerce") == 1]
    else:
        positive = nodes.iloc[:0] if len(nodes) else pd.DataFrame(columns=["side", "level"])
    levels = scored.get("levels")
    out = []
    for side in SIDES:
        status = row.get(f"lateral_{side}")
        hit = set(positive.loc[positive["side"] == side, "level"]) & set(LATERAL_LEVELS)
        side_risk = scored["sides"].get((patient_id, side), np.nan)
        level_rows = [{"level": lv, "involved": lv in hit,
                       "fused": float(levels.get((patient_id, side, lv), np.nan)) if levels is not None else None}
                      for lv in LATERAL_LEVELS]
        out.append({"side": side, "involved": None if pd.isna(status) else int(status),
                    "involved_levels": [lv for lv in LATERAL_LEVELS if lv in hit], "fused": float(side_risk),
                    "levels": level_rows})
    return out


def clinical_values(cohort: Cohort, patient_id) -> dict:
    """The key clinical fields the cohort records for the patient (blank ones left out)."""
    row = cohort.patients.set_index("patient_id").loc[patient_id]
    fields = [f for f in KEY_FIELDS if f in cohort.clinical_columns] or cohort.clinical_columns[:6]
    return {f: (row[f].item() if hasattr(row[f], "item") else row[f]) for f in fields if pd.notna(row[f])}


def node_picture(model, cohort: Cohort, nodes: pd.DataFrame, patient_id) -> dict | None:
    """The Grad-CAM picture (base64 PNG) of the patient's most suspicious node by the first node-level model
    that scored one, reusing the report gallery's drawing functions; None when no model did."""
    from PIL import Image

    from ..explain.gallery import ultrasound_pictures
    from ..explain.gradcam3d import ct_pictures

    draw = {"us_image": ultrasound_pictures, "ct": ct_pictures}
    mine = nodes[nodes["patient_id"] == patient_id]
    for name in PICTURE_MODELS:
        column = f"p_{name}"
        if name not in getattr(model, "models_", {}) or column not in mine or mine[column].notna().sum() == 0:
            continue
        top = mine.loc[mine[column].idxmax()]
        picture = draw[name](model.models_[name], cohort.subset([patient_id]), [top["node_id"]])[top["node_id"]]
        buffer = io.BytesIO()
        Image.fromarray(picture).save(buffer, format="PNG")
        return {"model": name, "node_id": str(top["node_id"]), "node_probability": float(top[column]),
                "level": str(top["level"]), "side": str(top["side"]),
                "image_base64": base64.b64encode(buffer.getvalue()).decode("ascii")}
    return None


def worst_false_negatives(model, cohort: Cohort, threshold: float, scored: dict | None = None, *, n: int = 5,
                          pictures: bool = True) -> tuple[dict, dict]:
    """(section, pictures): the section lists the `n` N1b patients of `cohort` with the lowest fused risk
    (`scored`: model.predict_levels(cohort), when already computed) and how many N1b patients fall below
    `threshold`; pictures maps patient_id → base64 PNG of the most suspicious node (kept out of metrics.json)."""
    scored = model.predict_levels(cohort) if scored is None else scored
    labels = cohort.labels()
    worst = lowest_risk_n1b(scored["patients"], labels, n)
    n1b = labels[labels.notna() & (labels.astype(float) == 1)].index
    fused_n1b = scored["patients"].reindex(n1b)
    centres = cohort.patients.set_index("patient_id")["centre"]
    rows, drawn = [], {}
    for pid, risk in worst.items():
        calls = modality_calls(model, scored["modalities"].loc[pid], threshold)
        row = {"patient_id": str(pid), "centre": str(centres[pid]), "probability": float(risk),
               "missed": bool(risk < threshold), "modalities": calls,
               "missing": [c["name"] for c in calls if c["call"] == "missing"],
               "sides": involvement(cohort, scored, pid), "clinical": clinical_values(cohort, pid),
               "explanation": explain_line({c["name"]: c["call"] for c in calls})}
        if pictures and len(scored.get("nodes", [])):
            picture = node_picture(model, cohort, scored["nodes"], pid)
            if picture is not None:
                drawn[str(pid)] = picture.pop("image_base64")
                row["picture"] = picture
        rows.append(row)
    section = {"threshold": float(threshold), "n_n1b": int(len(n1b)),
               "missed": int((fused_n1b < threshold).sum()), "rows": rows}
    return section, drawn
