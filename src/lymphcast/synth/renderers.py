"""Registry of modality renderers. `clinical` is built in; image modalities register theirs later.

Names are the modality names the rest of LymphCast uses; asking for one that is known but not rendered yet,
or for an unknown one, is a user error with the list of what is available.
"""

from __future__ import annotations

from typing import Sequence

from ..cohort import LymphCastError
from ..cohort.values import did_you_mean
from ..modalities.registry import KNOWN
from .ct_renderer import CT
from .cyto_renderer import CYTOLOGY
from .render_base import Renderer
from .render_clinical import CLINICAL
from .us_cine import US_VIDEO
from .us_renderer import US_IMAGE

_RENDERERS: dict[str, Renderer] = {CLINICAL.name: CLINICAL, US_IMAGE.name: US_IMAGE, US_VIDEO.name: US_VIDEO,
                                   CT.name: CT, CYTOLOGY.name: CYTOLOGY}
# Rendered only when asked for by name: cine clips cost about 10 minutes and 1.9 GB per 1,000 patients on 2 cores,
# CT studies (one DICOM file per slice) about 0.3-0.5 s and 3-4 MB per patient, too much for a default run that
# most users want for images and tables; cytology (a 2048 x 2048 pyramidal slide and two field PNGs) about
# 0.6-0.7 s and 2-2.6 MB per patient.
ON_REQUEST = frozenset({"us_video", "ct", "cytology"})


def register_renderer(renderer: Renderer, *, replace: bool = False) -> None:
    if renderer.name not in KNOWN:
        raise ValueError(f"'{renderer.name}' is not a modality LymphCast knows ({', '.join(KNOWN)})")
    if renderer.name in _RENDERERS and not replace:
        raise ValueError(f"a renderer for '{renderer.name}' is already registered")
    _RENDERERS[renderer.name] = renderer


def available_renderers() -> tuple[str, ...]:
    """Modalities the generator can render now, in the canonical order."""
    return tuple(name for name in KNOWN if name in _RENDERERS)


def resolve_modalities(modalities: Sequence[str] | None) -> list[Renderer]:
    """Renderers for the requested names (None: all available except ON_REQUEST), in canonical order, without
    repeats."""
    if modalities is None:
        return [_RENDERERS[name] for name in available_renderers() if name not in ON_REQUEST]
    if isinstance(modalities, str):
        modalities = [modalities]
    for name in modalities:
        if name not in KNOWN:
            raise LymphCastError(f"unknown modality '{name}'{did_you_mean(name, KNOWN)}; known: {', '.join(KNOWN)}")
        if name not in _RENDERERS:
            raise LymphCastError(f"the synthetic generator cannot render '{name}' yet; available: "
                                 f"{', '.join(available_renderers())}")
    if not modalities:
        raise LymphCastError(f"no modality chosen; available: {', '.join(available_renderers())}")
    return [_RENDERERS[name] for name in KNOWN if name in set(modalities)]
