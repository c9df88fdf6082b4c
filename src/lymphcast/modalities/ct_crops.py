"""Node-centred CT crops for the CT model: each patient's study is read once (the series chosen by rule), and
every node listed with a centre gets a cube of `size` voxels at `spacing_mm`, one channel per input kind
(the conventional series in HU, and the iodine map in mg/mL where the study is dual-energy).

Crops are kept as float16 (2,400 nodes x 2 channels x 32^3 are 300 MB instead of 600); the values they hold
(HU to +-3,000, iodine to 0.01 mg/mL) survive that rounding well within the scanner's own noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..cohort import Cohort, LymphCastError
from .us_regions import nodes_with

STUDY_COLUMN = "ct_file"
CENTRE_COLUMNS = ("ct_x_mm", "ct_y_mm", "ct_z_mm")
CHANNELS = ("conventional", "iodine")


@dataclass(frozen=True)
class Crops:
    node_ids: pd.Index         # node_id of each row
    volumes: np.ndarray        # (n, C, s, s, s) float16: HU, mg/mL
    present: np.ndarray        # (n, C) bool: the channel exists in that node's study

    def __len__(self) -> int:
        return len(self.node_ids)


def ct_nodes(cohort: Cohort) -> pd.DataFrame:
    """The cohort's nodes that have a CT study and a centre in it."""
    nodes = nodes_with(cohort, STUDY_COLUMN)
    if not len(nodes):
        return nodes
    missing = [c for c in CENTRE_COLUMNS if c not in nodes.columns]
    if missing:
        raise LymphCastError(f"{cohort.root}/nodes.csv: column {STUDY_COLUMN} is filled but "
                             f"{', '.join(missing)} (the node centre in the CT study, mm) is missing")
    blank = nodes[list(CENTRE_COLUMNS)].isna().any(axis=1)
    if blank.any():
        first = nodes.loc[blank, "node_id"].iloc[0]
        raise LymphCastError(f"{cohort.root}/nodes.csv: node {first} has a CT study but no centre "
                             f"({', '.join(CENTRE_COLUMNS)} must all be numbers, mm in patient coordinates)")
    return nodes


def node_crops(cohort: Cohort, *, size: int, spacing_mm: float, channels=CHANNELS,
               progress: bool = True) -> Crops:
    """Crops of every node with a CT study, in nodes.csv order."""
    from rich.progress import Progress

    from ..io.ct_crop import read_study

    if cohort.root is None:
        raise LymphCastError("the ct model reads CT studies, so the cohort must come from a folder")
    nodes = ct_nodes(cohort)
    n = len(nodes)
    volumes = np.zeros((n, len(channels), size, size, size), np.float16)
    present = np.zeros((n, len(channels)), bool)
    groups = list(nodes.groupby(STUDY_COLUMN, sort=False).indices.items()) if n else []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("reading CT studies", total=len(groups))
        for ref, rows in groups:
            study = read_study(cohort.media_path(str(ref).strip()))
            centres = nodes.iloc[rows][list(CENTRE_COLUMNS)].to_numpy(float)
            crops, has = study.crops(centres, size=size, spacing_mm=spacing_mm, channels=tuple(channels))
            volumes[rows] = crops.astype(np.float16)
            present[rows] = has
            bar.advance(task)
    return Crops(pd.Index(nodes["node_id"], name="node_id"), volumes, present)
