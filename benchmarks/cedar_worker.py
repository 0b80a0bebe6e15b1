"""cedar-solve side of bench_solve, run inside its own venv (benchmarks/.cedar-venv).

cedar-solve pins numpy<2 and Pillow<9, so it cannot share skysolve's
environment; bench_solve.py drives this script in a subprocess. It imports
nothing from skysolve and only calls cedar-solve's documented API
(``Tetra3.generate_database``, ``Tetra3.solve_from_centroids``).

Commands::

    python cedar_worker.py build CATALOG OUT.npz --max-fov 20 --min-fov 10
    python cedar_worker.py solve DB.npz CASES.npz OUT.json [--repeat N]
    python cedar_worker.py serve DB.npz CASES.npz
    python cedar_worker.py images DB.npz IMAGES.npz OUT.json

``serve`` loads the database and the cases once, then answers requests on
stdin, one per line: ``I REPEAT`` solves case ``I`` ``REPEAT`` times and
prints one JSON line (the same record as one element of ``OUT.json``);
``quit`` ends it. bench_solve uses it to interleave cedar-solve with the
in-process libraries input by input.

``CASES.npz`` holds ``n`` (int) and, per case ``i``: ``yx{i}`` (k×2, pixel
(y, x) from the top-left image corner, brightest first, the order cedar-solve
documents), ``size{i}`` (height, width), ``fov{i}`` (estimate, deg) and
``fov_err{i}`` (allowed error, deg; negative = none). ``OUT.json`` holds, per
case, the wall and process CPU times of every call (``times_s``: ``time.perf_counter``
around the call; ``cpu_s``: ``time.process_time``), each call preceded by an
untimed 1 ms pause, and the last call's RA, Dec, Roll, FOV, Matches, RMSE and
status.

``images`` solves whole images end to end, as a cedar-solve user would:
``IMAGES.npz`` holds ``n`` and, per image ``i``, ``image{i}`` (2-D array),
``fov{i}`` and ``fov_err{i}``; each image goes through
``tetra3.get_centroids_from_image`` at its default settings, then
``solve_from_centroids`` with the arguments above. ``OUT.json`` holds, per
image, RA, Dec, status and the number of centroids; an image on which
cedar-solve raises gets no RA and Dec and an ``error`` (the batch goes on).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
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


def _load(db: str, cases: str):
    from tetra3 import Tetra3

    return Tetra3(load_database=Path(db).with_suffix("")), np.load(cases)


def _solve_case(t3, data, i: int, repeat: int, pause_s: float = 0.001) -> dict:
    yx = np.ascontiguousarray(data[f"yx{i}"], dtype=np.float64)
    size = tuple(float(v) for v in data[f"size{i}"])
    fov = float(data[f"fov{i}"])
    err = float(data[f"fov_err{i}"])
    times = []
    cpu = []
    res = None
    for _ in range(repeat):
        time.sleep(pause_s)  # as bench_solve does before every timed call
        t0 = time.perf_counter()
        c0 = time.process_time()
        res = t3.solve_from_centroids(yx, size, fov_estimate=fov,
                                      fov_max_error=err if err >= 0 else None,
                                      match_radius=0.01, match_threshold=1e-5,
                                      solve_timeout=5000, match_max_error=None)
        cpu.append(time.process_time() - c0)
        times.append(time.perf_counter() - t0)
    keep = ("RA", "Dec", "Roll", "FOV", "Matches", "RMSE", "status")
    row = {k: (None if res.get(k) is None else
               (float(res[k]) if k != "status" else int(res[k]))) for k in keep}
    row["times_s"] = times
    row["cpu_s"] = cpu
    return row


def _solve(args) -> None:
    t3, data = _load(args.db, args.cases)
    out = [_solve_case(t3, data, i, args.repeat) for i in range(int(data["n"]))]
    Path(args.out).write_text(json.dumps(out))


def _images(args) -> None:
    from tetra3 import Tetra3, get_centroids_from_image

    t3 = Tetra3(load_database=Path(args.db).with_suffix(""))
    data = np.load(args.images)
    out = []
    for i in range(int(data["n"])):
        img = np.asarray(data[f"image{i}"])
        err = float(data[f"fov_err{i}"])
        try:
            yx = np.asarray(get_centroids_from_image(img), dtype=np.float64).reshape(-1, 2)
            res = t3.solve_from_centroids(yx, img.shape[:2],
                                          fov_estimate=float(data[f"fov{i}"]),
                                          fov_max_error=err if err >= 0 else None,
                                          match_radius=0.01, match_threshold=1e-5,
                                          solve_timeout=5000, match_max_error=None)
        except Exception as exc:  # noqa: BLE001 - one image's crash fails that image only
            out.append({"RA": None, "Dec": None, "status": None, "n_centroids": None,
                        "error": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        out.append({"RA": None if res.get("RA") is None else float(res["RA"]),
                    "Dec": None if res.get("Dec") is None else float(res["Dec"]),
                    "status": int(res["status"]) if res.get("status") is not None else None,
                    "n_centroids": int(len(yx))})
    Path(args.out).write_text(json.dumps(out))


def _serve(args) -> None:
    t3, data = _load(args.db, args.cases)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        row = _solve_case(t3, data, int(words[0]), int(words[1]))
        print(json.dumps(row), flush=True)


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
    v = sub.add_parser("serve")
    v.add_argument("db")
    v.add_argument("cases")
    m = sub.add_parser("images")
    m.add_argument("db")
    m.add_argument("images")
    m.add_argument("out")
    args = parser.parse_args()
    {"build": _build, "solve": _solve, "serve": _serve, "images": _images}[args.cmd](args)


if __name__ == "__main__":
    main()
