"""One-shot start-up: a whole process per frame, skysolve's CLI vs a tetra3rs script.

A camera script or a shell loop that solves one frame per process pays for the
interpreter, the imports and the database load every time. Three comparisons,
each a fresh process per run, the contenders taking turns run by run (which one
goes first alternates) so that load from other processes hits both alike:

* ``skysolve solve FRAME --fov 11.4 --db SMALL.db -q`` (the console script) against a
  bare Python script that imports tetra3rs, loads its saved database of the same
  parameters, reads the same 1024x768 16-bit TIFF (Pillow), extracts and solves;
* ``python -c "import skysolve"`` against ``python -c "import tetra3rs"``;
* ``python -c "pass"``: the interpreter alone, for reference (``*_python_s``).

Both databases are bench_solve's ``small`` ones (10-20 deg, Gaia), built once into
``benchmarks/.cache``. Times: wall (``perf_counter`` around the child) and CPU
(user + system of the child, from ``resource.getrusage(RUSAGE_CHILDREN)``); medians
over the repeats. Every run is preceded by a 0.2 s pause. "Warm caches": the first
run of each contender is untimed (the operating system's file cache, Python's
bytecode cache: ``PYTHONDONTWRITEBYTECODE`` is removed from the children's
environment).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _solve_dbs

HERE = Path(__file__).resolve().parent
FRAME = (HERE.parent / "src" / "skysolve" / "tests" / "data"
         / "2019-07-29T204726_Alt40_Azi-135_Try1.tiff")
FOV = 11.4

TETRA3RS_SCRIPT = """
import sys
import numpy as np
from PIL import Image
import tetra3rs
img = np.asarray(Image.open(sys.argv[1]))
db = tetra3rs.SolverDatabase.load_from_file(sys.argv[2])
ext = tetra3rs.extract_centroids(img)
res = db.solve_from_centroids(ext.centroids, fov_estimate_deg=float(sys.argv[3]),
                              image_shape=img.shape)
print(res.ra_deg, res.dec_deg)
"""


#: The children's environment: bytecode caching on (an installed package has its .pyc
#: files; PYTHONDONTWRITEBYTECODE=1, set in some development shells, would make every
#: run compile skysolve's sources afresh).
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _child(cmd: list[str]) -> tuple[float, float, str]:
    """(wall s, CPU s, stdout) of one child process."""
    time.sleep(0.2)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_ENV)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {proc.stderr[-500:]}")
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu, proc.stdout


def _interleaved(cmds: dict[str, list[str]], repeat: int) -> dict[str, dict]:
    out = {k: {"wall": [], "cpu": [], "stdout": ""} for k in cmds}
    for k, cmd in cmds.items():  # warm-up, untimed
        out[k]["stdout"] = _child(cmd)[2]
    names = list(cmds)
    for i in range(repeat):
        for k in (names if i % 2 == 0 else names[::-1]):
            wall, cpu, _ = _child(cmds[k])
            out[k]["wall"].append(wall)
            out[k]["cpu"].append(cpu)
    return {k: {"wall": statistics.median(v["wall"]), "cpu": statistics.median(v["cpu"]),
                "wall_all": [round(t, 3) for t in v["wall"]], "stdout": v["stdout"]}
            for k, v in out.items()}


def run(quick: bool) -> list[dict]:
    repeat = 5 if quick else 11
    py = sys.executable
    paths = {}
    for lib in ("skysolve", "tetra3rs"):
        _solve_dbs.load(lib, "small", log=print)
        paths[lib] = str(_solve_dbs.path_for(lib, "small"))
    cli = str(Path(py).parent / "skysolve")
    res = _interleaved({
        "skysolve": [cli, "solve", str(FRAME), "--fov", str(FOV), "--db", paths["skysolve"],
                     "-q"],
        "tetra3rs": [py, "-c", TETRA3RS_SCRIPT, str(FRAME), paths["tetra3rs"], str(FOV)],
        "python": [py, "-c", "pass"],
    }, repeat)
    rows = [_row("one-shot: CLI solve of a 1024x768 TIFF vs a tetra3rs script", res)]
    rows[0]["skysolve_out"] = res["skysolve"]["stdout"].strip().splitlines()[-1][:80]
    rows[0]["peer_out"] = res["tetra3rs"]["stdout"].strip()[:80]
    res = _interleaved({"skysolve": [py, "-c", "import skysolve"],
                        "tetra3rs": [py, "-c", "import tetra3rs"],
                        "python": [py, "-c", "pass"]}, repeat)
    rows.append(_row("python -c 'import skysolve' vs 'import tetra3rs'", res))
    return rows


def _row(name: str, res: dict[str, dict]) -> dict:
    s, p, bare = res["skysolve"], res["tetra3rs"], res["python"]
    return {"benchmark": name, "peer": "tetra3rs",
            "skysolve_s": s["wall"], "peer_s": p["wall"], "ratio": s["wall"] / p["wall"],
            "cpu_ratio": s["cpu"] / p["cpu"], "skysolve_cpu_s": s["cpu"], "peer_cpu_s": p["cpu"],
            "python_s": bare["wall"], "python_cpu_s": bare["cpu"],
            "skysolve_wall_runs": s["wall_all"], "peer_wall_runs": p["wall_all"]}


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
