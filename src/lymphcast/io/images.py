"""Read a PNG, JPEG (or other Pillow format) or DICOM file into a 2-D uint8 grayscale array.

- Colour (RGB, RGBA, palette, YBR in DICOM) is converted to grayscale (ITU-R 601 luma, as Pillow's "L").
- 16-bit or float pixels are rescaled linearly from their min..max to 0..255.
- JPEG/PNG EXIF orientation is applied (the image as a viewer shows it, which is what boxes are drawn on).
- DICOM: read with pydicom; MONOCHROME1 is inverted; the pixel spacing (mm) comes from PixelSpacing, else from
  the first SequenceOfUltrasoundRegions item given in cm. Compressed transfer syntaxes that no installed
  pydicom plugin decodes raise ImageReadError naming the compression; multi-frame files (cine loops) are
  rejected, since one node is one still image.
Every failure is an ImageReadError whose message says what is wrong, for the caller to attach the file name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DICOM_SUFFIXES = (".dcm", ".dicom")


class ImageReadError(Exception):
    """The file cannot be read as a single 2-D image; the message says why."""


@dataclass(frozen=True)
class LoadedImage:
    pixels: np.ndarray             # (rows, columns) uint8
    spacing_mm: float | None = None  # physical size of one pixel, when the file records it

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape


def is_dicom(path: Path) -> bool:
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def read_image(path: str | Path) -> LoadedImage:
    """The image in `path` as 2-D uint8 grayscale, plus its pixel spacing (DICOM only)."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError("file not found")
    if path.stat().st_size == 0:
        raise ImageReadError("file is empty")
    return _read_dicom(path) if is_dicom(path) else _read_pillow(path)


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Integer/float pixels of any depth → uint8: 8-bit kept as is, the rest rescaled min..max → 0..255."""
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ImageReadError("pixels hold non-finite values")
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return np.zeros(arr.shape, np.uint8)
    return np.round((arr - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _rgb_to_gray(arr: np.ndarray) -> np.ndarray:
    rgb = _to_uint8(arr[..., :3]).astype(np.float64)
    return np.round(rgb @ np.array([0.299, 0.587, 0.114])).clip(0, 255).astype(np.uint8)


def _check_2d(arr: np.ndarray) -> np.ndarray:
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise ImageReadError(f"expected a 2-D image, found pixel array of shape {arr.shape}")
    return arr


def _read_pillow(path: Path) -> LoadedImage:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if getattr(img, "n_frames", 1) > 1:
                raise ImageReadError(f"has {img.n_frames} frames; expected a single still image")
            img.load()  # decodes now, so truncated or corrupt data fails here
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
                arr = _to_uint8(np.asarray(img))
            elif img.mode == "L":
                arr = np.asarray(img, dtype=np.uint8)
            else:  # 1, P, RGB, RGBA, LA, CMYK, YCbCr, ...
                arr = np.asarray(img.convert("L"), dtype=np.uint8)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError("not a readable image (unknown or corrupt format; expected PNG, JPEG or DICOM)") from None
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"image is too large: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated / corrupt data
        raise ImageReadError(f"corrupt or truncated image data ({exc})") from None
    return LoadedImage(np.ascontiguousarray(_check_2d(arr)), None)


def _dicom_spacing(ds) -> float | None:
    """Pixel spacing in mm: PixelSpacing (mean of row/column), else the first US region given in cm."""
    try:
        sp = ds.get("PixelSpacing")
        if sp is not None and len(sp) >= 2 and float(sp[0]) > 0 and float(sp[1]) > 0:
            return (float(sp[0]) + float(sp[1])) / 2.0
        for region in ds.get("SequenceOfUltrasoundRegions", []) or []:
            if region.get("PhysicalUnitsXDirection") == 3 and region.get("PhysicalUnitsYDirection") == 3:
                dx, dy = abs(float(region.PhysicalDeltaX)), abs(float(region.PhysicalDeltaY))
                if dx > 0 and dy > 0:
                    return (dx + dy) / 2.0 * 10.0
    except (TypeError, ValueError, AttributeError):
        return None
    return None


def _read_dicom(path: Path) -> LoadedImage:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:
        raise ImageReadError("not a DICOM file (no DICM preamble)") from None
    except Exception as exc:  # truncated headers surface as many exception types
        raise ImageReadError(f"corrupt DICOM file ({type(exc).__name__}: {exc})") from None
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ImageReadError("DICOM file holds no image (no PixelData); is it a report or structured document?")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ImageReadError(f"multi-frame DICOM ({frames} frames, e.g. a cine loop); export one still frame")
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    try:
        arr = ds.pixel_array
    except Exception as exc:
        if syntax is not None and syntax.is_compressed:
            raise ImageReadError(f"DICOM pixel data is compressed ({syntax.name}) and cannot be decoded here "
                                 f"({type(exc).__name__}: {' '.join(str(exc).split())}); export it uncompressed, or install a "
                                 "pydicom decoder plugin (pylibjpeg, gdcm)") from None
        raise ImageReadError(f"cannot decode DICOM pixel data ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())})") from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        # pydicom 3 converts YBR to RGB by default in pixel_array
        gray = _rgb_to_gray(arr)
    elif arr.ndim == 2:
        gray = _to_uint8(arr)
        if photometric == "MONOCHROME1":
            gray = 255 - gray
    else:
        raise ImageReadError(f"expected a 2-D image, found pixel array of shape {arr.shape}")
    return LoadedImage(np.ascontiguousarray(_check_2d(gray)), _dicom_spacing(ds))


def write_png(path: str | Path, pixels: np.ndarray) -> None:
    """An 8-bit grayscale PNG."""
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(path, compress_level=1)
