"""Find the CT series in a study folder: headers only (pydicom, stop_before_pixels), grouped by SeriesInstanceUID.

Each series is described by a `SeriesInfo` with what series selection needs: its kind (conventional, virtual
monoenergetic image `vmi`, `iodine` map, `localizer`, `other`), contrast phase, reconstruction kernel, slice
thickness, keV, and the geometry of every slice (so `read_series` need not read the headers again).
Files that are not DICOM, and DICOM objects that hold no image (structured reports such as dose reports,
presentation states), are skipped and named in `ScanResult.skipped`.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from lymphcast.cohort.errors import LymphCastError

KINDS = ("conventional", "vmi", "iodine", "localizer", "other")
PHASES = ("arterial", "venous", "unenhanced", "unknown")

# Descriptions are free text, so words are matched with boundaries ("art" must not match "partial").
_UNENHANCED = re.compile(r"\b(unenhanced|non[- ]?contrast|non[- ]?enhanced|without contrast|w/?o contrast|native|"
                         r"plain|nativ|nc)\b", re.I)
_ARTERIAL = re.compile(r"\b(arterial|art|angio|cta|early)\b", re.I)
_VENOUS = re.compile(r"\b(venous|portal|pv|portovenous|ven)\b", re.I)
_KEV = re.compile(r"(\d+(?:\.\d+)?)\s*kev\b", re.I)
_VMI_WORDS = re.compile(r"\b(vmi|mono[- ]?e|monoe|monoenergetic|mono[- ]?energetic|monochromatic|vmi\+)\b|\d\s*kev", re.I)
_IODINE_WORDS = re.compile(r"\b(iodine|iod|iodine[- ]?map|mg/?ml)\b", re.I)
_LOCALIZER_WORDS = re.compile(r"\b(localizer|localiser|scout|topogram|surview|scanogram)\b", re.I)
_OTHER_DE_WORDS = re.compile(r"\b(vnc|virtual non[- ]?contrast|z[- ]?eff|effective z|electron density|rho)\b", re.I)


@dataclass(frozen=True)
class SliceHeader:
    """Geometry of one file of a series, as its header states it."""

    path: Path
    position: tuple[float, float, float] | None      # ImagePositionPatient, LPS mm
    orientation: tuple[float, ...] | None            # ImageOrientationPatient (row cosines, column cosines)
    rows: int
    columns: int
    pixel_spacing: tuple[float, float] | None        # (between rows, between columns) mm, as DICOM orders it
    frames: int = 1
    transfer_syntax: str = ""


@dataclass(frozen=True)
class SeriesInfo:
    uid: str
    folder: Path                      # the folder holding the series' files (their common parent)
    slices: tuple[SliceHeader, ...]
    kind: str                         # one of KINDS
    phase: str                        # one of PHASES
    modality: str = ""
    study_uid: str = ""
    frame_of_reference_uid: str = ""
    description: str = ""
    image_type: tuple[str, ...] = ()
    derived: bool = False
    contrast: bool | None = None      # True: enhanced; False: stated unenhanced; None: nothing says
    kernel: str = ""
    kernel_class: str = "unknown"     # soft (soft tissue / standard), sharp (bone, lung, edge) or unknown
    slice_thickness_mm: float | None = None
    kev: float | None = None
    kvp: float | None = None
    series_number: int | None = None
    rescale_type: str = ""

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(s.path for s in self.slices)

    @property
    def axial(self) -> bool:
        """True when the slice normal is within ~25 degrees of the patient's head-feet axis."""
        o = self.slices[0].orientation if self.slices else None
        if o is None:
            return False
        normal_z = o[0] * o[4] - o[1] * o[3]
        return abs(normal_z) >= 0.9

    def __str__(self) -> str:
        thick = "?" if self.slice_thickness_mm is None else f"{self.slice_thickness_mm:g} mm"
        return (f"{self.folder.name}: '{self.description}' {self.modality} {self.kind}, {self.phase}, "
                f"{len(self.slices)} files, {thick}, kernel '{self.kernel}'")


class ScanResult(list):
    """A list of SeriesInfo, plus `skipped`: one line per file that is not an image ('path: why')."""

    def __init__(self, series=(), skipped=()):
        super().__init__(series)
        self.skipped: list[str] = list(skipped)


def scan_study(path: str | Path) -> ScanResult:
    """Series found under `path` (a folder, searched recursively, or one file: that file's series only)."""
    root = Path(path)
    if not root.exists():
        raise LymphCastError(f"CT study {root} does not exist; expected a folder of DICOM files or one DICOM file")
    files = [root] if root.is_file() else sorted(Path(d) / f for d, _, names in os.walk(root) for f in names)
    groups: dict[str, list] = {}
    result = ScanResult()
    for file in files:
        ds, why = _read_header(file)
        if ds is None:
            result.skipped.append(f"{file}: {why}")
            continue
        groups.setdefault(str(ds.get("SeriesInstanceUID", "") or f"no-uid:{file.parent}"), []).append((file, ds))
    if root.is_file() and groups:  # one file asked for: the rest of its series lies in the same folder
        uid = next(iter(groups))
        for file in sorted(p for p in root.parent.iterdir() if p.is_file() and p != root):
            with warnings.catch_warnings():  # siblings that are not ours may be malformed; only ours matter
                warnings.simplefilter("ignore")
                ds, _ = _read_header(file)
            if ds is not None and str(ds.get("SeriesInstanceUID", "")) == uid:
                groups[uid].append((file, ds))
    result.extend(_series_info(uid, members) for uid, members in groups.items())
    result.sort(key=lambda s: (s.series_number is None, s.series_number or 0, str(s.folder)))
    return result


