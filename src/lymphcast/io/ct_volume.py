"""Read one CT series into a float32 volume with its patient geometry (SimpleITK, GDCM underneath).

Slices are ordered by geometry, not by file name or InstanceNumber: each ImagePositionPatient is projected on
the slice normal (row cosines x column cosines) and sorted ascending, so the volume's third axis runs along
+normal. Geometry is then set from the headers (origin = first position, direction = [row, column, normal],
spacing = (column spacing, row spacing, mean step)) rather than trusting the reader's guess. Pixel values are
stored * RescaleSlope + RescaleIntercept, per slice (GDCM applies it): HU, or mg/mL for an iodine map.
A stack that is sheared along the slices (gantry tilt), has a gap (a step over 1.5x the median step),
two slices at one position, or mixed sizes/orientations/pixel spacings is refused with a LymphCastError.
Compressed transfer syntaxes (JPEG, JPEG-LS, JPEG 2000, RLE, Deflated) are decoded by GDCM.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lymphcast.cohort.errors import LymphCastError

from .ct_series import SeriesInfo, SliceHeader

_GAP_FACTOR = 1.5        # a step this many times the median step means slices are missing
_TILT_TOLERANCE_MM = 0.01  # in-plane drift of positions, per mm along the normal, tolerated as rounding


@dataclass
class CtVolume:
    """A CT volume: `array` (z, y, x) float32 indexed [slice, row, column]; geometry in SimpleITK order (x, y, z)."""

    array: np.ndarray
    spacing: tuple[float, float, float]     # mm: along a row (column step), down a column (row step), between slices
    origin: tuple[float, float, float]      # LPS mm of voxel [0, 0, 0]'s centre
    direction: tuple[float, ...]            # 3x3 row-major: columns are the row, column and slice-normal cosines
    series: SeriesInfo | None = None
    unit: str = "HU"                        # "HU", or "mg/mL" for an iodine map
    _image: object = field(default=None, repr=False, compare=False)

    def image(self):
        """The volume as a SimpleITK image (built once, then cached)."""
        if self._image is None:
            import SimpleITK as sitk

            img = sitk.GetImageFromArray(np.ascontiguousarray(self.array, dtype=np.float32))
            img.SetSpacing(self.spacing)
            img.SetOrigin(self.origin)
            img.SetDirection(self.direction)
            self._image = img
        return self._image

    def index_to_lps(self, index_xyz) -> np.ndarray:
        """LPS mm of a continuous voxel index given as (x=column, y=row, z=slice)."""
        d = np.asarray(self.direction, dtype=float).reshape(3, 3)
        return np.asarray(self.origin) + d @ (np.asarray(index_xyz, dtype=float) * np.asarray(self.spacing))


def read_series(info: SeriesInfo) -> CtVolume:
    """Decode every file of `info` into one volume; see the module notes for what is refused."""
    import SimpleITK as sitk

    folder = info.folder
    ordered, spacing, direction = _geometry(info)
    reader = sitk.ImageSeriesReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileNames([str(s.path) for s in ordered])
    reader.SetOutputPixelType(sitk.sitkFloat32)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        syntaxes = sorted({s.transfer_syntax for s in ordered})
        detail = str(exc).strip().splitlines()[-1]
        raise LymphCastError(f"CT series {folder}: pixel data cannot be decoded (transfer syntax "
                             f"{', '.join(syntaxes)}): {detail}") from None
    array = sitk.GetArrayFromImage(image).astype(np.float32, copy=False)
    first = ordered[0]
    expected = (len(ordered), first.rows, first.columns)
    if array.shape != expected:
        raise LymphCastError(f"CT series {folder}: decoded {array.shape} voxels, expected {expected} "
                             "(slices x rows x columns) from the headers")
    unit = "mg/mL" if info.kind == "iodine" else "HU"
    return CtVolume(array=array, spacing=spacing, origin=tuple(float(v) for v in first.position),
                    direction=tuple(float(v) for v in direction.ravel()), series=info, unit=unit)


def _geometry(info: SeriesInfo):
    """(slices sorted along the normal, spacing (x, y, z), 3x3 direction with columns row/col/normal)."""
    folder, slices = info.folder, list(info.slices)
    if not slices:
        raise LymphCastError(f"CT series {folder}: holds no image files")
    for s in slices:
        missing = [n for n, v in (("ImagePositionPatient", s.position), ("ImageOrientationPatient", s.orientation),
                                  ("PixelSpacing", s.pixel_spacing)) if v is None]
        if missing:
            raise LymphCastError(f"CT series {folder}: {s.path.name} lacks {', '.join(missing)}; "
                                 "expected the geometry of every slice")
        if s.frames != 1:
            raise LymphCastError(f"CT series {folder}: {s.path.name} holds {s.frames} frames; expected one slice "
                                 "per file (multi-frame Enhanced CT is not supported)")
    _check_same(folder, slices, "size (Rows x Columns)", lambda s: (s.rows, s.columns), exact=True)
    _check_same(folder, slices, "ImageOrientationPatient", lambda s: s.orientation)
    _check_same(folder, slices, "PixelSpacing", lambda s: s.pixel_spacing)
    o = np.asarray(slices[0].orientation, dtype=float)
    row, col = o[:3] / np.linalg.norm(o[:3]), o[3:] / np.linalg.norm(o[3:])
    normal = np.cross(row, col)
    direction = np.stack([row, col, normal], axis=1)
    where = np.array([np.dot(s.position, normal) for s in slices])
    order = np.argsort(where, kind="stable")
    slices, where = [slices[i] for i in order], where[order]
    row_mm, col_mm = slices[0].pixel_spacing  # DICOM: (between rows, between columns)
    if len(slices) == 1:
        thickness = info.slice_thickness_mm
        return slices, (col_mm, row_mm, float(thickness) if thickness and thickness > 0 else 1.0), direction
    steps = np.diff(where)
    dup = int(np.argmin(steps))
    if steps[dup] < 1e-3 * max(1.0, float(np.median(steps))):
        raise LymphCastError(f"CT series {folder}: {slices[dup].path.name} and {slices[dup + 1].path.name} lie at "
                             f"the same position ({where[dup]:.3f} mm along the slice normal); expected one file "
                             "per slice position (duplicated slice or two series mixed)")
    _check_tilt(folder, slices, where, normal)
    median = float(np.median(steps))
    gap = int(np.argmax(steps))
    if steps[gap] > _GAP_FACTOR * median:
        missing = int(round(steps[gap] / median)) - 1
        raise LymphCastError(f"CT series {folder}: about {missing} slice(s) missing between "
                             f"{slices[gap].path.name} ({where[gap]:.2f} mm) and {slices[gap + 1].path.name} "
                             f"({where[gap + 1]:.2f} mm): step {steps[gap]:.2f} mm, expected {median:.2f} mm")
    if steps.min() < median / _GAP_FACTOR:
        i = int(np.argmin(steps))
        raise LymphCastError(f"CT series {folder}: irregular slice spacing: {slices[i].path.name} and "
                             f"{slices[i + 1].path.name} are {steps[i]:.2f} mm apart, expected {median:.2f} mm")
    step = float((where[-1] - where[0]) / (len(where) - 1))
    return slices, (col_mm, row_mm, step), direction


def _check_same(folder: Path, slices: list[SliceHeader], what: str, key, exact: bool = False) -> None:
    ref = key(slices[0])
    for s in slices[1:]:
        value = key(s)
        same = value == ref if exact else np.allclose(value, ref, atol=1e-4)
        if not same:
            raise LymphCastError(f"CT series {folder}: mixed {what}: {slices[0].path.name} has {ref}, "
                                 f"{s.path.name} has {value}; expected one value across the series")


def _check_tilt(folder: Path, slices: list[SliceHeader], where: np.ndarray, normal: np.ndarray) -> None:
    """Refuse a stack whose positions drift in-plane from slice to slice (a gantry-tilted acquisition)."""
    p = np.array([s.position for s in slices], dtype=float)
    along = where - where[0]
    drift = (p - p[0]) - np.outer(along, normal)
    size = np.linalg.norm(drift, axis=1)
    worst = int(np.argmax(size))
    if size[worst] > _TILT_TOLERANCE_MM * max(abs(along[worst]), 1.0) + 1e-3:
        angle = float(np.degrees(np.arctan2(size[worst], abs(along[worst]))))
        raise LymphCastError(f"CT series {folder}: slice positions are sheared by {angle:.1f} degrees from the "
                             "slice normal (gantry tilt, GantryDetectorTilt); expected slices stacked straight along "
                             "the normal - reconstruct the series without tilt or resample it first")
