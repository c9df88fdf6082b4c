"""Node-centred crops of a CT study, resampled to isotropic voxels in patient (LPS) axes.

Axis convention of every crop (and of `resample_isotropic`): the output grid has identity direction, so the
array (z, y, x) is indexed [axis 0, axis 1, axis 2] =
  axis 0: patient z, index increasing inferior -> superior (towards the head),
  axis 1: patient y, index increasing anterior -> posterior,
  axis 2: patient x, index increasing patient's right -> patient's left,
whatever the orientation or slice order of the source series. A 2-D slice crop[k] is therefore an axial image
in the usual radiological display (anterior at the top, the patient's right on the viewer's left), and the node
centre falls on voxel [size // 2, size // 2, size // 2]. Voxels outside the scanned volume get `fill`
(-1024 HU, air, by default; 0 mg/mL for an iodine map). Interpolation is linear (sitk.Resample).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lymphcast.cohort.errors import LymphCastError

from .ct_select import SeriesRule, StudySeries, choose_series
from .ct_series import scan_study
from .ct_volume import CtVolume, read_series

AIR_HU = -1024.0


def default_fill(volume: CtVolume) -> float:
    return 0.0 if volume.unit == "mg/mL" else AIR_HU


def node_crop(volume: CtVolume, centre_lps_mm, *, size: int = 32, spacing_mm: float = 1.0,
              fill: float | None = None) -> np.ndarray:
    """A (size, size, size) float32 cube of side size*spacing_mm centred on `centre_lps_mm` (LPS, mm)."""
    import SimpleITK as sitk

    centre = np.asarray(centre_lps_mm, dtype=float).reshape(-1)
    if centre.shape != (3,) or not np.isfinite(centre).all():
        raise LymphCastError(f"node centre {centre_lps_mm!r} is not three finite LPS coordinates in mm")
    if size < 1 or not spacing_mm > 0:
        raise LymphCastError(f"crop size {size} and spacing {spacing_mm} mm must both be positive")
    origin = centre - (size // 2) * spacing_mm  # identity direction: voxel size//2 lies on the centre
    out = sitk.Resample(volume.image(), [size] * 3, sitk.Transform(), sitk.sitkLinear, origin.tolist(),
                        [float(spacing_mm)] * 3, np.eye(3).ravel().tolist(),
                        default_fill(volume) if fill is None else float(fill), sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)


def resample_isotropic(volume: CtVolume, spacing_mm: float = 1.0, *, fill: float | None = None) -> CtVolume:
    """The whole volume on an isotropic grid in LPS axes (same convention as the crops), covering its extent."""
    import SimpleITK as sitk

    image = volume.image()
    corners = [volume.index_to_lps(np.array(c) * (np.array(image.GetSize()) - 1))
               for c in np.ndindex(2, 2, 2)]
    low, high = np.min(corners, axis=0), np.max(corners, axis=0)
    size = [int(n) for n in np.floor((high - low) / spacing_mm + 1e-6) + 1]
    out = sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, low.tolist(), [float(spacing_mm)] * 3,
                        np.eye(3).ravel().tolist(), default_fill(volume) if fill is None else float(fill),
                        sitk.sitkFloat32)
    return CtVolume(array=sitk.GetArrayFromImage(out), spacing=(float(spacing_mm),) * 3,
                    origin=tuple(float(v) for v in low), direction=tuple(np.eye(3).ravel().tolist()),
                    series=volume.series, unit=volume.unit)


@dataclass
class CtStudy:
    """The chosen series of one study; each volume is read on first use and kept for the life of the object."""

    path: Path
    series: StudySeries
    skipped: list[str] = field(default_factory=list)   # files of the study that are not images ('path: why')
    _volumes: dict = field(default_factory=dict, repr=False)

    def volume(self, channel: str) -> CtVolume | None:
        info = self.series.get(channel)
        if info is None:
            return None
        if channel not in self._volumes:
            self._volumes[channel] = read_series(info)
        return self._volumes[channel]

    def crops(self, centres, size: int = 32, spacing_mm: float = 1.0,
              channels: tuple[str, ...] = ("conventional", "iodine")) -> tuple[np.ndarray, np.ndarray]:
        """(crops (n, C, size, size, size) float32, present (C,) bool); a missing channel is zeros, present False."""
        centres = np.asarray(centres, dtype=float).reshape(-1, 3)
        out = np.zeros((len(centres), len(channels), size, size, size), dtype=np.float32)
        present = np.zeros(len(channels), dtype=bool)
        for c, channel in enumerate(channels):
            volume = self.volume(channel)
            if volume is None:
                continue
            present[c] = True
            for i, centre in enumerate(centres):
                out[i, c] = node_crop(volume, centre, size=size, spacing_mm=spacing_mm)
        return out, present


def read_study(path: str | Path, rule: SeriesRule = SeriesRule()) -> CtStudy:
    """Scan a study folder, choose its series (see ct_select) and return a CtStudy that reads them lazily."""
    found = scan_study(path)
    return CtStudy(path=Path(path), series=choose_series(found, rule), skipped=list(found.skipped))
