"""Load test of ``skysolve serve``: many uploads from concurrent clients, optionally with
the server killed (SIGKILL) part-way and started again.

Each client uploads real frames (``src/skysolve/tests/data``, alternating) through
nova's API (``/api/upload`` with a scale hint, 10-13 deg wide) and polls
``/api/jobs/ID`` every 50 ms until the job is done; the time from the start of the
upload to the poll that sees it done is the job's latency. With ``--kill-after N``
the server is killed with SIGKILL once N uploads were accepted and started again on
the same data directory and port; clients retry through the outage (an upload
whose answer was lost is sent again, so the server may hold a job no client heard
of: reported as ``unacknowledged``).

Usage::

    python benchmarks/load_server.py [--uploads 200] [--clients 8] [--workers 2]
                                     [--kill-after 100] [--db FILE] [--out results.json]

Not part of ``run.py`` (there is no local peer to compare with): it reports absolute
figures of this machine, which is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "src" / "skysolve" / "tests" / "data"
FRAMES = sorted(DATA.glob("*.tiff"))
CACHE = Path(__file__).resolve().parent / ".cache"
SETTINGS = json.dumps({"scale_units": "degwidth", "scale_lower": 10, "scale_upper": 13})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database(path: str | None) -> Path:
    if path:
        return Path(path)
    db = CACHE / "load_server_small.db"
    if not db.exists():
        from conftest import SMALL_DB_PARAMETERS
        from skysolve.database import SolverDatabase

        CACHE.mkdir(exist_ok=True)
        SolverDatabase.generate_from_hipparcos(**SMALL_DB_PARAMETERS).save_to_file(db)
    return db


class Server:
    def __init__(self, db: Path, data: Path, workers: int) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "skysolve", "serve", "-q", "--db", str(db),
                    "--data-dir", str(data), "--port", str(self.port), "--workers",
                    str(workers), "--max-queue", "100000"]
        self.proc: subprocess.Popen | None = None
        self.log = data.parent / "server.log"

    def start(self) -> float:
        t0 = time.perf_counter()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT)
        while True:
            try:
                httpx.get(self.url + "/api/health", timeout=5)
                return time.perf_counter() - t0
            except httpx.HTTPError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited: {self.log.read_text()[-3000:]}") \
                        from None
                time.sleep(0.2)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)


def _retrying(fn):
    """Call ``fn`` until the server answers (it may be down for a restart)."""
    while True:
        try:
            return fn()
        except httpx.TransportError:
            time.sleep(0.2)


def _client(url: str, jobs: list[int], frames: list[bytes], out: dict, accepted: list,
            lock: threading.Lock) -> None:
    with httpx.Client(base_url=url, timeout=120) as http:
        for k in jobs:
            t0 = time.perf_counter()
            r = _retrying(lambda k=k: http.post("/api/upload", data={"request-json": SETTINGS},
                                                files={"file": (f"frame{k}.tiff",
                                                                frames[k % len(frames)])}))
            r.raise_for_status()
            subid = r.json()["subid"]
            with lock:
                accepted.append(subid)
            while True:
                status = _retrying(lambda s=subid: http.get(f"/api/jobs/{s}")).json()["status"]
                if status != "solving":
                    break
                time.sleep(0.05)
            out[k] = {"subid": subid, "status": status, "latency_s": time.perf_counter() - t0}


def run(uploads: int, clients: int, workers: int, kill_after: int | None,
        db: str | None) -> dict:
    frames = [p.read_bytes() for p in FRAMES]
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(_database(db), Path(tmp) / "data", workers)
        startup = server.start()
        out: dict[int, dict] = {}
        accepted: list[int] = []
        lock = threading.Lock()
        threads = [threading.Thread(target=_client, args=(server.url, list(range(c, uploads,
                   clients)), frames, out, accepted, lock), daemon=True) for c in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        restart = None
        if kill_after:
            while len(accepted) < kill_after:
                time.sleep(0.01)
            server.kill()
            restart = {"killed_after_accepted": len(accepted), "restart_s": server.start()}
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        counts = httpx.get(server.url + "/api/health").json()["jobs"]
        server.stop()
    lat = np.array([o["latency_s"] for o in out.values()])
    ids = [o["subid"] for o in out.values()]
    return {"uploads": uploads, "clients": clients, "workers": workers,
            "server_start_s": round(startup, 2), "restart": restart,
            "answered": len(out), "solved": sum(o["status"] == "success" for o in out.values()),
            "distinct_ids": len(set(ids)), "server_jobs": counts,
            "unacknowledged": sum(counts.values()) - len(set(ids)),
            "latency_p50_s": round(float(np.percentile(lat, 50)), 3),
            "latency_p99_s": round(float(np.percentile(lat, 99)), 3),
            "latency_max_s": round(float(lat.max()), 3), "wall_s": round(wall, 2),
            "jobs_per_s": round(uploads / wall, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--uploads", type=int, default=200)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--kill-after", type=int, default=None,
                   help="SIGKILL the server after this many accepted uploads, then restart it")
    p.add_argument("--db", help="database file (default: the tests' small Hipparcos database)")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    result = run(args.uploads, args.clients, args.workers, args.kill_after, args.db)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    ok = result["solved"] == result["uploads"] == result["distinct_ids"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
