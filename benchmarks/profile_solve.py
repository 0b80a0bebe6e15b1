"""Where skysolve's solve time goes: wall time per solver phase, on bench_solve's inputs.

Wraps the solver's stage functions and the functions of its backend (``PHASES``:
module, name) with process-CPU-time accumulators (``time.process_time``, which other
processes' load barely inflates; the solver is single-threaded) and solves the inputs
of one bench_solve case, after an unwrapped warm-up and an unwrapped timing pass.
Phases nest (``refine`` calls the backend's ``refine``...), so the figures do not add
up. A developer tool, not a benchmark (run.py does not collect it)::

    .venv/bin/python benchmarks/profile_solve.py [small|real|tess] [-n 100]

``SKYSOLVE_DISABLE_NUMBA=1`` profiles the pure-numpy reference backend instead.
"""

from __future__ import annotations

import argparse
import collections
import functools
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _solve_dbs  # noqa: E402
import bench_solve  # noqa: E402

#: (module, function) pairs wrapped; "backend" is the backend the solve selects
PHASES = (("skysolve.solver.solve", "search"), ("skysolve.solver.solve", "track"),
          ("skysolve.solver.solve", "make_frame"), ("skysolve.solver.lost_in_space", "refine"),
          ("skysolve.solver.lost_in_space", "verify"),
          ("skysolve.solver.lost_in_space", "build_result"),
          ("skysolve.solver.lost_in_space", "refine_field"),
          *(("backend", name) for name in ("thin_pixels", "unit_vectors", "brightest_in_cone",
                                           "pattern_candidates", "pattern_attitudes",
                                           "pattern_attitude",
                                           "in_image", "mutual_matches", "crowding",
                                           "verify_tail_counts", "fit_pairs", "trimmed_fit",
                                           "refine", "attitude_covariance")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", nargs="?", default="small", choices=("small", "real", "tess"))
    parser.add_argument("-n", type=int, default=100, help="inputs (small/tess)")
    args = parser.parse_args(argv)

    import importlib

    import skysolve
    from skysolve.solver import backends

    gaia = skysolve.load_gaia()
    if args.case == "small":
        inputs, dbname = bench_solve._small_fields(gaia, args.n, seed=11), "small"
    elif args.case == "real":
        inputs, dbname = bench_solve._real_frames() * 10, "small"
    else:
        inputs, dbname = bench_solve._tess_fields(gaia, args.n, seed=12), "tess"
    db = _solve_dbs.load("skysolve", dbname)[0]

    def solve_all() -> float:
        spent_cpu = 0.0
        for inp in inputs:
            time.sleep(bench_solve.PAUSE_S)
            t0 = time.process_time()
            db.solve_from_centroids(inp["xy"], fov_estimate_deg=inp["fov"],
                                    fov_max_error_deg=inp["fov_err"], image_shape=inp["shape"],
                                    **bench_solve.SOLVE_ARGS)
            spent_cpu += time.process_time() - t0
        return spent_cpu / len(inputs)

    solve_all()  # warm-up: lazy imports and KD-trees
    plain = solve_all()

    spent: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()

    def wrap(owner, name):
        fn = getattr(owner, name)

        @functools.wraps(fn)
        def timed(*a, **k):
            t0 = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.process_time() - t0
                calls[name] += 1

        setattr(owner, name, timed)
        return fn

    owners = {"backend": backends.select()}
    originals = []
    for module, name in PHASES:
        owner = owners.get(module) or importlib.import_module(module)
        originals.append((owner, name, wrap(owner, name)))
    try:
        wrapped = solve_all()
    finally:
        for owner, name, fn in originals:
            setattr(owner, name, fn)

    n = len(inputs)
    print(f"{args.case}: {n} solves, {plain * 1e3:.2f} ms CPU/solve "
          f"({wrapped * 1e3:.2f} ms with the timers)")
    for name, s in spent.most_common():
        print(f"  {name:<30} {s / n * 1e3:8.3f} ms/solve {calls[name] / n:7.1f} calls/solve")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
