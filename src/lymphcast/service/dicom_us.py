"""Read one ultrasound DICOM instance, as PACS sends it, into the pixels and labels the model needs.

Accepted SOP classes: Ultrasound Image Storage (and its retired predecessor) and Secondary Capture Image
Storage, each holding one still frame. Ultrasound Multi-frame (cine loops) is refused: loops go through the
video path, which picks its own frames.

Where the labels come from (see DICOM.md beside this file):

- side: ImageLaterality (0020,0062), else Laterality (0020,0060); 'L' -> left, 'R' -> right. Required: a
  lateral-neck node image without a side cannot be attributed to a side of the neck, so it is refused.
- level: first a code in AnatomicRegionSequence (0008,2218) or its AnatomicRegionModifierSequence
  (0008,2220) whose CodeValue or CodeMeaning reads "level II" .. "level VI" (any scheme; sub-levels IIa/VB
  count as their level); else the first "level <roman>" in ImageComments (0020,4000), then in
  SeriesDescription (0008,103E), case-insensitive ("Level II-III" gives II). Level I is refused, since the
  model scores levels II-VI only. No level anywhere -> None.
- node label: "node <label>" in ImageComments, e.g. "Level III node N02" -> "N02"; else None.

Pixels become 2-D uint8 grey exactly as `lymphcast.io.images.read_image` makes them (its helpers are
reused). Every failure is a `DicomInputError` (a LymphCastError) naming the instance, the tag and what
was expected; no pydicom exception escapes.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lymphcast.cohort import LymphCastError
from lymphcast.io import images as _img

US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
US_IMAGE_RETIRED = "1.2.840.10008.5.1.4.1.1.6"
US_MULTIFRAME = ("1.2.840.10008.5.1.4.1.1.3.1", "1.2.840.10008.5.1.4.1.1.3")
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
ACCEPTED_SOP_CLASSES = (US_IMAGE, US_IMAGE_RETIRED, SECONDARY_CAPTURE)

LEVELS = ("II", "III", "IV", "V", "VI")
# Longest numerals first so "level III" is not read as "level II"; an optional sub-level letter (IIa, Vb).
_LEVEL_RE = re.compile(r"\blevels?\s*(VI|IV|V|III|II|I)[ab]?\b", re.IGNORECASE)
_NODE_RE = re.compile(r"\bnode\s+([A-Za-z0-9][\w.\-]*)", re.IGNORECASE)
_SIDES = {"L": "left", "R": "right"}


class DicomInputError(LymphCastError):
    """An incoming DICOM instance the service cannot score; the message names it and says why."""


@dataclass(frozen=True)
class UsInstance:
    """One ultrasound still of one lymph node, with the identifiers needed to answer into the same study."""

    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    accession: str | None
    side: str                 # 'left' | 'right'
    level: str | None         # 'II' .. 'VI', or None when the instance does not say
    node_label: str | None    # the label after "node" in ImageComments
    pixels: np.ndarray        # (rows, columns) uint8
    spacing_mm: float | None
    sha256: str               # of the instance bytes as received


def read_us_instance(data: bytes | Path, *, name: str) -> UsInstance:
    """Parse the DICOM instance in `data` (bytes, or a path to read); `name` identifies it in error messages."""
    raw = _raw_bytes(data, name)
    ds = _parse(raw, name)
    where = f"{name} (SOPInstanceUID {_text(ds, 'SOPInstanceUID') or '?'})"
    _check_sop_class(ds, where)
    patient_id = _required(ds, "PatientID", "(0010,0020)", where)
    study_uid = _required(ds, "StudyInstanceUID", "(0020,000D)", where)
    series_uid = _required(ds, "SeriesInstanceUID", "(0020,000E)", where)
    sop_uid = _required(ds, "SOPInstanceUID", "(0008,0018)", where)
    side = _side(ds, where)
    level = _level(ds, where)
    match = _NODE_RE.search(_text(ds, "ImageComments"))
    pixels = _grey_pixels(ds, where)
    try:
        spacing = _img._dicom_spacing(ds)
    except Exception:  # a malformed spacing only loses the scale, not the image
        spacing = None
    return UsInstance(patient_id, study_uid, series_uid, sop_uid, _text(ds, "AccessionNumber") or None, side,
                      level, match.group(1) if match else None, pixels, spacing, hashlib.sha256(raw).hexdigest())


def read_header(data: bytes | Path, *, name: str):
    """The instance's pydicom Dataset without pixel data: the `evidence` that dicom_sr.risk_report files
    the report against (same checks on identity as read_us_instance, none on pixels)."""
    ds = _parse(_raw_bytes(data, name), name, pixels=False)
    where = f"{name} (SOPInstanceUID {_text(ds, 'SOPInstanceUID') or '?'})"
    for keyword, tag in (("PatientID", "(0010,0020)"), ("StudyInstanceUID", "(0020,000D)"),
                         ("SeriesInstanceUID", "(0020,000E)"), ("SOPInstanceUID", "(0008,0018)")):
        _required(ds, keyword, tag, where)
    return ds


def _raw_bytes(data: bytes | Path, name: str) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    else:
        try:
            raw = Path(data).read_bytes()
        except OSError as exc:
            raise DicomInputError(f"{name}: cannot read the file ({exc.strerror or exc})") from None
    if not raw:
        raise DicomInputError(f"{name}: empty; expected a DICOM Part-10 instance")
    return raw


def _parse(raw: bytes, name: str, pixels: bool = True):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings():  # a damaged value is reported below as what it breaks, not as noise
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=not pixels)
    except InvalidDicomError:
        raise DicomInputError(f"{name}: not a DICOM Part-10 instance (no 'DICM' preamble); expected an "
                              "ultrasound image as stored by PACS") from None
    except Exception as exc:  # truncated or corrupt headers surface as many exception types
        raise DicomInputError(f"{name}: corrupt or truncated DICOM ({type(exc).__name__}: "
                              f"{' '.join(str(exc).split())})") from None
    # pydicom stops quietly at the end of a cut-off file, so a truncated transfer shows up as what is missing.
    meta_class = str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", "") or "")
    if len(ds) == 0 or not meta_class or "SOPClassUID" not in ds:
        raise DicomInputError(f"{name}: truncated or corrupt DICOM: the header ends after {len(raw)} bytes, "
                              "before SOPClassUID (0008,0016)")
    if pixels and "PixelData" not in ds and meta_class in ACCEPTED_SOP_CLASSES + US_MULTIFRAME:
        raise DicomInputError(f"{name} (SOPInstanceUID {_text(ds, 'SOPInstanceUID') or '?'}): truncated DICOM: "
                              f"the instance ends after {len(raw)} bytes, before PixelData (7FE0,0010)")
    return ds


def _text(ds, keyword: str) -> str:
    """The element's value as stripped text; '' when absent, empty or unreadable."""
    try:
        with warnings.catch_warnings():  # pydicom converts lazily; a damaged value warns here
            warnings.simplefilter("ignore")
            value = ds.get(keyword)
    except Exception:
        return ""
    return "" if value is None else str(value).strip()


