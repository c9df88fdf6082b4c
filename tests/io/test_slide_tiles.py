"""Tiling slides: tissue tiles at a set magnification, background skipped, memory bounded."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from PIL import Image

from lymphcast.io.slide import open_slide
from lymphcast.io.slide_tiles import TileSpec, iter_tiles, plan_tiles, read_tiles

from .slide_files import RED, blank, cells, planted, write

PAP = [(110, 140, 190), (225, 160, 190), (150, 190, 170), (60, 70, 130)]   # blue/pink/green cytoplasm, nuclei
DIFF_QUIK = [(120, 60, 150), (80, 50, 140), (160, 110, 190)]              # purple/blue
WHITE, MAGENTA = (244, 243, 245), (228, 196, 228)                          # glass; tinted Diff-Quik background


def test_planted_square_in_tiles_at_another_mpp(tmp_path):
    img = planted(1000, 1200, box=(384, 256, 512, 384))  # level-0 pixels at 0.5 um/px
    path = write(tmp_path / "s.tif", img, mpp=0.5)
    plan, tiles = read_tiles(path, TileSpec(size=32, mpp=1.0, min_tissue=0.5))
    assert plan.level == 1 and plan.scale == pytest.approx(1.0) and plan.tile_base_px == pytest.approx(64)
    assert plan.grid == (16, 19) and tiles.shape == (len(plan), 32, 32, 3)
    # the square covers level-0 x 384..512, y 256..384: tiles at cols 6-7, rows 4-5, nothing else
    assert sorted(map(tuple, plan.cell)) == [(4, 6), (4, 7), (5, 6), (5, 7)]
    assert sorted(map(tuple, plan.coords)) == [(384, 256), (384, 320), (448, 256), (448, 320)]
    assert np.abs(tiles[:, 4:-4, 4:-4].astype(int) - RED).max() <= 30
    assert plan.thumbnail.dtype == np.uint8 and plan.thumbnail.shape[2] == 3
    assert plan.thumbnail_mpp * plan.thumbnail.shape[1] == pytest.approx(0.5 * 1200, rel=0.05)


def test_tiles_downsampled_from_level_0_match_a_box_average(tmp_path):
    img = cells(blank(512, 512), 0, 0, 512, 512, DIFF_QUIK, seed=5)
    path = write(tmp_path / "s.tif", img, mpp=0.5, compression="zlib", tile=128)
    with open_slide(path) as s:
        plan = plan_tiles(s, TileSpec(size=32, mpp=1.5, min_tissue=0.0))  # no level at 1.5: level 1 (1.0) read
        assert plan.level == 1 and plan.scale == pytest.approx(1.5) and plan.grid == (6, 6)
        got = np.empty((len(plan), 32, 32, 3), np.uint8)
        for idx, batch in iter_tiles(s, plan, batch=5):
            assert len(batch) <= 5
            got[idx] = batch
    x, y = plan.coords[7]  # tile (1, 1): level-0 96..192, a 3x3 box per target pixel
    want = img[y:y + 96, x:x + 96].reshape(32, 3, 32, 3, 3).mean(axis=(1, 3))
    assert np.abs(got[7].astype(float) - want).mean() < 4  # through level 1 (already 2x2 averaged)


@pytest.mark.parametrize("stain,background", [("pap", WHITE), ("diff_quik", WHITE), ("diff_quik", MAGENTA)])
def test_tissue_tiles_kept_and_blank_skipped(tmp_path, stain, background):
    img = blank(640, 640, background)
    colours = PAP if stain == "pap" else DIFF_QUIK
    img = cells(img, 0, 0, 128, 128, colours, seed=1)      # grid cell (0, 0): tiles are 128 level-0 px
    img = cells(img, 384, 256, 512, 384, colours, seed=2)  # grid cell (2, 3)
    img = cells(img, 32, 400, 64, 432, colours, seed=3)    # a small clump in cell (3, 0): 1/16 of it
    img = (img.astype(int) + np.random.default_rng(0).integers(-4, 5, img.shape)).clip(0, 255).astype(np.uint8)
    path = write(tmp_path / "s.tif", img, mpp=0.5)
    with open_slide(path) as s:
        plan = plan_tiles(s, TileSpec(size=64, mpp=1.0, min_tissue=0.25))
    assert plan.grid == (5, 5)
    kept = set(map(tuple, plan.cell))
    assert kept == {(0, 0), (2, 3)}
    assert plan.tissue.min() >= 0.75


def test_max_tiles_is_a_seeded_subset(tmp_path):
    img = cells(blank(512, 512), 0, 0, 512, 512, PAP, seed=3)
    path = write(tmp_path / "s.tif", img, mpp=1.0)
    with open_slide(path) as s:
        full = plan_tiles(s, TileSpec(size=32, mpp=1.0))
        a = plan_tiles(s, TileSpec(size=32, mpp=1.0, max_tiles=10), rng_seed=7)
        b = plan_tiles(s, TileSpec(size=32, mpp=1.0, max_tiles=10), rng_seed=7)
    assert len(full) > 10 and len(a) == 10
    assert np.array_equal(a.coords, b.coords)
    assert set(map(tuple, a.coords)) <= set(map(tuple, full.coords))


def test_single_level_png(tmp_path):
    img = planted(600, 500, box=(160, 240, 320, 400))
    Image.fromarray(img).save(tmp_path / "field.png")
    plan, tiles = read_tiles(tmp_path / "field.png", TileSpec(size=40, mpp=0.5, min_tissue=0.9), mpp=0.25)
    assert plan.level == 0 and plan.scale == pytest.approx(2.0) and plan.grid == (8, 7)
    assert sorted(map(tuple, plan.cell)) == [(3, 2), (3, 3), (4, 2), (4, 3)]  # 80-px cells inside the square
    assert np.abs(tiles.astype(int) - RED).max() <= 1


def test_spec_is_validated():
    with pytest.raises(ValueError):
        TileSpec(size=0)
    with pytest.raises(ValueError):
        TileSpec(min_tissue=1.5)


def test_tiling_memory_stays_far_below_the_image(tmp_path):
    """A 4,000 x 4,000 RGB slide (48 MB decoded), tissue everywhere, tiled at full resolution: the traced peak
    stays under a quarter of the image, so it cannot have been held whole (nor a whole band of it)."""
    side = 4000
    level0 = np.memmap(tmp_path / "level0.raw", np.uint8, "w+", shape=(side, side, 3))
    yy, xx = np.mgrid[0:500, 0:side]
    for top in range(0, side, 500):  # written in blocks: 16-px purple/white checkerboard, every tile ~50% tissue
        on = (((yy + top) // 16 + xx // 16) % 2 == 0)[..., None]
        level0[top:top + 500] = np.where(on, np.uint8([120, 60, 150]), np.uint8([244, 243, 245]))
    path = write(tmp_path / "big.tif", level0, mpp=0.5, compression="zlib")
    del level0
    tracemalloc.start()
    try:
        with open_slide(path) as s:
            plan = plan_tiles(s, TileSpec(size=64, mpp=0.5, min_tissue=0.1))
            n, total = 0, 0
            for idx, batch in iter_tiles(s, plan, batch=64):
                n += len(idx)
                total += int(batch[:, :, :, 0].sum(dtype=np.int64))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert plan.grid == (63, 63) and n == len(plan) == 63 * 63
    assert 120 * 0.4 < total / (n * 64 * 64) < 244 * 0.6 + 120 * 0.6  # the tiles hold the pattern
    assert peak < side * side * 3 / 4, f"traced peak {peak / 2**20:.1f} MB"


def test_openslide_backend_gives_the_same_tiles(tmp_path):
    pytest.importorskip("openslide")
    img = cells(blank(700, 600), 100, 100, 500, 400, PAP, seed=4)
    path = write(tmp_path / "s.tif", img, mpp=0.5)
    got = {}
    for backend in ("tifffile", "openslide"):
        with open_slide(path, backend=backend) as s:
            plan = plan_tiles(s, TileSpec(size=48, mpp=1.2))
            tiles = np.empty((len(plan), 48, 48, 3), np.uint8)
            for idx, batch in iter_tiles(s, plan, batch=7):
                tiles[idx] = batch
            got[backend] = plan, tiles
    (pa, ta), (pb, tb) = got["tifffile"], got["openslide"]
    assert len(pa) > 5 and np.array_equal(pa.coords, pb.coords)
    assert np.abs(ta.astype(int) - tb).max() <= 2
