"""The stacking design: each modality's probability as a log-odds column beside a column saying whether the
modality is there at all, for patients, neck sides and neck levels.

A missing modality (no CT study, no cytology slide) enters as log-odds 0 with its mask 0; the mask's own
coefficient then carries what being without that modality says (the risk of the patients who lack it), so a
patient without CT is scored by the other modalities on the same, calibrated scale — never by a made-up value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import logit

from ..cohort.schema import LATERAL_LEVELS, SIDES

EPS = 1e-4


def masked_logits(probabilities: pd.DataFrame, names) -> pd.DataFrame:
    """One column pair per modality in `names`: `<m>` = log-odds (0 where missing), `<m>_present` = 0/1."""
    out = {}
    for name in names:
        p = probabilities[name] if name in probabilities else pd.Series(np.nan, index=probabilities.index)
        present = p.notna().to_numpy()
        out[name] = np.where(present, logit(np.clip(p.to_numpy(float), EPS, 1 - EPS)), 0.0)
        out[f"{name}_present"] = present.astype(float)
    return pd.DataFrame(out, index=probabilities.index)


def side_frame(patients: pd.Series | list, patient_probs: pd.DataFrame, side_probs: pd.DataFrame,
               tumour_side: pd.Series | None) -> pd.DataFrame:
    """Per (patient_id, side): node-level modalities' side probabilities, patient-level modalities' patient
    probabilities (the same on both sides), and the primary tumour's laterality (+1 same side, -1 the other,
    0 isthmus or unknown: lateral metastasis is mostly ipsilateral)."""
    index = pd.MultiIndex.from_product([pd.Index(patients).unique(), SIDES], names=["patient_id", "side"])
    frame = pd.DataFrame(index=index)
    pid = index.get_level_values("patient_id")
    for name in patient_probs.columns:
        frame[name] = patient_probs[name].reindex(pid).to_numpy()
    for name in side_probs.columns:
        frame[name] = side_probs[name].reindex(index).to_numpy()
    if tumour_side is not None:
        primary = tumour_side.reindex(pid).astype("string").fillna("").to_numpy(dtype=object)  # unknown: ""
        side = index.get_level_values("side").to_numpy()
        frame["ipsilateral"] = np.where(primary == side, 1.0, np.where(np.isin(primary, SIDES), -1.0, 0.0))
    return frame


def level_evidence(nodes: pd.DataFrame, index: pd.MultiIndex) -> pd.Series:
    """Noisy-OR of one modality's node probabilities per (patient_id, side, level) of `index` (NaN where that
    modality scored no node there). `nodes`: patient_id, side, level, probability."""
    lateral = nodes[nodes["level"].isin(LATERAL_LEVELS) & nodes["probability"].notna()]
    keys = [lateral["patient_id"], lateral["side"], lateral["level"]]
    return (1 - (1 - lateral["probability"]).groupby(keys).prod()).reindex(index)  # vectorised noisy-OR


def level_index(side_index: pd.MultiIndex) -> pd.MultiIndex:
    """Every lateral level (II-V) of every (patient_id, side)."""
    rows = [(p, s, lv) for p, s in side_index for lv in LATERAL_LEVELS]
    return pd.MultiIndex.from_tuples(rows, names=["patient_id", "side", "level"])


def level_labels(nodes: pd.DataFrame, side_labels: pd.Series | None, index: pd.MultiIndex) -> pd.Series:
    """1 where a node at that side and level is recorded metastatic; 0 where none is and the side's lateral
    status is recorded (a negative side, or a positive side whose metastases lie at other levels); NaN else."""
    labelled = nodes.dropna(subset=["metastatic"]) if "metastatic" in nodes else nodes.iloc[:0]
    positive = labelled[labelled["metastatic"].astype(float) == 1]
    hit = set(zip(positive["patient_id"], positive["side"], positive["level"]))
    y = pd.Series([1.0 if key in hit else np.nan for key in index], index=index)
    if side_labels is not None:
        known = side_labels.reindex(pd.MultiIndex.from_arrays([index.get_level_values(0), index.get_level_values(1)]))
        y = y.where(y.notna() | known.isna().to_numpy(), 0.0)
    return y