def _required(ds, keyword: str, tag: str, where: str) -> str:
    value = _text(ds, keyword)
    if not value:
        raise DicomInputError(f"{where}: {keyword} {tag} is missing or empty; the result cannot be filed "
                              "without it")
    return value


def _check_sop_class(ds, where: str) -> None:
    sop_class = _text(ds, "SOPClassUID")
    if sop_class in US_MULTIFRAME:
        raise DicomInputError(f"{where}: SOPClassUID (0008,0016) is Ultrasound Multi-frame Image Storage "
                              f"({sop_class}); cine loops go through the video path, not the still-image path")
    if sop_class not in ACCEPTED_SOP_CLASSES:
        from pydicom.uid import UID

        label = UID(sop_class).name if sop_class else "missing"
        raise DicomInputError(f"{where}: SOPClassUID (0008,0016) is {label} ({sop_class or '-'}); expected "
                              "Ultrasound Image Storage or Secondary Capture Image Storage")
    frames = _text(ds, "NumberOfFrames") or "1"
    if frames not in ("", "1"):
        raise DicomInputError(f"{where}: NumberOfFrames (0028,0008) is {frames}; expected one still frame "
                              "(cine loops go through the video path)")


def _side(ds, where: str) -> str:
    for keyword, tag in (("ImageLaterality", "(0020,0062)"), ("Laterality", "(0020,0060)")):
        value = _text(ds, keyword).upper()
        if value in _SIDES:
            return _SIDES[value]
        if value:
            raise DicomInputError(f"{where}: {keyword} {tag} is '{value}'; expected 'L' or 'R' for a "
                                  "lateral-neck node image")
    raise DicomInputError(f"{where}: no side: ImageLaterality (0020,0062) and Laterality (0020,0060) are "
                          "both missing; expected 'L' or 'R' for a lateral-neck node image")


def _level_in(text: str, where: str, source: str) -> str | None:
    match = _LEVEL_RE.search(text or "")
    if match is None:
        return None
    level = match.group(1).upper()
    if level not in LEVELS:
        raise DicomInputError(f"{where}: {source} names neck level {level} ('{text}'); expected level II-VI")
    return level


def _level(ds, where: str) -> str | None:
    try:
        regions = list(ds.get("AnatomicRegionSequence") or [])
        codes = []
        for item in regions:
            codes.append(item)
            codes.extend(item.get("AnatomicRegionModifierSequence") or [])
        for code in codes:
            for keyword in ("CodeValue", "CodeMeaning"):
                level = _level_in(_text(code, keyword), where, f"AnatomicRegionSequence (0008,2218) {keyword}")
                if level:
                    return level
    except DicomInputError:
        raise
    except Exception:  # a malformed sequence is ignored in favour of the text fallbacks
        pass
    for keyword, tag in (("ImageComments", "(0020,4000)"), ("SeriesDescription", "(0008,103E)")):
        level = _level_in(_text(ds, keyword), where, f"{keyword} {tag}")
        if level:
            return level
    return None


def _grey_pixels(ds, where: str) -> np.ndarray:
    """2-D uint8 grey pixels, converted as io.images does for files (colour -> luma, MONOCHROME1 inverted)."""
    if "PixelData" not in ds:
        raise DicomInputError(f"{where}: PixelData (7FE0,0010) is missing; expected an image")
    try:
        arr = ds.pixel_array
        photometric = _text(ds, "PhotometricInterpretation").upper() or "MONOCHROME2"
        if photometric == "PALETTE COLOR":
            from pydicom.pixels import apply_color_lut

            arr = apply_color_lut(arr, ds)
        if arr.ndim == 3 and arr.shape[-1] in (3, 4):
            grey = _img._rgb_to_gray(arr)
        elif arr.ndim == 2:
            grey = _img._to_uint8(arr)
            if photometric == "MONOCHROME1":
                grey = 255 - grey
        else:
            raise _img.ImageReadError(f"pixel array of shape {arr.shape}, expected a 2-D image")
        return np.ascontiguousarray(_img._check_2d(grey))
    except Exception as exc:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        hint = f" (transfer syntax {syntax.name})" if syntax is not None else ""
        raise DicomInputError(f"{where}: cannot decode PixelData (7FE0,0010){hint}: {type(exc).__name__}: "
                              f"{' '.join(str(exc).split())}; expected one uncompressed or decodable "
                              "still image") from None
