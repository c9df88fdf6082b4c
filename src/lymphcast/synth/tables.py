"""A simulated chunk as table rows: the recorded cohort tables and the truth/ tables.

The recorded tables hold only what a hospital would have (labels as recorded, no latent features);
truth/ holds the hidden states, the latent node and cytology features and the exact risks.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..cohort.schema import LATERAL_LEVELS, SIDES
from .centres import CentreProfile
from .chunk import Chunk
from .features import VASCULARITY
from .posterior import VIEWS

RISK_COLUMNS = tuple(f"risk_{view}" for view in VIEWS)


def _centres(chunk: Chunk, centres: Sequence[CentreProfile]) -> np.ndarray:
    return np.array([c.id for c in centres])[chunk.centre_idx]


def patients_frame(chunk: Chunk, centres: Sequence[CentreProfile]) -> pd.DataFrame:
    labels = chunk.labels
    return pd.DataFrame({"patient_id": chunk.patient_ids, "centre": _centres(chunk, centres), "n1b": labels.n1b,
                         "lateral_left": labels.sides[:, 0], "lateral_right": labels.sides[:, 1]})


def nodes_frame(chunk: Chunk) -> pd.DataFrame:
    nodes = chunk.nodes
    return pd.DataFrame({"node_id": chunk.node_ids, "patient_id": chunk.patient_ids[nodes.patient],
                         "side": np.asarray(SIDES)[nodes.side], "level": np.asarray(LATERAL_LEVELS)[nodes.level],
                         "metastatic": chunk.labels.node_metastatic})


def truth_patients(chunk: Chunk, centres: Sequence[CentreProfile]) -> pd.DataFrame:
    frame = pd.DataFrame({"patient_id": chunk.patient_ids, "centre": _centres(chunk, centres),
                          "n1b_true": chunk.n1b, "clnm": chunk.clnm, "lateral_left_true": chunk.lateral[:, 0],
                          "lateral_right_true": chunk.lateral[:, 1], "label_recorded": chunk.labels.n1b,
                          "clinically_node_negative": chunk.labels.clinically_negative.astype(np.int8)})
    for view, column in zip(VIEWS, RISK_COLUMNS):
        frame[column] = chunk.risks[view][0]
    return frame


def truth_sides(chunk: Chunk) -> pd.DataFrame:
    n = len(chunk.patient_ids)
    frame = pd.DataFrame({"patient_id": np.repeat(chunk.patient_ids, 2), "side": np.tile(SIDES, n),
                          "lateral_true": chunk.lateral.reshape(-1)})
    for view, column in zip(VIEWS, RISK_COLUMNS):
        frame[column] = chunk.risks[view][1].reshape(-1)
    return frame


def truth_nodes(chunk: Chunk) -> pd.DataFrame:
    frame = nodes_frame(chunk).drop(columns="metastatic")
    frame["metastatic_true"] = chunk.nodes.metastatic
    frame["occult"] = chunk.nodes.occult
    for name, values in chunk.nodes.features.items():
        frame[name] = np.asarray(VASCULARITY)[values] if name == "vascularity" else values
    return frame


def truth_cytology(chunk: Chunk) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": chunk.patient_ids, **chunk.cytology})
