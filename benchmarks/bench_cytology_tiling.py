"""Tiling a large cytology slide: tissue tiles found, tiles per second, and the peak memory of the process.

    .venv/bin/python benchmarks/bench_cytology_tiling.py [--size 20000] [--keep]

Builds a SIZE x SIZE RGB slide at 0.5 um/px in a temporary folder: level 0 is a numpy memmap on disk, filled
block by block with a pale background and clumps of "cells" (pink / blue-green cytoplasm with dark nuclei)
covering about a third of the area, then written by `write_pyramid(..., compression="jpeg")`. A child process
(this file run with --child, so its memory is its own) then plans and reads every tissue tile with
TileSpec(size=64, mpp=1.0): tiles come from level 1 (1.0 um/px). Printed for the tifffile backend, and for the
openslide backend when openslide-python is installed:
- tissue tiles kept / the full tile grid, and the level read;
- seconds (plan, read) and tiles per second;
- the child's peak RSS (ru_maxrss) against its RSS just after imports (the baseline), against the 2 GB target
  (issue "Cytology", item 2) and against the 1.2 GB an uncompressed 20,000 x 20,000 RGB image needs.
Nothing about time is asserted.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MPP0 = 0.5
TARGET_BYTES = 2 * 10 ** 9
BLOCK_ROWS = 500
BACKGROUND = np.array([238, 236, 240], np.float32)
PINK, BLUE_GREEN, NUCLEUS = (np.array(c, np.float32) for c in ((225, 160, 190), (150, 185, 190), (70, 60, 120)))


def _smooth_field(shape: tuple[int, int], passes: int, rng) -> np.ndarray:
    """Random field blurred by repeated 3 x 3 box averages (wraps at the edges; it is only texture)."""
    f = rng.random(shape).astype(np.float32)
    for _ in range(passes):
        f = sum(np.roll(np.roll(f, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9.0
    return f


def _upsample(field: np.ndarray, cell: int, top: int, rows: int, width: int) -> np.ndarray:
    """Rows top..top+rows of `field` (one value per `cell` pixels) bilinearly enlarged to pixels."""
    from PIL import Image

    box = (0, top / cell, field.shape[1], (top + rows) / cell)
    return np.asarray(Image.fromarray(field).resize((width, rows), Image.Resampling.BILINEAR, box=box))


def build(folder: Path, size: int, seed: int = 0) -> Path:
    from lymphcast.io.slide_write import write_pyramid

    rng = np.random.default_rng(seed)
    cell = 100  # one clump-field value per 100 x 100 pixels (50 um)
    clumps = _smooth_field((-(-size // cell) + 1,) * 2, 6, rng)
    threshold = np.quantile(clumps, 0.65)  # ~35% of the area is cells
    tint = _smooth_field(clumps.shape, 3, rng)
    # stain and camera noise (+-6 levels), one random block repeated every 1,024 columns: cheap to make, yet
    # JPEG cannot exploit the repetition, so the file decodes about as slowly as a real scan
    noise = rng.integers(-6, 7, (BLOCK_ROWS, 1024, 3)).astype(np.float32)
    noise = np.tile(noise, (1, -(-size // 1024), 1))[:, :size]
    level0 = np.memmap(folder / "level0.raw", np.uint8, "w+", shape=(size, size, 3))
    for top in range(0, size, BLOCK_ROWS):
        rows = min(BLOCK_ROWS, size - top)
        tissue = _upsample(clumps, cell, top, rows, size) > threshold
        t = _upsample(tint, cell, top, rows, size)[..., None].clip(0.3, 0.7) * 2.5 - 0.75
        nuclei = rng.random((-(-rows // 8), -(-size // 8))) > 0.75  # 4 um nuclei, a quarter of the cell area
        nuclei = np.repeat(np.repeat(nuclei, 8, 0), 8, 1)[:rows, :size]
        colour = np.where(nuclei[..., None], NUCLEUS, PINK * t + BLUE_GREEN * (1 - t))
        pixels = np.where(tissue[..., None], colour, BACKGROUND) + noise[:rows]
        level0[top:top + rows] = pixels.clip(0, 255).astype(np.uint8)
    path = write_pyramid(folder / f"slide_{size}.tif", level0, MPP0, compression="jpeg")
    del level0
    (folder / "level0.raw").unlink()
    return path


def _status_kb(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process from /proc, in kB; unlike ru_maxrss, VmHWM starts afresh
    at exec, so it cannot carry the parent's peak."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))


def child(path: Path, backend: str) -> None:
    """Tile `path` and print one JSON line of figures (run in its own process)."""
    import PIL.Image  # noqa: F401  (imports first, so the baseline includes them)
    import tifffile  # noqa: F401

    from lymphcast.io.slide import open_slide
    from lymphcast.io.slide_tiles import TileSpec, iter_tiles, plan_tiles
    if backend == "openslide":
        import openslide  # noqa: F401
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    base_hwm = _status_kb("VmHWM")
    t0 = time.perf_counter()
    with open_slide(path, backend=backend) as slide:
        plan = plan_tiles(slide, TileSpec(size=64, mpp=1.0))
        t1 = time.perf_counter()
        n, checksum = 0, 0
        for idx, batch in iter_tiles(slide, plan):
            n += len(idx)
            checksum += int(batch[:, 32, 32].sum(dtype=np.int64))
    t2 = time.perf_counter()
    print(json.dumps({"backend": backend, "tiles": n, "grid": list(plan.grid), "level": plan.level,
                      "scale": plan.scale, "plan_s": t1 - t0, "read_s": t2 - t1, "base_kb": base_kb,
                      "base_hwm_kb": base_hwm, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "peak_hwm_kb": _status_kb("VmHWM"),
                      "mean_centre": checksum / max(n, 1) / 3, "thumbnail": list(plan.thumbnail.shape),
                      "thumbnail_mpp": plan.thumbnail_mpp}))


def report(r: dict, size: int) -> None:
    rows, cols = r["grid"]
    mb = 1024.0
    peak, base = r["peak_kb"] / mb, r["base_kb"] / mb
    whole = size * size * 3 / 2 ** 20
    print(f"[{r['backend']}] tissue tiles {r['tiles']} / grid {rows} x {cols} = {rows * cols} "
          f"({r['tiles'] / (rows * cols):.1%}); read from level {r['level']} (scale {r['scale']:.3g}); "
          f"mask thumbnail {r['thumbnail'][1]} x {r['thumbnail'][0]} at {r['thumbnail_mpp']:.3g} um/px")
    total = r["plan_s"] + r["read_s"]
    print(f"[{r['backend']}] plan {r['plan_s']:.2f} s, read {r['read_s']:.2f} s, total {total:.2f} s: "
          f"{r['tiles'] / r['read_s']:.0f} tiles/s reading, {r['tiles'] / total:.0f} tiles/s overall")
    print(f"[{r['backend']}] peak RSS (ru_maxrss) {peak:.0f} MiB; after imports {base:.0f} MiB -> tiling added "
          f"{peak - base:.0f} MiB; peak is {peak * 2 ** 20 / TARGET_BYTES:.1%} of the 2 GB target and "
          f"{peak / whole:.1%} of the {whole:.0f} MiB the whole level 0 would need uncompressed")
    print(f"[{r['backend']}] cross-check /proc VmHWM: peak {r['peak_hwm_kb'] / mb:.0f} MiB, after imports "
          f"{r['base_hwm_kb'] / mb:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=20000, help="side of the square slide in pixels")
    ap.add_argument("--keep", action="store_true", help="keep the slide file (its path is printed)")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--backend", default="tifffile", help=argparse.SUPPRESS)
    ap.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.backend)
        return
    if args.build:
        build(args.build, args.size)
        return
    folder = Path(tempfile.mkdtemp(prefix="lymphcast_tiling_"))
    try:
        t0 = time.perf_counter()
        # built in its own process too: this one stays small, so the children's ru_maxrss (which on Linux
        # starts from the parent's RSS at fork) measures the children
        subprocess.run([sys.executable, __file__, "--build", str(folder), "--size", str(args.size)], check=True)
        path = folder / f"slide_{args.size}.tif"
        print(f"built {args.size} x {args.size} slide at {MPP0} um/px in {time.perf_counter() - t0:.1f} s: "
              f"{path.stat().st_size / 2 ** 20:.0f} MiB JPEG pyramid")
        backends = ["tifffile"]
        try:
            import openslide  # noqa: F401
            backends.append("openslide")
        except ImportError:
            print("openslide-python not installed: openslide backend skipped")
        for backend in backends:
            done = subprocess.run([sys.executable, __file__, "--child", str(path), "--backend", backend],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                print(f"[{backend}] child failed:\n{done.stderr}")
                continue
            report(json.loads(done.stdout.strip().splitlines()[-1]), args.size)
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
