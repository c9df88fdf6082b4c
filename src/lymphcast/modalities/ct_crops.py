"""Node-centred CT crops for the CT model: each patient's study is read once (the series chosen by rule), and
every node listed with a centre gets a cube of `size` voxels at `spacing_mm`, one channel per input kind
(the conventional series in HU, and the iodine map in mg/mL where the study is dual-energy).

Crops are kept as float16 (2,400 nodes x 2 channels x 32^3 are 300 MB instead of 600); the values they hold
(HU to +-3,000, iodine to 0.01 mg/mL) survive that rounding well within the scanner's own noise.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..cohort import Cohort, LymphCastError
from .us_regions import nodes_with

STUDY_COLUMN = "ct_file"
CENTRE_COLUMNS = ("ct_x_mm", "ct_y_mm", "ct_z_mm")
CHANNELS = ("conventional", "iodine")
# Crops already read, per study: evaluating a model asks for the same nodes several times (patients, sides,
# levels, the fusion's inputs), and reading a study's DICOM headers costs far more than its crops take to keep.
# A study's key holds every file's size and modification time, so a study changed on disk is read again.
CACHE_BYTES = 256 * 2 ** 20
_cache: OrderedDict = OrderedDict()


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
            centres = nodes.iloc[rows][list(CENTRE_COLUMNS)].to_numpy(float)
            volumes[rows], present[rows] = _study_crops(cohort.media_path(str(ref).strip()), centres, size,
                                                        float(spacing_mm), tuple(channels))
            bar.advance(task)
    return Crops(pd.Index(nodes["node_id"], name="node_id"), volumes, present)


def _files_signature(path) -> tuple:
    """(name, size, mtime) of every file under a study folder (or of the file itself; none where it is missing:
    read_study then says so)."""
    if not os.path.exists(path):
        return ()
    if not os.path.isdir(path):
        st = os.stat(path)
        return ((str(path), st.st_size, st.st_mtime_ns),)
    out = []
    for folder, _, files in os.walk(path):
        for name in files:
            st = os.stat(os.path.join(folder, name))
            out.append((os.path.join(folder, name), st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))


def _study_crops(path, centres: np.ndarray, size: int, spacing_mm: float, channels: tuple) -> tuple:
    """(crops (n, C, s, s, s) float16, present (C,)) of one study's nodes, from the cache when the same study,
    centres and settings were read before."""
    from ..io.ct_crop import read_study

    key = (str(path), _files_signature(path), centres.tobytes(), size, spacing_mm, channels)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    crops, has = read_study(path).crops(centres, size=size, spacing_mm=spacing_mm, channels=channels)
    value = (crops.astype(np.float16), has)
    _cache[key] = value
    while sum(v[0].nbytes for v in _cache.values()) > CACHE_BYTES:
        _cache.popitem(last=False)
    return value
