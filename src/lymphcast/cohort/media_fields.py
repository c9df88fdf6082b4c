"""Node columns that come with ultrasound node images, shared by the synthetic renderer and `import-images`,
so a model trains the same way on synthetic and on a hospital's own images."""

from __future__ import annotations

from .fields import FieldSpec

MAX_IMAGE_PX = 16384  # larger than any ultrasound frame; only guards against nonsense values


def _px(desc: str) -> FieldSpec:
    return FieldSpec(type="number", description=desc, unit="px", min=0, max=MAX_IMAGE_PX)


US_IMAGE_NODE_FIELDS = {
    "us_box_x0": _px("left edge of the node box in the first ultrasound view"),
    "us_box_y0": _px("top edge of the node box in the first ultrasound view"),
    "us_box_x1": _px("right edge (exclusive) of the node box in the first ultrasound view"),
    "us_box_y1": _px("bottom edge (exclusive) of the node box in the first ultrasound view"),
    "us_pixel_spacing_mm": FieldSpec(type="number", description="pixel spacing of the node's ultrasound views",
                                     unit="mm", min=0.01, max=2.0),
}
