"""Lazy reading of cytology slides and camera fields as RGB regions at any pyramid level.

`open_slide` picks a backend and returns a `Slide`: its pyramid `levels` (finest first, each with its pixel size
in micrometres) and `read(level, x, y, w, h)`, an RGB uint8 region in that level's pixel coordinates, white
(255) wherever the region leaves the image. Only what a region touches is decoded, so a 20,000 x 20,000 slide
is never held whole.

- "tifffile": any TIFF (tiled or striped, pyramid levels as separate pages or SubIFDs); tiles/strips decoded
  one by one (slide_backends.TiffSlide).
- "openslide": vendor formats (.svs .ndpi .mrxs ...) when openslide-python is installed (`lymphcast[slides]`).
- "image": PNG/JPEG/BMP camera fields through Pillow; one level, read whole at open (they are small; larger
  than MAX_UNTILED_PIXELS is refused).

The pixel size comes from the file when it states one; the `mpp` argument (cytology.csv `microns_per_pixel`)
is the fallback. Every failure is a SlideReadError naming the file and what was expected.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..cohort import LymphCastError

VENDOR_SUFFIXES = (".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
BACKENDS = ("tifffile", "openslide", "image")
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# An image that must be decoded whole (untiled PNG/JPEG, or one giant TIFF strip) is refused above this size:
# 144 M pixels is 432 MB of RGB, the most we accept holding at once.
MAX_UNTILED_PIXELS = 12_000 * 12_000
# No microscope image has pixels this coarse; such a value is a writer's default (e.g. 72 dpi), not a pixel size.
MAX_PLAUSIBLE_MPP = 50.0
MAX_REGION_PIXELS = MAX_UNTILED_PIXELS  # one read() is bounded too; larger areas are read in pieces


class SlideReadError(LymphCastError):
    """A file that cannot be read as a slide; the message names the file and what was expected."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"cannot read slide {path}: {reason}")
        self.path = Path(path)
        self.reason = reason


@dataclass(frozen=True)
class Level:
    width: int
    height: int
    mpp: float  # micrometres per pixel at this level


class Slide:
    """An open slide. Subclasses implement `_read` for a region lying wholly inside a level."""

    backend = ""

    def __init__(self, path: Path, levels: tuple[Level, ...]):
        self.path = path
        self.levels = levels

    def read(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        """RGB uint8 (h, w, 3) of the region at (x, y) in `level`'s pixels; white outside the image."""
        if not 0 <= level < len(self.levels):
            raise SlideReadError(self.path, f"level {level} does not exist; expected 0..{len(self.levels) - 1}")
        x, y, w, h = (int(v) for v in (x, y, w, h))
        if w <= 0 or h <= 0 or w * h > MAX_REGION_PIXELS:
            raise SlideReadError(self.path, f"region {w} x {h} at level {level}: expected a positive size of at "
                                            f"most {MAX_REGION_PIXELS} pixels (read large areas in pieces)")
        lv = self.levels[level]
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, lv.width), min(y + h, lv.height)
        inside = (x0, y0, x1, y1) == (x, y, x + w, y + h)
        out = np.empty((h, w, 3), np.uint8) if inside else np.full((h, w, 3), 255, np.uint8)
        if x1 > x0 and y1 > y0:  # backends decode straight into `out`: one region-sized array per read
            self._read(level, x0, y0, x1 - x0, y1 - y0, out[y0 - y:y1 - y, x0 - x:x1 - x])
        return out

    def native_tile(self, level: int) -> tuple[int, int]:
        """(width, height) of the unit the file is stored in at `level`: reads aligned to it decode least."""
        return 256, 256

    def _read(self, level: int, x: int, y: int, w: int, h: int, out: np.ndarray) -> None:
        """Fill `out` (h, w, 3) uint8 with the region, which lies wholly inside the level."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        lv = self.levels[0]
        return (f"<{type(self).__name__} {self.path.name} {self.backend} {lv.width}x{lv.height} "
                f"{lv.mpp:.3g} um/px, {len(self.levels)} levels>")


def pyramid(sizes: list[tuple[int, int]], mpp0: float) -> tuple[Level, ...]:
    """Levels from (width, height) finest first; a level's pixel size scales with its width."""
    return tuple(Level(w, h, mpp0 * sizes[0][0] / w) for w, h in sizes)


def resolve_mpp(path: Path, stated: float | None, given: float | None, source: str) -> float:
    """The pixel size: the file's when stated and plausible, else the caller's, else a SlideReadError."""
    if stated is not None and math.isfinite(stated) and 0 < stated <= MAX_PLAUSIBLE_MPP:
        return float(stated)
    if given is not None:
        return float(given)
    why = (f"the file's {source} gives {stated:.4g} um/px, not a microscope pixel size" if stated
           else f"the file does not state it ({source})")
    raise SlideReadError(path, f"pixel size unknown: {why}; give it with mpp=... (the cohort's cytology.csv "
                               "column microns_per_pixel)")


