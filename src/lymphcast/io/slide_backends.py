"""The TIFF (tifffile) and vendor-format (OpenSlide) backends of `open_slide`.

TiffSlide finds the pyramid among the file's pages and their SubIFDs (same samples and data type, about the
same aspect ratio as the largest, so label and macro images are left out) and reads a region by decoding only
the tiles or strips it touches, one at a time, from their byte offsets. Nothing is cached: the caller reads in
tile-aligned bands (slide_tiles) so each stored tile is decoded about once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .slide import MAX_UNTILED_PIXELS, Slide, SlideReadError, _too_big, flatten_rgb, pyramid, resolve_mpp

ASPECT_TOLERANCE = 0.02  # pyramid levels keep the full image's aspect ratio up to rounding
# TIFF Photometric values handled: MINISWHITE, MINISBLACK, RGB, PALETTE, YCBCR (decoded to RGB by JPEG)
PHOTOMETRICS = {0: "miniswhite", 1: "minisblack", 2: "rgb", 3: "palette", 6: "ycbcr"}


def _pages(tif) -> list:
    """Every page of the IFD chain and every SubIFD below them."""
    import tifffile

    found, todo = [], list(tif.pages)
    while todo:
        page = todo.pop(0)
        if not hasattr(page, "dataoffsets") or isinstance(page, tifffile.TiffFrame):
            page = page.aspage()
        found.append(page)
        if page.subifds:
            todo.extend(tifffile.TiffPages(page))
    return found


def _levels(path: Path, pages: list) -> list:
    images = [p for p in pages if p.imagewidth > 0 and p.imagelength > 0 and p.imagedepth <= 1]
    if not images:
        raise SlideReadError(path, "TIFF holds no 2-D image; expected a (pyramidal) RGB or gray image")
    base = max(images, key=lambda p: p.imagewidth * p.imagelength)
    aspect = base.imagewidth / base.imagelength
    chosen: dict[int, object] = {}
    for p in sorted(images, key=lambda p: -p.imagewidth):
        if (p.samplesperpixel, p.dtype, p.planarconfig) != (base.samplesperpixel, base.dtype, base.planarconfig):
            continue
        if abs(p.imagewidth / p.imagelength / aspect - 1) > ASPECT_TOLERANCE + 2.0 / p.imagelength:
            continue
        chosen.setdefault(p.imagewidth, p)  # a level repeated (another z-plane, a thumbnail) counts once
    return list(chosen.values())


def _check_page(path: Path, page, level: int) -> None:
    where = f"level {level}"
    if page.dtype not in (np.uint8, np.uint16):
        raise SlideReadError(path, f"{where} holds {page.dtype} pixels; expected 8- or 16-bit unsigned")
    if int(page.photometric) not in PHOTOMETRICS:
        raise SlideReadError(path, f"{where} has photometric {page.photometric!r}; expected RGB, YCbCr or gray")
    if page.samplesperpixel not in (1, 2, 3, 4):
        raise SlideReadError(path, f"{where} has {page.samplesperpixel} samples per pixel; expected 1-4")
    if not page.is_tiled and page.rowsperstrip * page.imagewidth > MAX_UNTILED_PIXELS:
        raise SlideReadError(path, f"{where}: " + _too_big(page.imagewidth, min(page.rowsperstrip,
                                                                                page.imagelength)))


def _tiff_mpp(page) -> float | None:
    """Micrometres per pixel from X/YResolution (unit centimetre or inch), None when absent or unit NONE."""
    unit = int(page.tags.valueof(296, 2))  # ResolutionUnit; TIFF's default is inch
    xres, yres = page.tags.valueof(282), page.tags.valueof(283)
    if xres is None or unit not in (2, 3):
        return None
    try:
        per = [v[0] / v[1] if isinstance(v, tuple) else float(v) for v in (xres, yres or xres)]
    except (ZeroDivisionError, TypeError, IndexError):
        return None
    if min(per) <= 0:
        return None
    return (2.54e4 if unit == 2 else 1e4) / ((per[0] + per[1]) / 2.0)


class TiffSlide(Slide):
    backend = "tifffile"

    def __init__(self, path: Path, mpp: float | None):
        import tifffile

        try:
            self._tif = tifffile.TiffFile(path)
        except Exception as exc:  # tifffile reports broken headers as many exception types
            raise SlideReadError(path, f"not a readable TIFF ({type(exc).__name__}: {exc})") from None
        try:
            self._pages = _levels(path, _pages(self._tif))
            for i, page in enumerate(self._pages):
                _check_page(path, page, i)
            stated = _tiff_mpp(self._pages[0])
            sizes = [(p.imagewidth, p.imagelength) for p in self._pages]
            super().__init__(path, pyramid(sizes, resolve_mpp(path, stated, mpp, "resolution tags")))
        except SlideReadError:
            self._tif.close()
            raise
        except Exception as exc:
            self._tif.close()
            raise SlideReadError(path, f"unreadable TIFF structure ({type(exc).__name__}: {exc})") from None

    def native_tile(self, level):
        p = self._pages[level]
        return (p.tilewidth, p.tilelength) if p.is_tiled else (p.imagewidth, min(p.rowsperstrip, p.imagelength))

    def close(self):
        self._tif.close()

    def _segment(self, level: int, page, index: int) -> np.ndarray | None:
        """Decoded segment `index` (tile or strip) as (rows, cols, samples), None when the file leaves it empty."""
        offset, count = page.dataoffsets[index], page.databytecounts[index]
        what = f"level {level}, {'tile' if page.is_tiled else 'strip'} {index}"
        if count == 0 or offset == 0:
            return None
        fh = self._tif.filehandle
        try:
            fh.seek(offset)
            data = fh.read(count)
        except OSError as exc:
            raise SlideReadError(self.path, f"{what}: cannot read its bytes ({exc})") from None
        if len(data) < count:
            raise SlideReadError(self.path, f"{what}: file ends after {len(data)} of its {count} bytes "
                                            "(truncated file?); expected a complete TIFF")
        try:
            seg, _, shape = page.decode(data, index, jpegtables=page.jpegtables)
        except Exception as exc:  # decoders raise many types on corrupt data
            raise SlideReadError(self.path, f"{what}: corrupt data ({type(exc).__name__}: {exc})") from None
        if seg is None:
            return None
        return seg.reshape(shape)[0]

    def _read(self, level, x, y, w, h, rgb):
        page = self._pages[level]
        spp = page.samplesperpixel
        planes = spp if page.planarconfig == 2 else 1
        direct = page.dtype == np.uint8 and spp == 3 and planes == 1 and int(page.photometric) in (2, 6)
        out = rgb if direct else np.empty((h, w, spp), page.dtype)  # plain RGB needs no conversion
        out[:] = self._blank(page)  # segments the file leaves empty
        sw, sh = self.native_tile(level)
        across = -(-page.imagewidth // sw)
        per_plane = len(page.dataoffsets) // planes
        for ty in range(y // sh, (y + h - 1) // sh + 1):
            for tx in range(x // sw, (x + w - 1) // sw + 1):
                ox, oy = tx * sw, ty * sh  # segment origin in level pixels
                ax0, ay0 = max(x, ox), max(y, oy)
                ax1, ay1 = min(x + w, ox + sw, page.imagewidth), min(y + h, oy + sh, page.imagelength)
                for plane in range(planes):
                    seg = self._segment(level, page, plane * per_plane + ty * across + tx)
                    if seg is None:
                        continue
                    part = seg[ay0 - oy:ay1 - oy, ax0 - ox:ax1 - ox]
                    dst = out[ay0 - y:ay1 - y, ax0 - x:ax1 - x]
                    if planes > 1:
                        dst[..., plane] = part[..., 0]
                    else:
                        dst[:part.shape[0], :part.shape[1]] = part
        if not direct:
            rgb[:] = self._to_rgb(page, out)

    @staticmethod
    def _blank(page):
        white = 65535 if page.dtype == np.uint16 else 255
        return 0 if int(page.photometric) in (0, 3) else white

    @staticmethod
    def _to_rgb(page, arr: np.ndarray) -> np.ndarray:
        photometric = int(page.photometric)
        if photometric == 3:  # palette: 16-bit colour map, index → RGB
            cmap = (np.asarray(page.colormap, np.uint32) >> 8).astype(np.uint8)  # (3, 2**bits)
            return np.ascontiguousarray(cmap[:, arr[..., 0]].transpose(1, 2, 0))
        if arr.dtype == np.uint16:
            arr = ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
        if photometric == 0:
            arr[..., :1] = 255 - arr[..., :1]
        extras = tuple(int(e) for e in (page.extrasamples or ()))
        return flatten_rgb(arr, associated=bool(extras) and extras[0] == 1)


class OpenSlideSlide(Slide):
    backend = "openslide"

    def __init__(self, path: Path, mpp: float | None):
        try:
            import openslide
        except ImportError:
            raise SlideReadError(path, f"the {path.suffix or 'slide'} format needs OpenSlide, not installed; "
                                       "install the optional extra: pip install lymphcast[slides]") from None
        try:
            self._osr = openslide.OpenSlide(str(path))
        except Exception as exc:  # OpenSlideUnsupportedFormatError, OpenSlideError, ...
            raise SlideReadError(path, f"OpenSlide cannot open it ({type(exc).__name__}: {exc}); expected a "
                                       "whole-slide format OpenSlide reads") from None
        try:
            stated = float(self._osr.properties.get("openslide.mpp-x", "nan"))
        except ValueError:
            stated = None
        try:
            levels = pyramid(list(self._osr.level_dimensions), resolve_mpp(
                path, stated if stated == stated else None, mpp, "openslide.mpp-x"))
        except SlideReadError:
            self._osr.close()
            raise
        self._downsample = tuple(self._osr.level_downsamples)
        super().__init__(path, levels)

    def native_tile(self, level):
        props = self._osr.properties
        try:
            return (int(props[f"openslide.level[{level}].tile-width"]),
                    int(props[f"openslide.level[{level}].tile-height"]))
        except (KeyError, ValueError):
            return 256, 256

    def close(self):
        self._osr.close()

    def _read(self, level, x, y, w, h, out):
        ds = self._downsample[level]
        try:  # read_region takes the top-left in level-0 pixels and returns unassociated RGBA
            region = self._osr.read_region((round(x * ds), round(y * ds)), level, (w, h))
        except Exception as exc:
            raise SlideReadError(self.path, f"level {level}, region {w} x {h} at ({x}, {y}): OpenSlide failed "
                                            f"({type(exc).__name__}: {exc})") from None
        out[:] = flatten_rgb(np.asarray(region))
