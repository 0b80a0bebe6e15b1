"""Pattern-database generation and loading: skysolve vs tetra3rs.

Both libraries build the seed notebook's database (``max_fov_deg=14.0,
pattern_max_error=0.005, lattice_field_oversampling=100,
patterns_per_lattice_field=500, verification_stars_per_fov=3000,
epoch_proper_motion_year=2018``) with identical arguments, from

* the bundled Gaia DR3 catalog (``generate_from_gaia()`` in both), and
* Hipparcos 2: skysolve's ``generate_from_hipparcos()`` (reads ``hip2.dat``)
  against tetra3rs's ``generate_from_hipparcos()`` when it has one, otherwise
  its ``generate_from_gaia()`` on the same Hipparcos stars written as a GDR3
  file at J2016.0 (tetra3rs 0.14 has no Hipparcos reader).

Every build runs in a fresh subprocess, so the peak memory of each library is
the child's own ``VmHWM`` (peak resident set); builds alternate between the libraries and the
median wall time over the repeats is reported. Each child also saves the
database (file size) and loads it back three times (median load time).
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SEED_KWARGS = dict(max_fov_deg=14.0, pattern_max_error=0.005, lattice_field_oversampling=100,
                   patterns_per_lattice_field=500, verification_stars_per_fov=3000,
                   epoch_proper_motion_year=2018)

_CHILD = r"""
import gc, json, os, resource, statistics, sys, time
args = json.loads(sys.argv[1])
if args["lib"] == "skysolve":
    from skysolve.database import SolverDatabase
else:
    from tetra3rs import SolverDatabase

def maxrss_mb():
    # VmHWM is this process image's own peak; ru_maxrss survives exec and would
    # report the parent's peak when that is larger
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux

def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

base = maxrss_mb()
generate = getattr(SolverDatabase, args["method"])
t0, c0 = time.perf_counter(), cpu_s()
db = generate(args["catalog_path"], **args["kwargs"])
gen_s, gen_cpu_s = time.perf_counter() - t0, cpu_s() - c0
peak = maxrss_mb()
num_stars, num_patterns = db.num_stars, db.num_patterns
t0 = time.perf_counter()
db.save_to_file(args["out"])
save_s = time.perf_counter() - t0
del db
gc.collect()
loads = []
for _ in range(3):
    t0 = time.perf_counter()
    loaded = SolverDatabase.load_from_file(args["out"])
    loads.append(time.perf_counter() - t0)
    assert loaded.num_patterns == num_patterns
    del loaded
print(json.dumps({"gen_s": gen_s, "gen_cpu_s": gen_cpu_s, "peak_mb": peak, "gen_mb": peak - base,
                  "base_mb": base,
                  "save_s": save_s, "load_s": statistics.median(loads),
                  "file_mb": os.path.getsize(args["out"]) / 1e6,
                  "num_stars": num_stars, "num_patterns": num_patterns}))