def open_slide(path: str | Path, mpp: float | None = None, backend: str | None = None) -> Slide:
    """Open `path` lazily. `mpp` (micrometres per pixel of the full resolution) is used when the file does not
    state its pixel size. `backend` forces "tifffile", "openslide" or "image" (default: by content/suffix)."""
    path = Path(path)
    if mpp is not None and not (math.isfinite(mpp) and mpp > 0):
        raise SlideReadError(path, f"microns per pixel must be a positive number, got {mpp}")
    if backend is not None and backend not in BACKENDS:
        raise SlideReadError(path, f"unknown backend '{backend}'; expected one of {', '.join(BACKENDS)}")
    if path.is_dir():
        raise SlideReadError(path, "is a folder; expected a slide file (tiled TIFF, .svs/.ndpi/..., PNG or JPEG)")
    if not path.is_file():
        raise SlideReadError(path, "file not found")
    if path.stat().st_size == 0:
        raise SlideReadError(path, "file is empty")
    if backend is None:
        with open(path, "rb") as fh:
            head = fh.read(4)
        if path.suffix.lower() in VENDOR_SUFFIXES:
            backend = "openslide"
        elif head in TIFF_MAGIC:
            backend = "tifffile"
        else:
            backend = "image"
    if backend == "image":
        return ImageSlide(path, mpp)
    from . import slide_backends

    if backend == "openslide":
        return slide_backends.OpenSlideSlide(path, mpp)
    return slide_backends.TiffSlide(path, mpp)


def flatten_rgb(arr: np.ndarray, associated: bool = False) -> np.ndarray:
    """(h, w, c) uint8 with c in 1..4 → RGB: gray repeated, alpha composited on white."""
    if arr.ndim == 2:
        arr = arr[..., None]
    c = arr.shape[2]
    if c in (2, 4):
        alpha = arr[..., c - 1:]
        if (alpha == 255).all():  # opaque (e.g. every OpenSlide region inside the slide): nothing to blend
            arr = arr[..., :c - 1]
        else:  # integer blend on white; colour * a + 255 * (255 - a) <= 65025 fits uint16
            colour, a = arr[..., :c - 1].astype(np.uint16), alpha.astype(np.uint16)
            if associated:  # premultiplied: colour <= alpha
                arr = np.minimum(colour + (255 - a), 255).astype(np.uint8)
            else:
                arr = ((colour * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr[..., :3])


def _image_mpp(info: dict) -> float | None:
    """Pixel size from Pillow's dpi (PNG pHYs in metres, JPEG JFIF/EXIF, BMP), None when not stated."""
    dpi = info.get("dpi")
    try:
        d = (float(dpi[0]) + float(dpi[1])) / 2.0 if dpi else 0.0
    except (TypeError, ValueError, IndexError):
        return None
    return 25_400.0 / d if d > 0 else None


class ImageSlide(Slide):
    """A camera field (PNG/JPEG/BMP): one level, decoded whole at open."""

    backend = "image"

    def __init__(self, path: Path, mpp: float | None):
        from PIL import Image, ImageOps, UnidentifiedImageError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # size is checked below
                with Image.open(path) as img:
                    w, h = img.size
                    if w * h > MAX_UNTILED_PIXELS:
                        raise SlideReadError(path, _too_big(w, h))
                    img.load()  # decode now, so truncated data fails here
                    info = dict(img.info)
                    arr = np.asarray(_pillow_rgb(ImageOps.exif_transpose(img)))  # upright, as viewers show it
        except SlideReadError:
            raise
        except UnidentifiedImageError:
            raise SlideReadError(path, "not a readable image; expected a tiled TIFF, a vendor slide "
                                       f"({' '.join(VENDOR_SUFFIXES)}), PNG, JPEG or BMP") from None
        except Image.DecompressionBombError:
            raise SlideReadError(path, _too_big(0, 0)) from None
        except (OSError, SyntaxError, ValueError) as exc:  # truncated / corrupt data
            raise SlideReadError(path, f"corrupt or truncated image data ({exc}); expected a complete image") from None
        self.pixels = flatten_rgb(arr)
        h, w = self.pixels.shape[:2]
        super().__init__(path, (Level(w, h, resolve_mpp(path, _image_mpp(info), mpp, "resolution (dpi)")),))

    def native_tile(self, level: int) -> tuple[int, int]:
        return self.levels[0].width, self.levels[0].height

    def _read(self, level, x, y, w, h, out):
        out[:] = self.pixels[y:y + h, x:x + w]


def _pillow_rgb(img):
    """Pillow image → mode RGB/RGBA/L/LA (16-bit and palette converted) for flatten_rgb."""
    if img.mode in ("RGB", "RGBA", "L", "LA"):
        return img
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") else max(float(a.max()), 1.0)
        from PIL import Image

        return Image.fromarray(np.round(a * (255.0 / hi)).clip(0, 255).astype(np.uint8))
    return img.convert("RGBA" if "A" in img.mode or "transparency" in img.info else "RGB")


def _too_big(w: int, h: int) -> str:
    size = f"{w} x {h} pixels" if w else "too many pixels"
    return (f"image of {size} is not tiled, so it would have to be loaded whole (limit {MAX_UNTILED_PIXELS} "
            "pixels); convert it to a tiled pyramidal TIFF (e.g. lymphcast.io.slide_write.write_pyramid, "
            "vips tiffsave --tile --pyramid)")
