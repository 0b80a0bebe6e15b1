"""cedar-solve side of bench_solve, run inside its own venv (benchmarks/.cedar-venv).

cedar-solve pins numpy<2 and Pillow<9, so it cannot share skysolve's
environment; bench_solve.py drives this script in a subprocess. It imports
nothing from skysolve and only calls cedar-solve's documented API
(``Tetra3.generate_database``, ``Tetra3.solve_from_centroids``).

Commands::

    python cedar_worker.py build CATALOG OUT.npz --max-fov 20 --min-fov 10
    python cedar_worker.py solve DB.npz CASES.npz OUT.json [--repeat N]

``CASES.npz`` holds ``n`` (int) and, per case ``i``: ``yx{i}`` (k×2, pixel
(y, x) from the top-left image corner, brightest first, the order cedar-solve
documents), ``size{i}`` (height, width), ``fov{i}`` (estimate, deg) and
``fov_err{i}`` (allowed error, deg; negative = none). ``OUT.json`` holds, per
case, the wall times of every call (``time.perf_counter`` around the call, s)
and the last call's RA, Dec, Roll, FOV, Matches, RMSE and status.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np


def _build(args) -> None:
    from tetra3 import Tetra3

    t3 = Tetra3(load_database=None)
    t0 = time.perf_counter()
    # the catalog file is already propagated to the wanted epoch, hence no
    # proper-motion step here
    t3.generate_database(max_fov=args.max_fov, min_fov=args.min_fov,
                         star_catalog=Path(args.catalog), epoch_proper_motion=None,
                         save_as=Path(args.out).with_suffix(""))
    props = {k: (v if isinstance(v, (int, float, str, type(None))) else str(v))
             for k, v in t3.database_properties.items()}
    print(json.dumps({"build_s": time.perf_counter() - t0, "properties": props}))


def _solve(args) -> None:
    from tetra3 import Tetra3

    t3 = Tetra3(load_database=Path(args.db).with_suffix(""))
    data = np.load(args.cases)
    out = []
    for i in range(int(data["n"])):
        yx = np.ascontiguousarray(data[f"yx{i}"], dtype=np.float64)
        size = tuple(float(v) for v in data[f"size{i}"])
        fov = float(data[f"fov{i}"])
        err = float(data[f"fov_err{i}"])
        times = []
        res = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            res = t3.solve_from_centroids(yx, size, fov_estimate=fov,
                                          fov_max_error=err if err >= 0 else None,
                                          match_radius=0.01, match_threshold=1e-5,
                                          solve_timeout=5000, match_max_error=None)
            times.append(time.perf_counter() - t0)
        keep = ("RA", "Dec", "Roll", "FOV", "Matches", "RMSE", "status")
        row = {k: (None if res.get(k) is None else
                   (float(res[k]) if k != "status" else int(res[k]))) for k in keep}
        row["times_s"] = times
        out.append(row)
    Path(args.out).write_text(json.dumps(out))


def main() -> None:
    logging.disable(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("catalog")
    b.add_argument("out")
    b.add_argument("--max-fov", type=float, required=True)
    b.add_argument("--min-fov", type=float, default=None)
    s = sub.add_parser("solve")
    s.add_argument("db")
    s.add_argument("cases")
    s.add_argument("out")
    s.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    _build(args) if args.cmd == "build" else _solve(args)


if __name__ == "__main__":
    main()
