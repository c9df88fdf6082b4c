"""The cohort format: cohort.yaml as a pydantic model and the column lists of the three tables.

A cohort is one folder:
    cohort.yaml     name, schema version, centres (with acquisition profiles), clinical field declarations
    patients.csv    one row per patient: patient_id, centre, n1b (0/1/blank), lateral_left/right, clinical fields
    nodes.csv       one row per lateral (or central) neck lymph node: node_id, patient_id, side, level, metastatic,
                    plus media references in columns ending with `_file` (paths relative to the folder;
                    several files separated by ';') and node fields declared in cohort.yaml
    cytology.csv    one row per cytology image of the primary tumour: image_id, patient_id, image_file, and
                    optionally kind (slide/field), microns_per_pixel and stain (CYTOLOGY_FIELDS)
    media/          the images, clips and volumes the tables point to
    truth/          synthetic cohorts only: the generator's exact risks; no model reads it
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .fields import FieldSpec

SCHEMA_VERSION = 1

PATIENT_COLUMNS = ("patient_id", "centre", "n1b")
OPTIONAL_PATIENT_LABELS = ("lateral_left", "lateral_right")
NODE_COLUMNS = ("node_id", "patient_id", "side", "level", "metastatic")
CYTOLOGY_COLUMNS = ("image_id", "patient_id", "image_file")
# Optional cytology.csv columns: what the file is, its pixel size when the file does not carry one (a camera's PNG;
# a slide's TIFF states its own) and the stain (the model normalises colour whatever it is; the measurement reader
# counts tall cells by another rule in Diff-Quik smears, whose dense cytoplasm takes the nuclei's purple).
CYTOLOGY_FIELDS = {
    "kind": FieldSpec(type="category", description="a whole slide (scanned) or a field photographed at the "
                      "microscope", values=("slide", "field")),
    "microns_per_pixel": FieldSpec(type="number", description="pixel size of the image at full resolution",
                                   unit="um", min=0.05, max=20.0),
    "stain": FieldSpec(type="category", description="stain of the smear (Diff-Quik changes how tall cells are counted)",
                       values=("Pap", "Diff-Quik", "other")),
}
SIDES = ("left", "right")
LEVELS = ("II", "III", "IV", "V", "VI")
LATERAL_LEVELS = ("II", "III", "IV", "V")
MEDIA_SUFFIX = "_file"
TABLE_FILES = ("patients.csv", "nodes.csv", "cytology.csv")


class Centre(BaseModel):
    """A contributing hospital; `acquisition` holds its scanner/stain profile for renderers and reports."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = ""
    acquisition: dict[str, Any] = Field(default_factory=dict)


class CohortMeta(BaseModel):
    """Contents of cohort.yaml."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    schema_version: int = SCHEMA_VERSION
    description: str = ""
    synthetic: bool = False
    centres: tuple[Centre, ...] = Field(min_length=1)
    # Standard field names may map to null (their built-in spec); other names need a full spec.
    clinical_fields: dict[str, FieldSpec | None] = Field(default_factory=dict)
    node_fields: dict[str, FieldSpec] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(f"this LymphCast reads schema_version {SCHEMA_VERSION}, not {v}")
        return v

    @field_validator("centres")
    @classmethod
    def _unique_centres(cls, v: tuple[Centre, ...]) -> tuple[Centre, ...]:
        ids = [c.id for c in v]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"centre ids must be unique; repeated: {', '.join(dupes)}")
        return v

    @property
    def centre_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.centres)
