"""Modality names → model classes, and which exact synthetic risk is the oracle for each."""

from __future__ import annotations

from ..cohort import LymphCastError
from ..cohort.values import did_you_mean
from .base import ModalityModel

# Every modality the format knows; a later issue adds its model class to MODELS.
KNOWN = ("clinical", "us_image", "us_video", "ct", "cytology")

# The truth/ column an oracle comparison uses for a model built on one modality.
ORACLE_COLUMN = {"clinical": "risk_clinical", "us_image": "risk_us", "us_video": "risk_us", "ct": "risk_ct",
                 "cytology": "risk_cytology"}


def available() -> dict[str, type[ModalityModel]]:
    """Modalities that have a model in this version (imported here: keeps `import lymphcast` light)."""
    from .clinical import ClinicalModel
    from .ct import CtModel
    from .cytology import CytologyModel
    from .us_image import UsImageModel
    from .us_video import UsVideoModel

    return {"clinical": ClinicalModel, "us_image": UsImageModel, "us_video": UsVideoModel, "ct": CtModel,
            "cytology": CytologyModel}


def model_class(name: str) -> type[ModalityModel]:
    models = available()
    if name in models:
        return models[name]
    if name in KNOWN:
        raise LymphCastError(f"the '{name}' modality has no model in this version; available: "
                             f"{', '.join(models)}")
    raise LymphCastError(f"unknown modality '{name}'{did_you_mean(name, KNOWN)}; known: {', '.join(KNOWN)}")


def oracle_column(modalities) -> str:
    modalities = list(modalities)
    return ORACLE_COLUMN[modalities[0]] if len(modalities) == 1 else "risk_all"
