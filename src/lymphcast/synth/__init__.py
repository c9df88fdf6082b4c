"""Synthetic multi-centre PTC cohorts with exact risks: latent patient/node model, centre profiles, renderers."""

from .generate import generate_cohort
from .render_base import Rendered, Renderer
from .renderers import available_renderers, register_renderer

__all__ = ["generate_cohort", "Rendered", "Renderer", "available_renderers", "register_renderer"]
