"""Lazy slide reading: pyramid levels and pixel size from the file, regions at every level, clear errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

from lymphcast.cohort.errors import LymphCastError
from lymphcast.io import slide as slide_mod
from lymphcast.io.slide import Level, SlideReadError, open_slide

from .slide_files import BACKGROUND, RED, blank, planted, write

JPEG_TOL = 12  # largest per-channel error JPEG q90 leaves on flat colour


def close(a, colour, tol=JPEG_TOL) -> bool:
    return bool(np.abs(a.astype(int) - np.asarray(colour)).max() <= tol)


def test_pyramid_levels_and_mpp_from_file(tmp_path):
    path = write(tmp_path / "s.tif", planted(), mpp=0.5)
    with open_slide(path) as s:
        assert s.backend == "tifffile" and s.path == path
        assert s.levels == (Level(1200, 1000, 0.5), Level(600, 500, 1.0), Level(300, 250, 2.0),
                            Level(150, 125, 4.0))


def test_planted_square_found_in_every_level(tmp_path):
    path = write(tmp_path / "s.tif", planted(box=(400, 300, 520, 420)))
    with open_slide(path) as s:
        for i in range(len(s.levels)):
            f = 2 ** i
            x0, y0, x1, y1 = 400 // f, 300 // f, 520 // f, 420 // f
            region = s.read(i, x0 - 4, y0 - 4, x1 - x0 + 8, y1 - y0 + 8)
            assert region.shape == (y1 - y0 + 8, x1 - x0 + 8, 3) and region.dtype == np.uint8
            inner = region[8:-8, 8:-8]  # JPEG chroma subsampling blurs colour edges by a few pixels
            assert close(inner.mean(axis=(0, 1)), RED, tol=6) and close(inner, RED, tol=30)
            assert close(region[:2, :2], BACKGROUND) and close(region[-2:, -2:], BACKGROUND)


def test_region_crossing_right_and_bottom_edges_is_white_outside(tmp_path):
    path = write(tmp_path / "s.tif", planted(), compression="zlib")
    with open_slide(path) as s:
        r = s.read(0, 1190, 990, 30, 20)
        assert np.array_equal(r[:10, :10], blank(10, 10))
        assert (r[10:] == 255).all() and (r[:, 10:] == 255).all()
        assert (s.read(1, -10, -10, 5, 5) == 255).all()
        assert np.array_equal(s.read(0, -3, 0, 6, 1)[0, 3:], blank(1, 3)[0])


def test_region_values_exact_with_lossless_tiles(tmp_path):
    img = np.random.default_rng(1).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    path = write(tmp_path / "r.tif", img, compression="zlib", tile=64)
    with open_slide(path) as s:
        assert np.array_equal(s.read(0, 37, 61, 250, 170), img[61:231, 37:287])


@pytest.mark.parametrize("kind", ["striped_gray_inch", "rgba", "planar"])
def test_other_tiff_layouts(tmp_path, kind):
    rng = np.random.default_rng(2)
    path = tmp_path / f"{kind}.tif"
    if kind == "striped_gray_inch":
        gray = rng.integers(0, 256, (200, 150), dtype=np.uint8)
        tifffile.imwrite(path, gray, rowsperstrip=16, resolution=(25400 / 0.25, 25400 / 0.25),
                         resolutionunit="INCH", compression="zlib")
        want, mpp = np.repeat(gray[..., None], 3, axis=2), 0.25
    elif kind == "rgba":
        rgba = rng.integers(0, 256, (120, 90, 4), dtype=np.uint8)
        rgba[..., 3] = 0
        rgba[:60, :, 3] = 255
        tifffile.imwrite(path, rgba, tile=(32, 32), photometric="rgb", extrasamples=["unassalpha"])
        want, mpp = np.where(rgba[..., 3:] == 255, rgba[..., :3], 255).astype(np.uint8), 0.7
    else:
        rgb = rng.integers(0, 256, (100, 80, 3), dtype=np.uint8)
        tifffile.imwrite(path, np.moveaxis(rgb, 2, 0), photometric="rgb", planarconfig="separate",
                         rowsperstrip=10)
        want, mpp = rgb, 0.7
    with open_slide(path, mpp=0.7) as s:
        assert s.levels[0].mpp == pytest.approx(mpp)
        h, w = want.shape[:2]
        assert np.array_equal(s.read(0, 5, 7, w - 10, h - 20), want[7:h - 13, 5:w - 5])


def test_subifd_pyramid_levels(tmp_path):
    img = planted(256, 320, box=(64, 64, 128, 128))
    path = tmp_path / "sub.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(img, subifds=1, tile=(64, 64), resolution=(1e4, 1e4), resolutionunit="CENTIMETER")
        tif.write(img[::2, ::2], tile=(64, 64), subfiletype=1)
    with open_slide(path) as s:
        assert [(lv.width, lv.mpp) for lv in s.levels] == [(320, 1.0), (160, 2.0)]
        assert close(s.read(1, 40, 40, 8, 8), RED, tol=0)


def test_tiff_without_pixel_size_needs_mpp(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, planted(100, 100, box=(10, 10, 20, 20)), tile=(32, 32))
    with pytest.raises(SlideReadError, match=r"plain\.tif.*pixel size unknown.*microns_per_pixel"):
        open_slide(path)
    with open_slide(path, mpp=0.3) as s:
        assert s.levels == (Level(100, 100, 0.3),)


def test_png_with_mpp_argument_or_file_resolution(tmp_path):
    img = planted(200, 300, box=(50, 60, 80, 90))
    Image.fromarray(img).save(tmp_path / "field.png")
    with pytest.raises(SlideReadError, match=r"field\.png.*pixel size unknown.*mpp="):
        open_slide(tmp_path / "field.png")
    with open_slide(tmp_path / "field.png", mpp=0.4) as s:
        assert s.backend == "image" and s.levels == (Level(300, 200, 0.4),)
        assert np.array_equal(s.read(0, 290, 0, 20, 5)[:, :10], img[:5, 290:])
        assert (s.read(0, 290, 0, 20, 5)[:, 10:] == 255).all()
    Image.fromarray(img).save(tmp_path / "dpi.jpg", dpi=(25400 / 0.5, 25400 / 0.5), quality=95)
    with open_slide(tmp_path / "dpi.jpg") as s:
        assert s.levels[0].mpp == pytest.approx(0.5, rel=1e-3)
    Image.fromarray(img).save(tmp_path / "72dpi.png", dpi=(72, 72))  # a writer's default, not a pixel size
    with pytest.raises(SlideReadError, match="not a microscope pixel size"):
        open_slide(tmp_path / "72dpi.png")


def test_truncated_png_and_oversized_untiled_image(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:len(data) // 2])
    with pytest.raises(SlideReadError, match=r"cut\.png.*truncated"):
        open_slide(tmp_path / "cut.png", mpp=1.0)
    monkeypatch.setattr(slide_mod, "MAX_UNTILED_PIXELS", 150 * 150)
    with pytest.raises(SlideReadError, match=r"a\.png.*200 x 200.*not tiled.*tiled pyramidal TIFF"):
        open_slide(tmp_path / "a.png", mpp=1.0)


def test_truncated_tiff_names_the_file(tmp_path):
    img = np.random.default_rng(4).integers(0, 256, (700, 700, 3), dtype=np.uint8)
    path = write(tmp_path / "s.tif", img, compression="zlib")
    data = path.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(SlideReadError, match=r"cut\.tif") as err:
        with open_slide(cut) as s:
            for y in range(0, 700, 256):
                s.read(0, 0, y, 700, 256)
    assert isinstance(err.value, LymphCastError)


def test_corrupt_tile_names_level_and_tile(tmp_path):
    path = write(tmp_path / "s.tif", planted(600, 600), compression="zlib")
    with tifffile.TiffFile(path) as tif:
        offset, count = tif.pages[0].dataoffsets[3], tif.pages[0].databytecounts[3]
    data = bytearray(path.read_bytes())
    data[offset:offset + count] = b"\x00" * count
    path.write_bytes(bytes(data))
    with open_slide(path) as s:
        s.read(0, 0, 0, 256, 256)  # tile 0 is intact
        with pytest.raises(SlideReadError, match=r"s\.tif: level 0, tile 3: corrupt"):
            s.read(0, 0, 256, 600, 300)


def test_missing_folder_and_non_image(tmp_path):
    with pytest.raises(SlideReadError, match="file not found"):
        open_slide(tmp_path / "nope.tif")
    with pytest.raises(SlideReadError, match="is a folder"):
        open_slide(tmp_path)
    (tmp_path / "notes.txt").write_text("not a slide\n")
    with pytest.raises(SlideReadError, match=r"notes\.txt.*not a readable image"):
        open_slide(tmp_path / "notes.txt", mpp=1.0)
    (tmp_path / "fake.tif").write_bytes(b"II*\x00" + b"\xff" * 40)
    with pytest.raises(SlideReadError, match=r"fake\.tif.*TIFF"):
        open_slide(tmp_path / "fake.tif", mpp=1.0)
    path = write(tmp_path / "s.tif", planted(100, 100, box=(0, 0, 10, 10)))
    with open_slide(path) as s, pytest.raises(SlideReadError, match="level 9 does not exist"):
        s.read(9, 0, 0, 4, 4)


def test_vendor_format_without_openslide_says_which_extra(tmp_path, monkeypatch):
    path = write(tmp_path / "s.svs", planted(100, 100, box=(0, 0, 10, 10)))
    monkeypatch.setitem(sys.modules, "openslide", None)  # import openslide now raises ImportError
    with pytest.raises(SlideReadError, match=r"s\.svs.*pip install lymphcast\[slides\]"):
        open_slide(path)


def test_openslide_backend_agrees_with_tifffile(tmp_path):
    pytest.importorskip("openslide")
    img = planted(1000, 1200, box=(400, 300, 520, 420))
    img[::7, ::5] = (90, 60, 140)  # texture, so that a shifted read would not agree
    path = write(tmp_path / "s.tif", img)
    with open_slide(path) as a, open_slide(path, backend="openslide") as b:
        assert b.backend == "openslide" and a.levels == b.levels
        for i, (x, y, w, h) in enumerate([(380, 280, 300, 200), (150, 100, 400, 300), (-20, 50, 200, 250)]):
            ra, rb = a.read(i, x, y, w, h), b.read(i, x, y, w, h)
            assert np.abs(ra.astype(int) - rb).max() <= 2


def test_alpha_is_composited_on_white():
    from lymphcast.io.slide import flatten_rgb

    rgba = np.array([[[0, 100, 200, 255], [0, 100, 200, 0], [0, 100, 200, 128]]], np.uint8)
    assert flatten_rgb(rgba).tolist() == [[[0, 100, 200], [255, 255, 255], [127, 177, 227]]]
    assert flatten_rgb(np.array([[[10, 255]]], np.uint8)).tolist() == [[[10, 10, 10]]]  # gray + alpha
    premultiplied = np.array([[[0, 50, 100, 128]]], np.uint8)
    assert flatten_rgb(premultiplied, associated=True).tolist() == [[[127, 177, 227]]]
