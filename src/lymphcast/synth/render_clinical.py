"""The `clinical` renderer: the recorded clinical table (standard field names, blanks where not recorded)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .centres import CentreProfile
from .chunk import Chunk
from .clinical import SIDE_NAMES
from .render_base import Rendered, Renderer

BINARY = ("multifocal", "bilateral", "extrathyroidal_extension", "upper_pole", "capsular_contact",
          "microcalcification", "braf_v600e", "hashimoto", "palpable_adenopathy")
FIELDS = ("age", "sex", "tumour_size_mm", "tumour_side", "multifocal", "bilateral", "extrathyroidal_extension",
          "upper_pole", "capsular_contact", "microcalcification", "braf_v600e", "hashimoto", "tsh_miu_l",
          "palpable_adenopathy")


def render_clinical(chunk: Chunk, out_dir: Path, centres: Sequence[CentreProfile],
                    rng: np.random.Generator) -> Rendered:
    x = chunk.recorded
    columns = {
        "age": x["age"].astype(int),
        "sex": np.where(x["male"] == 1, "M", "F"),
        "tumour_size_mm": x["tumour_size_mm"],
        "tumour_side": np.asarray(SIDE_NAMES)[x["tumour_side"]],
        **{name: pd.array(x[name], dtype="Float64").astype("Int64") for name in BINARY},
        "tsh_miu_l": x["tsh_miu_l"],
    }
    return Rendered(patients={name: columns[name] for name in FIELDS})


CLINICAL = Renderer("clinical", render_clinical, clinical_fields=FIELDS)
