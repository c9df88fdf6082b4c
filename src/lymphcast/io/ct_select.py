"""Choose, from the series of one CT study, the one the CT model reads, and its dual-energy companions.

The conventional series must be CT, axial, kind `conventional` and have at least `min_slices` files. Among those,
ties are broken in this order (first difference wins):
  1. contrast-enhanced before not stated before unenhanced (`contrast` True / None / False);
  2. phase in `SeriesRule.phases` order (arterial first by default);
  3. ORIGINAL before DERIVED (a reformat or MIP is a second-hand copy);
  4. soft/standard kernel before unknown before sharp (bone/lung kernels change HU texture more than
     thickness does, so a kernel mismatch weighs more than a thicker slice);
  5. thinnest SliceThickness (missing thickness last);
  6. more slices (wider coverage).
Dual-energy companions (iodine map, lowest-keV VMI) must share the conventional series' FrameOfReferenceUID
(or, when either lacks one, its StudyInstanceUID), so they lie in the same patient coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lymphcast.cohort.errors import LymphCastError

from .ct_series import SeriesInfo

_KERNEL_RANK = {"soft": 0, "unknown": 1, "sharp": 2}
_CONTRAST_RANK = {True: 0, None: 1, False: 2}


@dataclass(frozen=True)
class SeriesRule:
    phases: tuple[str, ...] = ("arterial", "venous", "unknown", "unenhanced")
    require_axial: bool = True
    min_slices: int = 1
    max_vmi_kev: float = 70.0            # a "low-keV" VMI: above this it adds little over the conventional series
    require_contrast: bool = False       # True: an unenhanced-only study has no usable series


@dataclass(frozen=True)
class StudySeries:
    conventional: SeriesInfo
    iodine: SeriesInfo | None = None
    vmi_low: SeriesInfo | None = None

    def get(self, channel: str) -> SeriesInfo | None:
        if channel not in ("conventional", "iodine", "vmi_low"):
            raise LymphCastError(f"unknown CT channel '{channel}'; expected conventional, iodine or vmi_low")
        return getattr(self, channel)


def choose_series(series: Sequence[SeriesInfo], rule: SeriesRule = SeriesRule()) -> StudySeries:
    """The conventional series to read plus its iodine map and low-keV VMI when the study has them."""
    candidates = [s for s in series if _why_not(s, rule) is None]
    if not candidates:
        where = _where(series)
        found = "\n".join(f"  - {s}: {_why_not(s, rule)}" for s in series) or "  (no image series at all)"
        skipped = getattr(series, "skipped", [])
        if skipped:
            found += f"\n  ({len(skipped)} files skipped as not images, e.g. {skipped[0]})"
        raise LymphCastError(f"CT study {where}: no series fits the model (expected an axial conventional CT series"
                             f"{', contrast-enhanced' if rule.require_contrast else ''} with at least "
                             f"{rule.min_slices} slices); series found:\n{found}")
    best = min(candidates, key=lambda s: _rank(s, rule))
    companions = [s for s in series if s is not best and _same_space(s, best) and (s.axial or not rule.require_axial)]
    iodines = [s for s in companions if s.kind == "iodine"]
    vmis = [s for s in companions if s.kind == "vmi" and s.kev is not None and s.kev <= rule.max_vmi_kev]
    iodine = min(iodines, key=lambda s: _companion_rank(s, best)) if iodines else None
    vmi = min(vmis, key=lambda s: (s.kev, *_companion_rank(s, best))) if vmis else None
    return StudySeries(conventional=best, iodine=iodine, vmi_low=vmi)


def _why_not(s: SeriesInfo, rule: SeriesRule) -> str | None:
    """None when the series can be the conventional one, else the reason it cannot."""
    if s.modality.upper() != "CT":
        return f"modality {s.modality or 'missing'}, not CT"
    if s.kind != "conventional":
        return f"a {s.kind} series"
    if rule.require_axial and not s.axial:
        return "not axial (ImageOrientationPatient)"
    if any(f.frames != 1 for f in s.slices):
        return "multi-frame (Enhanced CT), which read_series does not support"
    if len(s.slices) < rule.min_slices:
        return f"only {len(s.slices)} slices"
    if rule.require_contrast and s.contrast is not True:
        return "not contrast-enhanced"
    if s.phase not in rule.phases:
        return f"phase {s.phase} not in {rule.phases}"
    return None


def _rank(s: SeriesInfo, rule: SeriesRule) -> tuple:
    thickness = s.slice_thickness_mm if s.slice_thickness_mm is not None else float("inf")
    return (_CONTRAST_RANK[s.contrast], rule.phases.index(s.phase), s.derived, _KERNEL_RANK[s.kernel_class],
            thickness, -len(s.slices), str(s.folder))


def _same_space(s: SeriesInfo, ref: SeriesInfo) -> bool:
    if s.frame_of_reference_uid and ref.frame_of_reference_uid:
        return s.frame_of_reference_uid == ref.frame_of_reference_uid
    return bool(s.study_uid) and s.study_uid == ref.study_uid


def _companion_rank(s: SeriesInfo, ref: SeriesInfo) -> tuple:
    """Closest slice thickness to the conventional series, then the same phase, then more slices."""
    a, b = s.slice_thickness_mm, ref.slice_thickness_mm
    return (abs(a - b) if a is not None and b is not None else float("inf"), s.phase != ref.phase, -len(s.slices),
            str(s.folder))


def _where(series: Sequence[SeriesInfo]) -> str:
    folders = {str(s.folder.parent) for s in series}
    return folders.pop() if len(folders) == 1 else ", ".join(sorted(folders)) or "(empty)"
