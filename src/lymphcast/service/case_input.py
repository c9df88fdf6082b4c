"""What a submitted case may hold, checked before anything is written: the patient's clinical values and, per lateral
neck node, its side, level and one or two ultrasound views (uploaded files named in the case)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..cohort.schema import LEVELS, SIDES

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
UID_PATTERN = r"^[0-9]+(\.[0-9]+)*$"
MAX_NODES = 32
# Magic numbers of the image formats the service accepts; anything else is refused with 415.
IMAGE_KINDS = {"png": (0, b"\x89PNG\r\n\x1a\n"), "jpg": (0, b"\xff\xd8\xff"), "dcm": (128, b"DICM")}


class NodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node_id: str | None = Field(None, pattern=ID_PATTERN, description="Node label (default: N01, N02, ...)")
    side: Literal[SIDES]
    level: Literal[LEVELS]
    images: list[str] = Field(default_factory=list, max_length=2,
                              description="Names of the uploaded files holding this node's views (one or two)")
    pixel_spacing_mm: float | None = Field(None, gt=0.005, le=2.0,
                                           description="Pixel size of the views when the files do not state it")


class CaseIn(BaseModel):
    """One patient's case. `clinical` maps field names of the model card (age, sex, tumour_size_mm, ...) to values."""

    model_config = ConfigDict(extra="forbid")

    patient_id: str = Field(pattern=ID_PATTERN, description="The hospital's patient identifier (matches DICOM "
                                                            "PatientID and the FHIR Patient identifier)")
    clinical: dict[str, float | int | bool | str | None] = Field(default_factory=dict)
    nodes: list[NodeIn] = Field(default_factory=list, max_length=MAX_NODES)
    study_instance_uid: str | None = Field(None, pattern=UID_PATTERN, max_length=64)
    accession_number: str | None = Field(None, max_length=16)

    @field_validator("nodes")
    @classmethod
    def _unique_node_ids(cls, nodes: list[NodeIn]) -> list[NodeIn]:
        ids = [n.node_id for n in nodes if n.node_id]
        if len(ids) != len(set(ids)):
            raise ValueError("node_id values must be unique within a case")
        return nodes


def image_kind(data: bytes) -> str | None:
    """png, jpg or dcm from the file's first bytes; None for anything else."""
    for kind, (offset, magic) in IMAGE_KINDS.items():
        if data[offset:offset + len(magic)] == magic:
            return kind
    return None
