"""Streaming the ultrasound cine-clip model: sustained frames per second and per-frame latency on 2 cores.

    .venv/bin/python benchmarks/bench_us_video_stream.py [COHORT_FOLDER] [--frames N] [--threads 2,1] [--baseline N]

A UsVideoModel with the DEFAULT architecture (frames 16, size 48, channels 16-32-48; speed does not depend on
how well it is trained, so it is fitted for one epoch) streams the longest node clip of a synthetic cohort
(generated in a temporary folder unless one is given: 40 patients, cine clips rendered by synth/us_cine*),
looped until at least `--frames` frames, as `lymphcast stream MODEL VIDEO --fast` does: each frame is decoded,
released, cropped, encoded once, and the temporal part reruns over 16 frames sampled from every frame seen so far.
Printed:
- sustained frames/s: frames / (first frame's release → last update), decoding included;
- per-frame latency (frame released → update emitted) median and p95 in ms;
- the baseline, in the same process: every update recomputed from scratch (all 16 sampled frames cropped and
  re-encoded, then the whole network), over the first `--baseline` frames, interleaved frame by frame with a
  fresh stream over the same frames (so load on the machine hits both alike): frames/s of each, compute only,
  their ratio, and the largest difference between the two risks (they must agree);
- a real-time run: the clip with the highest frame rate played at its own rate (`--realtime-frames` frames),
  latency counted from each frame's scheduled release, so falling behind would show;
for each torch intra-op thread count of `--threads` (default 2, then 1, ClipStream's default) in turn.
Acceptance (issue 4): >= 30 frames/s sustained and p95 latency <= 33 ms on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from lymphcast.cohort import read_cohort
from lymphcast.modalities.us_video import UsVideoModel
from lymphcast.modalities.us_video_clips import BOX_COLUMNS, clip_extra, frame_crops, frame_interval
from lymphcast.modalities.us_video_clips import sample_indices, scale_windows, video_nodes
from lymphcast.stream import ClipStream, file_frames, summarise


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cohort", nargs="?", type=Path, help="cohort folder with us_video clips (default: generate one)")
    ap.add_argument("--patients", type=int, default=40)
    ap.add_argument("--frames", type=int, default=600, help="frames to stream (the clip is looped)")
    ap.add_argument("--baseline", type=int, default=120, help="frames for the recompute-from-scratch baseline")
    ap.add_argument("--realtime-frames", type=int, default=150)
    ap.add_argument("--threads", default="2,1", help="torch intra-op thread counts to measure, comma-separated")
    args = ap.parse_args()
    args.threads = [int(t) for t in args.threads.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.cohort
        if folder is None:
            from lymphcast.synth import generate_cohort

            folder = generate_cohort(Path(tmp) / "cohort", patients=args.patients, centres=4, seed=13,
                                     modalities=["clinical", "us_video"], progress=False)
        run(read_cohort(folder), args)


def stream(model, path: Path, row, total: int, realtime: bool = False, threads: int = 1):
    """Stream the clip looped to `total` frames; updates and the perf_counter times of the two ends."""
    s = ClipStream(model, box=tuple(row[c] for c in BOX_COLUMNS), spacing_mm=row["us_video_pixel_spacing_mm"],
                   fps=row["us_video_fps"], threads=threads)
    updates, first, done, offset = [], None, None, 0.0
    while len(updates) < total:
        for f in file_frames(path, realtime):
            first = f.released_at if first is None else first
            updates.append(s.push(f.pixels, offset + f.time_s, f.released_at))
            done = time.perf_counter()
            if len(updates) == total:
                break
        offset = updates[-1].time_s + 1.0 / float(row["us_video_fps"])
    return updates, first, done


def paired(model, path: Path, row, total: int, threads: int) -> tuple[float, float, float]:
    """Streaming and the baseline (every update re-crops and re-encodes all sampled frames seen so far, then the
    whole network) on the same frames, one after the other per frame so that any load on the machine hits both
    alike; frames/s of each (compute only) and their largest risk difference."""
    import torch

    from lymphcast.nets.clip_net import prepare

    net, box = model.network(), tuple(row[c] for c in BOX_COLUMNS)
    s = ClipStream(model, box=box, spacing_mm=row["us_video_pixel_spacing_mm"], fps=row["us_video_fps"],
                   threads=threads)
    frames, times, spent, diff = [], [], np.zeros(2), 0.0
    for f in file_frames(path, False, max_frames=total):
        t0 = time.perf_counter()
        risk = s.push(f.pixels, f.time_s).risk
        t1 = time.perf_counter()
        frames.append(f.pixels)
        times.append(f.time_s)
        windows = scale_windows(box)
        x = np.stack([frame_crops(frames[k], windows, model.size) for k in sample_indices(len(frames), model.frames)])
        extra = clip_extra(box, row["us_video_pixel_spacing_mm"], frames[0].shape, len(frames),
                           frame_interval(times, row["us_video_fps"]))
        with torch.inference_mode():
            logit, _ = net(prepare(torch.from_numpy(x))[None], torch.from_numpy(extra)[None])
        base = float(model._calibrated(np.array([float(logit[0])]))[0])
        spent += (t1 - t0, time.perf_counter() - t1)
        diff = max(diff, abs(base - risk))
    return len(frames) / spent[0], len(frames) / spent[1], diff


def run(cohort, args) -> None:
    import torch

    torch.set_num_threads(max(args.threads))
    t0 = time.perf_counter()
    model = UsVideoModel(seed=0, epochs=1, head_epochs=1, progress=False).fit(cohort)
    print(f"fitted a default-architecture UsVideoModel (frames {model.frames}, size {model.size}, channels "
          f"{model.channels}) for 1 epoch in {time.perf_counter() - t0:.0f} s")
    nodes = video_nodes(cohort)
    row = nodes.loc[nodes["us_video_frames"].astype(float).idxmax()]
    fast_row = nodes.loc[nodes["us_video_fps"].astype(float).idxmax()]
    path = cohort.media_path(row["us_video_file"])
    print(f"clip {row['us_video_file']}: {int(row['us_video_frames'])} frames at {float(row['us_video_fps']):g} "
          f"frames/s, looped to {args.frames} frames")
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"\n--- torch intra-op threads {threads} (machine: {os.cpu_count()} cores) ---")
        updates, first, done = stream(model, path, row, args.frames, threads=threads)
        s = summarise(updates, first, done)
        n = min(args.baseline, int(row["us_video_frames"]))
        stream_fps, base_fps, diff = paired(model, path, row, n, threads)
        print(f"streaming --fast: {s.frames} frames in {s.seconds:.2f} s = {s.fps:.0f} frames/s sustained; latency "
              f"median {s.latency_median_ms:.2f} ms, p95 {s.latency_p95_ms:.2f} ms, "
              f"max {max(u.latency_ms for u in updates):.2f} ms")
        print(f"first {n} frames, compute only, interleaved: streaming {stream_fps:.0f} frames/s, baseline "
              f"(recompute from scratch each frame) {base_fps:.0f} frames/s, ratio {stream_fps / base_fps:.1f}x; "
              f"largest risk difference {diff:.1e}")
        rt, rt_first, rt_done = stream(model, cohort.media_path(fast_row["us_video_file"]), fast_row,
                                       args.realtime_frames, realtime=True, threads=threads)
        r = summarise(rt, rt_first, rt_done)
        print(f"streaming --realtime ({float(fast_row['us_video_fps']):g} frames/s clip): {r.frames} frames, "
              f"{r.fps:.1f} frames/s; latency median {r.latency_median_ms:.2f} ms, p95 {r.latency_p95_ms:.2f} ms")
        ok = s.fps >= 30 and s.latency_p95_ms <= 33 and r.latency_p95_ms <= 33
        print(f"acceptance (>= 30 frames/s sustained, p95 <= 33 ms): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
