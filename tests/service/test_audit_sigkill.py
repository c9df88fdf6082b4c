"""Kill the server with SIGKILL while clients are being answered: every request that got an answer is in the
audit trail (rows are committed before the response leaves)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.service.conftest import CLINICAL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_answered_requests_survive_sigkill(service_bundle, tmp_path):
    from lymphcast.service.auth import TokenStore

    data = tmp_path / "data"
    token = TokenStore(data / "tokens.json").issue("engine", "integration")
    port = _free_port()
    exe = Path(sys.executable).with_name("lymphcast")
    server = subprocess.Popen([str(exe), "serve", str(service_bundle), "--data", str(data), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ,
                                                                                      "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                if httpx.get(f"{url}/api/v1/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "server not ready in 90 s"
            time.sleep(0.2)
        answered: list[str] = []
        lock, stop = threading.Lock(), threading.Event()

        def client():
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as http:
                while not stop.is_set():
                    try:
                        r = http.post("/api/v1/cases", json={"patient_id": "K1", "clinical": CLINICAL})
                    except httpx.HTTPError:
                        return  # the server is gone
                    with lock:
                        answered.append(r.headers["x-request-id"])

        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        while len(answered) < 20 and time.time() < deadline + 60:
            time.sleep(0.05)
        server.send_signal(signal.SIGKILL)  # mid-load: requests are in flight
        server.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=15)
    finally:
        if server.poll() is None:
            server.kill()
    assert len(answered) >= 20
    db = sqlite3.connect(data / "audit.sqlite")
    audited = {row[0] for row in db.execute("SELECT request_id FROM audit")}
    missing = set(answered) - audited
    assert not missing, f"{len(missing)} answered request(s) missing from the audit trail"
