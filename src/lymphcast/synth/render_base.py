"""What a modality renderer is: a function from a simulated chunk to media files and extra table columns.

A renderer receives the chunk (latent features included), the cohort folder being written (media go under
media/<modality>/, referenced by paths relative to the folder in columns ending with `_file`), the centre
profiles (scanner and stain settings) and its own random generator, so its output is reproducible and does
not disturb the latent model's random stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..cohort import FieldSpec
from .centres import CentreProfile
from .chunk import Chunk


@dataclass(frozen=True)
class Rendered:
    patients: Mapping[str, Any] = field(default_factory=dict)  # extra patients.csv columns, one value per patient
    nodes: Mapping[str, Any] = field(default_factory=dict)     # extra nodes.csv columns, one value per node
    cytology: pd.DataFrame | None = None                       # cytology.csv rows: image_id, patient_id, image_file
    truth: Mapping[str, pd.DataFrame] = field(default_factory=dict)  # truth/<name> rows (synthetic truth only)


RenderFn = Callable[[Chunk, Path, Sequence[CentreProfile], np.random.Generator], Rendered]


@dataclass(frozen=True)
class Renderer:
    name: str
    render: RenderFn
    clinical_fields: tuple[str, ...] = ()                       # standard fields written (declared as null)
    node_fields: Mapping[str, FieldSpec] = field(default_factory=dict)  # node columns it adds, with their spec
