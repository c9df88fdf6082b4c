"""Load benchmark of `lymphcast serve` on loopback: p50/p95 latency, throughput and errors with 1, 10 and 50
concurrent clients, for a clinical-only case and for a case with six node images.

The server runs as its own processes (`lymphcast serve --workers 2`, as deployed on 2 cores); the clients are threads
of this process, each sending its next request as soon as the last one was answered (closed loop), so N clients
means N requests in flight. Without --bundle a small fused bundle (clinical + ultrasound images) is trained on a
synthetic cohort first (about a minute).

    .venv/bin/python benchmarks/bench_service.py [--bundle LOCKED_BUNDLE] [--seconds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_bundle(folder: Path) -> tuple[Path, Path]:
    """A locked fused bundle (clinical + us_image) and the cohort it came from."""
    from lymphcast.bundle import lock_bundle, save_bundle
    from lymphcast.cohort import read_cohort
    from lymphcast.pipeline import train
    from lymphcast.synth import generate_cohort

    cohort_dir = generate_cohort(folder / "cohort", patients=240, centres=4, seed=41,
                                 modalities=["clinical", "us_image"], progress=False)
    options = {"us_image": {"epochs": 3, "detector": "off", "progress": False}}
    bundle = train(read_cohort(cohort_dir), modalities=["clinical", "us_image"], options=options, seed=1)
    save_bundle(bundle, folder / "model")
    lock_bundle(folder / "model", folder / "locked", note="load benchmark")
    return folder / "locked", cohort_dir


def six_images(cohort_dir: Path) -> list[bytes]:
    import pandas as pd

    nodes = pd.read_csv(cohort_dir / "nodes.csv")
    refs = [r.split(";")[0] for r in nodes["us_image_file"].dropna().head(6)]
    return [(cohort_dir / r).read_bytes() for r in refs]


def start_server(bundle: Path, data: Path, port: int, workers: int = 1) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("lymphcast")
    proc = subprocess.Popen([str(exe), "serve", str(bundle), "--data", str(data), "--port", str(port),
                             "--workers", str(workers)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
    proc.kill()
    raise SystemExit("server did not become ready in 120 s")


def run_load(url: str, token: str, clients: int, seconds: float, images: list[bytes] | None) -> dict:
    import httpx

    case = {"patient_id": "LOAD1", "clinical": {"age": 44, "sex": "F", "tumour_size_mm": 16, "multifocal": 1}}
    if images:
        case["nodes"] = [{"side": "left" if i < 3 else "right", "level": ("II", "III", "IV")[i % 3],
                          "images": [f"n{i}.png"]} for i in range(len(images))]
    latencies, errors, lock = [], [], threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client():
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            while time.perf_counter() < stop_at:
                start = time.perf_counter()
                try:
                    if images:
                        files = [("files", (f"n{i}.png", data, "image/png")) for i, data in enumerate(images)]
                        r = http.post("/api/v1/cases/upload", data={"case": json.dumps(case)}, files=files)
                    else:
                        r = http.post("/api/v1/cases", json=case)
                    ok, why = r.status_code == 201, f"HTTP {r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, why = False, f"{type(exc).__name__}: {exc}"
                with lock:
                    latencies.append(time.perf_counter() - start) if ok else errors.append(why)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    cpu0 = time.process_time()
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    client_cpu = time.process_time() - cpu0
    ms = np.asarray(latencies) * 1000
    return {"clients": clients, "requests": len(latencies), "errors": len(errors), "first_error": errors[:1],
            "p50_ms": float(np.percentile(ms, 50)) if len(ms) else float("nan"),
            "p95_ms": float(np.percentile(ms, 95)) if len(ms) else float("nan"),
            "throughput_per_s": len(latencies) / wall, "client_cpu_ms": 1000 * client_cpu / max(len(latencies), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, help="locked bundle (default: train a small one)")
    ap.add_argument("--cohort", type=Path, help="cohort to take six node images from (with --bundle)")
    ap.add_argument("--seconds", type=float, default=15.0, help="duration of each load level")
    ap.add_argument("--clients", default="1,10,50")
    ap.add_argument("--workers", type=int, default=2, help="server worker processes")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.bundle is None:
            print("training a small fused bundle (clinical + us_image) ...", flush=True)
            bundle, cohort_dir = build_bundle(tmp)
        else:
            bundle, cohort_dir = args.bundle, args.cohort
            if cohort_dir is None:
                raise SystemExit("--cohort is needed with --bundle (the node images come from it)")
        from lymphcast.service.auth import TokenStore

        token = TokenStore(tmp / "data" / "tokens.json").issue("load", "integration")
        port = free_port()
        server = start_server(bundle, tmp / "data", port, args.workers)
        try:
            images = six_images(cohort_dir)
            url = f"http://127.0.0.1:{port}"
            run_load(url, token, 2, 3, images)  # warm-up: imports, first forward pass
            print(f"{'case':<22}{'clients':>8}{'requests':>10}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'req/s':>8}"
                  f"{'client CPU ms/req':>19}")
            for label, imgs in (("clinical only", None), ("clinical + 6 images", images)):
                for n in (int(c) for c in args.clients.split(",")):
                    r = run_load(url, token, n, args.seconds, imgs)
                    print(f"{label:<22}{n:>8}{r['requests']:>10}{r['errors']:>8}{r['p50_ms']:>9.0f}"
                          f"{r['p95_ms']:>9.0f}{r['throughput_per_s']:>8.1f}{r['client_cpu_ms']:>19.1f}", flush=True)
                    if r["errors"]:
                        print(f"  first error: {r['first_error'][0]}")
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(f"cores: {os.cpu_count()}; server: lymphcast serve --workers {args.workers}; clients: threads of this "
              f"process on the same machine")


if __name__ == "__main__":
    main()