"""


def _child(lib: str, method: str, catalog_path: str | None, out: Path,
           kwargs: dict | None = None, keep: bool = False) -> dict:
    """Build (``SEED_KWARGS`` unless ``kwargs``), save to ``out``, load back, in a fresh process.

    Returns the child's figures: ``gen_s``, ``gen_cpu_s``, ``peak_mb`` (its VmHWM),
    ``file_mb``, ``load_s``, ... The file is deleted afterwards unless ``keep``.
    """
    args = {"lib": lib, "method": method, "catalog_path": catalog_path,
            "kwargs": SEED_KWARGS if kwargs is None else kwargs, "out": str(out)}
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(args)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{lib}.{method} failed:\n{proc.stderr[-2000:]}")
    if not keep:
        out.unlink(missing_ok=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _hipparcos_as_gdr3(path: Path) -> None:
    """Hipparcos 2 at J2016.0 in the GDR3 binary layout (ids are HIP numbers)."""
    from skysolve.sky.catalogs import load_hipparcos

    cat = load_hipparcos().propagate(2016.0)
    rec = np.zeros(len(cat), dtype=[("id", "<i8"), ("ra", "<f8"), ("dec", "<f8"),
                                    ("mag", "<f4"), ("pmra", "<f4"), ("pmdec", "<f4")])
    rec["id"], rec["ra"], rec["dec"] = cat.ids, cat.ra_deg, cat.dec_deg
    rec["mag"], rec["pmra"], rec["pmdec"] = cat.mag, cat.pmra_mas_yr, cat.pmdec_mas_yr
    path.write_bytes(struct.pack("<4sIQ", b"GDR3", 1, len(rec)) + rec.tobytes())


def _median(runs: list[dict], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def _rows(name: str, ours: list[dict], peer: list[dict] | None, peer_label: str) -> list[dict]:
    gen = {"benchmark": f"database generation ({name}, seed parameters)", "peer": peer_label,
           "repeats": len(ours), "skysolve_s": _median(ours, "gen_s")}
    load = {"benchmark": f"database load ({name}, seed parameters)", "peer": peer_label,
            "repeats": len(ours), "skysolve_s": _median(ours, "load_s")}
    gen.update(skysolve_peak_mb=_median(ours, "peak_mb"), skysolve_gen_mb=_median(ours, "gen_mb"),
               skysolve_file_mb=ours[0]["file_mb"], skysolve_num_stars=ours[0]["num_stars"],
               skysolve_num_patterns=ours[0]["num_patterns"])
    if peer:
        gen.update(peer_s=_median(peer, "gen_s"), peer_peak_mb=_median(peer, "peak_mb"),
                   peer_gen_mb=_median(peer, "gen_mb"), peer_file_mb=peer[0]["file_mb"],
                   peer_num_stars=peer[0]["num_stars"], peer_num_patterns=peer[0]["num_patterns"])
        gen["ratio"] = gen["skysolve_s"] / gen["peer_s"]
        gen["peak_mb_ratio"] = gen["skysolve_peak_mb"] / gen["peer_peak_mb"]
        gen["file_size_ratio"] = gen["skysolve_file_mb"] / gen["peer_file_mb"]
        load["peer_s"] = _median(peer, "load_s")
        load["ratio"] = load["skysolve_s"] / load["peer_s"]
        gen["load_ratio"] = load["ratio"]
    else:
        gen["ratio"] = load["ratio"] = float("nan")
    return [gen, load]


def run(quick: bool) -> list[dict]:
    repeats = 1 if quick else 3
    have_peer = importlib.util.find_spec("tetra3rs") is not None
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        peer_hip_method, peer_hip_path, peer_hip_label = "generate_from_hipparcos", None, "tetra3rs"
        if have_peer:
            import tetra3rs

            if not hasattr(tetra3rs.SolverDatabase, "generate_from_hipparcos"):
                hip_bin = tmp / "hip2_j2016.gdr3.bin"
                _hipparcos_as_gdr3(hip_bin)
                peer_hip_method, peer_hip_path = "generate_from_gaia", str(hip_bin)
                peer_hip_label = "tetra3rs (same stars as GDR3)"
        cases = [("Gaia DR3", "generate_from_gaia", None, "generate_from_gaia", None, "tetra3rs"),
                 ("Hipparcos", "generate_from_hipparcos", None, peer_hip_method, peer_hip_path,
                  peer_hip_label)]
        for name, method, path, p_method, p_path, label in cases:
            ours, peer = [], []
            for i in range(repeats):
                ours.append(_child("skysolve", method, path, tmp / f"skysolve{i}.db"))
                if have_peer:
                    peer.append(_child("tetra3rs", p_method, p_path, tmp / f"tetra3rs{i}.db"))
            rows += _rows(name, ours, peer or None, label if have_peer else "tetra3rs (missing)")
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
