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


# Full-field frames (one per patient side with nodes, several nodes each): the node's box in its frame, which is
# named by the `us_frame_file` media column (a `_file` column, so it needs no spec).
US_FRAME_NODE_FIELDS = {
    "us_frame_box_x0": _px("left edge of the node box in its full-field ultrasound frame"),
    "us_frame_box_y0": _px("top edge of the node box in its full-field ultrasound frame"),
    "us_frame_box_x1": _px("right edge (exclusive) of the node box in its full-field ultrasound frame"),
    "us_frame_box_y1": _px("bottom edge (exclusive) of the node box in its full-field ultrasound frame"),
    "us_frame_pixel_spacing_mm": FieldSpec(type="number", description="pixel spacing of the full-field frame "
                                           "(the centre's depth setting over its rows)", unit="mm", min=0.01, max=2.0),
    "us_frame_scale": FieldSpec(type="number", description="size at which the node is drawn in its frame relative "
                                "to its true size (1 = true size; below 1 only when the side's nodes do not fit)",
                                min=0.01, max=1.0),
}


# Cine clips (one per node, a probe sweep along the node's long axis; file in the `us_video_file` media column):
# frame rate, length, scale, and the frame an annotator would mark (largest section) with the node's box in it.
US_VIDEO_NODE_FIELDS = {
    "us_video_fps": FieldSpec(type="number", description="frame rate of the node's ultrasound clip", unit="frames/s",
                              min=1, max=1000),
    "us_video_frames": FieldSpec(type="number", description="number of frames in the node's ultrasound clip",
                                 min=1, max=10_000_000),
    "us_video_pixel_spacing_mm": FieldSpec(type="number", description="pixel spacing of the node's ultrasound clip",
                                           unit="mm", min=0.01, max=2.0),
    "us_video_key_frame": FieldSpec(type="number", description="frame of the clip where the node is marked "
                                    "(0-based; its largest section)", min=0, max=10_000_000),
    "us_video_box_x0": _px("left edge of the node box in the clip's key frame"),
    "us_video_box_y0": _px("top edge of the node box in the clip's key frame"),
    "us_video_box_x1": _px("right edge (exclusive) of the node box in the clip's key frame"),
    "us_video_box_y1": _px("bottom edge (exclusive) of the node box in the clip's key frame"),
}


# Contrast CT (one study per patient, in the `ct_file` media column: the study's folder, the same on each of the
# patient's nodes): where the node is, as DICOM patient coordinates (LPS: +x the patient's left, +y posterior,
# +z towards the head), so it is found in whichever series the study holds.
def _mm(axis: str, direction: str) -> FieldSpec:
    return FieldSpec(type="number", description=f"node centre, patient coordinate {axis} ({direction}) in the CT "
                     "study", unit="mm", min=-5000, max=5000)


CT_NODE_FIELDS = {"ct_x_mm": _mm("x", "towards the patient's left"), "ct_y_mm": _mm("y", "posterior"),
                  "ct_z_mm": _mm("z", "towards the head")}