def _read_header(file: Path):
    """(dataset, None) for an image file, else (None, why it was skipped)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(file, stop_before_pixels=True)
    except InvalidDicomError:
        return None, "not a DICOM file (no DICM preamble)"
    except Exception as exc:  # truncated or damaged files raise many types
        return None, f"unreadable DICOM header ({type(exc).__name__}: {exc})"
    if "Rows" not in ds or "Columns" not in ds:
        sop = getattr(ds.get("SOPClassUID"), "name", ds.get("SOPClassUID", "?"))
        return None, f"not an image ({sop}, modality {ds.get('Modality', '?')})"
    return ds, None


def _series_info(uid: str, members: list) -> SeriesInfo:
    file, ds = members[0]
    folders = {f.parent for f, _ in members}
    folder = Path(os.path.commonpath([str(f) for f in folders])) if len(folders) > 1 else file.parent
    image_type = tuple(str(v).upper() for v in _multi(ds.get("ImageType")))
    description = str(ds.get("SeriesDescription", "") or "")
    kernel = " ".join(str(v) for v in _multi(ds.get("ConvolutionKernel")))
    kind = _kind(ds, image_type, description)
    phase, contrast = _phase(ds, description)
    kev_match = _KEV.search(description) or _KEV.search(" ".join(image_type))
    return SeriesInfo(
        uid=uid, folder=folder, slices=tuple(_slice(f, d) for f, d in members), kind=kind, phase=phase,
        modality=str(ds.get("Modality", "") or ""), study_uid=str(ds.get("StudyInstanceUID", "") or ""),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "") or ""), description=description,
        image_type=image_type, derived=bool(image_type) and image_type[0] == "DERIVED", contrast=contrast,
        kernel=kernel, kernel_class=kernel_class(kernel), slice_thickness_mm=_float(ds.get("SliceThickness")),
        kev=float(kev_match.group(1)) if kev_match else None, kvp=_float(ds.get("KVP")),
        series_number=_int(ds.get("SeriesNumber")), rescale_type=str(ds.get("RescaleType", "") or ""))


def _kind(ds, image_type: tuple[str, ...], description: str) -> str:
    if "LOCALIZER" in image_type or _LOCALIZER_WORDS.search(description):
        return "localizer"
    if str(ds.get("Modality", "")).upper() != "CT":
        return "other"
    words = set(image_type)
    if "IODINE" in words or str(ds.get("RescaleType", "")).upper() in ("MGML", "MG/ML") \
            or _IODINE_WORDS.search(description):
        return "iodine"
    if words & {"VMI", "MONOENERGETIC", "MONO_E", "MONOE", "VMI_PLUS"} or _VMI_WORDS.search(description):
        return "vmi"
    if words & {"VNC", "Z_EFFECTIVE", "ZEFF", "EFFECTIVE_Z", "RHO", "ELECTRON_DENSITY"} \
            or _OTHER_DE_WORDS.search(description):
        return "other"
    return "conventional"


def _phase(ds, description: str) -> tuple[str, bool | None]:
    agent = str(ds.get("ContrastBolusAgent", "") or "").strip()
    text = " ".join([description, str(ds.get("ProtocolName", "") or ""), str(ds.get("ContrastBolusRoute", "") or "")])
    if _UNENHANCED.search(text):
        return "unenhanced", False
    phase = "arterial" if _ARTERIAL.search(text) else "venous" if _VENOUS.search(text) else "unknown"
    return phase, True if (agent or phase != "unknown") else None


def kernel_class(kernel: str) -> str:
    """soft (soft tissue / standard), sharp (bone, lung, edge, detail) or unknown, from vendor kernel names."""
    k = kernel.strip().upper()
    if not k:
        return "unknown"
    if re.search(r"BONE|LUNG|EDGE|SHARP|DETAIL|CHEST|HIGH|ULTRA", k):
        return "sharp"
    if re.search(r"SOFT|STANDARD|STND|SMOOTH|BODY|ABDOMEN|NECK", k):
        return "soft"
    siemens = re.match(r"^[A-Z][A-Z]?(\d{2})[A-Z]?\b", k)  # B30f, Br40, Qr40, I31s, Hr64: number = sharpness
    canon = re.match(r"^FC(\d{2})$", k)                    # Canon FC01..FC18 soft, FC30 and up bone/lung
    if siemens and not canon:
        return "sharp" if int(siemens.group(1)) >= 50 else "soft"
    if canon:
        return "sharp" if int(canon.group(1)) >= 30 else "soft"
    if re.fullmatch(r"[ABC]", k):                           # Philips A/B/C smooth, D/E/L/Y* sharp
        return "soft"
    if re.fullmatch(r"[DEL]|Y[A-Z]?", k):
        return "sharp"
    return "unknown"


def _slice(file: Path, ds) -> SliceHeader:
    pos = _floats(ds.get("ImagePositionPatient"), 3)
    ori = _floats(ds.get("ImageOrientationPatient"), 6)
    spacing = _floats(ds.get("PixelSpacing"), 2)
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "")
    return SliceHeader(path=file, position=pos, orientation=ori, rows=int(ds.Rows), columns=int(ds.Columns),
                       pixel_spacing=spacing, frames=_int(ds.get("NumberOfFrames")) or 1,
                       transfer_syntax=getattr(syntax, "name", str(syntax)))


def _multi(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]


def _floats(value, n: int):
    try:
        vals = tuple(float(v) for v in _multi(value))
    except (TypeError, ValueError):
        return None
    return vals if len(vals) == n else None


def _float(value) -> float | None:
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def _int(value) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None
