"""What a submitted case may hold, checked before anything is written: the patient's clinical values and, per lateral
neck node, its side, level and one or two ultrasound views (uploaded files named in the case)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..cohort.schema import LEVELS, SIDES

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
UID_PATTERN = r"^[0-9]+(\.[0-9]+)*$"
MAX_NODES = 32
# Magic numbers of the image and clip formats the service accepts; anything else is refused with 415.
IMAGE_KINDS = {"png": (0, b"\x89PNG\r\n\x1a\n"), "jpg": (0, b"\xff\xd8\xff"), "dcm": (128, b"DICM")}
CLIP_KINDS = {"mp4": (4, b"ftyp"), "avi": (8, b"AVI "), "mkv": (0, b"\x1a\x45\xdf\xa3"), "dcm": (128, b"DICM")}


class NodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node_id: str | None = Field(None, pattern=ID_PATTERN, description="Node label (default: N01, N02, ...)")
    side: Literal[SIDES]
    level: Literal[LEVELS]
    images: list[str] = Field(default_factory=list, max_length=2,
                              description="Names of the uploaded files holding this node's views (one or two)")
    pixel_spacing_mm: float | None = Field(None, gt=0.005, le=2.0,
                                           description="Pixel size of the views when the files do not state it")
    clip: str | None = Field(None, description="Name of the uploaded cine clip of a sweep through this node "
                                               "(MP4/AVI/MKV or multi-frame DICOM)")
    clip_box: tuple[float, float, float, float] | None = Field(
        None, description="The node's box X0, Y0, X1, Y1 in pixels of the clip's key frame (default: whole frame)")
    clip_key_frame: int | None = Field(None, ge=0, description="Frame (0-based) where the box was drawn (default: "
                                                               "the middle one)")
    clip_pixel_spacing_mm: float | None = Field(None, gt=0.005, le=2.0,
                                                description="Pixel size of the clip when the file does not state it")

    @model_validator(mode="after")
    def _box_is_a_box(self) -> "NodeIn":
        box = self.clip_box
        if box is not None and not (box[2] > box[0] >= 0 and box[3] > box[1] >= 0):
            raise ValueError("clip_box must be X0, Y0, X1, Y1 with X1 > X0 >= 0 and Y1 > Y0 >= 0")
        return self


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


def image_kind(data: bytes, kinds: dict = IMAGE_KINDS) -> str | None:
    """png, jpg or dcm (or, with CLIP_KINDS, a clip container) from the file's first bytes; None for others."""
    for kind, (offset, magic) in kinds.items():
        if data[offset:offset + len(magic)] == magic:
            return kind
    return None
