"""One Gaia database for every field of view, 2-180 deg: build, size, memory; vs tetra3rs.

Builds, each in a fresh subprocess so that its peak memory is its own (``VmHWM``):

* skysolve ``SolverDatabase.generate_from_gaia(min_fov_deg=2, max_fov_deg=180)``, every
  other parameter at its default;
* the same from the command line, ``skysolve db build --min-fov 2 --max-fov 180
  --pattern-max-error 0.001 -o FILE`` (the CLI's own default tolerance is the default
  database's 0.005; 0.001 is the library's), checked array by array against the first;
* tetra3rs ``generate_from_gaia(min_fov_deg=2, max_fov_deg=179.9)`` (it refuses 180), same
  other arguments (its defaults are skysolve's);
* both libraries on the 10-20 deg range of the solve benchmarks and tests, for reference.

Each row gives wall and CPU seconds of the build, peak resident memory, file size and load
time, with ratios skysolve / tetra3rs from this one run. The skysolve 2-180 database is then
checked for the wide frames of :mod:`skysolve.solver.tests.widefields` (a 180 deg all-sky
frame losing 10 deg above the horizon, a 120 deg fisheye, a 62 deg and a 2 deg pinhole
frame): for random pointings, how many of the 70 patterns of the frame's 8 brightest stars
(thinned as pattern stars are) the database holds.

    python benchmarks/run.py --only wide_db
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from bench_database import _child

WIDE = dict(min_fov_deg=2.0, max_fov_deg=180.0)
WIDE_PEER = dict(min_fov_deg=2.0, max_fov_deg=179.9)
SMALL = dict(min_fov_deg=10.0, max_fov_deg=20.0)

_CLI_CHILD = r"""
import json, os, resource, sys, time
from skysolve.cli import main
t0 = time.perf_counter()
rc = main(sys.argv[1:])
wall = time.perf_counter() - t0
r = resource.getrusage(resource.RUSAGE_SELF)
with open("/proc/self/status") as fh:
    peak = next(int(l.split()[1]) / 1024.0 for l in fh if l.startswith("VmHWM:"))
print(json.dumps({"rc": rc, "gen_s": wall, "gen_cpu_s": r.ru_utime + r.ru_stime,
                  "peak_mb": peak}))
"""


def _cli_build(out: Path, kwargs: dict) -> dict:
    argv = ["db", "build", "--quiet", "--min-fov", str(kwargs["min_fov_deg"]),
            "--max-fov", str(kwargs["max_fov_deg"]), "--pattern-max-error", "0.001",
            "-o", str(out)]
    proc = subprocess.run([sys.executable, "-c", _CLI_CHILD, *argv], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"skysolve db build failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _same_database(a: Path, b: Path) -> bool:
    from skysolve.database import SolverDatabase

    x = SolverDatabase.load_from_file(a, mmap=True)
    y = SolverDatabase.load_from_file(b, mmap=True)
    return all(np.array_equal(getattr(x, k), getattr(y, k))
               for k in ("star_ids", "star_magnitudes", "pattern_stars", "pattern_keys"))


def _coverage(path: Path, pointings: int) -> dict:
    from skysolve.database import SolverDatabase
    from skysolve.simulate import random_attitudes
    from skysolve.solver.tests.widefields import FIELDS, pattern_coverage

    db = SolverDatabase.load_from_file(path, mmap=True)
    rotations = random_attitudes(pointings, 2024)
    out = {}
    for name, field in FIELDS.items():
        counts = pattern_coverage(db, field, rotations, count=8)
        out[f"{name}_patterns_of_8_min"] = int(counts.min())
        out[f"{name}_patterns_of_8_median"] = float(np.median(counts))
        out[f"{name}_pointings_without"] = int(np.count_nonzero(counts == 0))
    return out


def _row(name: str, ours: dict, peer: dict | None, extra: dict | None = None) -> dict:
    row = {"benchmark": f"database generation ({name})",
           "peer": "tetra3rs" if peer else "tetra3rs (missing)",
           "skysolve_s": ours["gen_s"], "skysolve_cpu_s": ours["gen_cpu_s"],
           "skysolve_peak_mb": ours["peak_mb"], "skysolve_file_mb": ours.get("file_mb"),
           "skysolve_load_s": ours.get("load_s"), "skysolve_num_patterns": ours.get(
               "num_patterns"), "ratio": float("nan")}
    if peer:
        row.update(peer_s=peer["gen_s"], peer_cpu_s=peer["gen_cpu_s"],
                   peer_peak_mb=peer["peak_mb"], peer_file_mb=peer["file_mb"],
                   peer_load_s=peer["load_s"], peer_num_patterns=peer["num_patterns"],
                   ratio=ours["gen_s"] / peer["gen_s"],
                   cpu_ratio=ours["gen_cpu_s"] / peer["gen_cpu_s"],
                   peak_mb_ratio=ours["peak_mb"] / peer["peak_mb"],
                   file_size_ratio=ours["file_mb"] / peer["file_mb"])
    row.update(extra or {})
    return row


def run(quick: bool) -> list[dict]:
    have_peer = importlib.util.find_spec("tetra3rs") is not None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wide = tmp / "wide.db"
        ours = _child("skysolve", "generate_from_gaia", None, wide, kwargs=WIDE, keep=True)
        peer = (_child("tetra3rs", "generate_from_gaia", None, tmp / "t3.db", kwargs=WIDE_PEER)
                if have_peer else None)
        extra = _coverage(wide, 20 if quick else 100)
        if not quick:
            cli = _cli_build(tmp / "cli.db", WIDE)
            extra.update(cli_s=cli["gen_s"], cli_cpu_s=cli["gen_cpu_s"],
                         cli_peak_mb=cli["peak_mb"],
                         cli_same_database=_same_database(wide, tmp / "cli.db"))
        rows.append(_row("Gaia, 2-180 deg (tetra3rs 2-179.9), default parameters", ours, peer,
                         extra))
        wide.unlink()
        ours = _child("skysolve", "generate_from_gaia", None, tmp / "small.db", kwargs=SMALL)
        peer = (_child("tetra3rs", "generate_from_gaia", None, tmp / "t3s.db", kwargs=SMALL)
                if have_peer else None)
        rows.append(_row("Gaia, 10-20 deg, default parameters", ours, peer))
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
