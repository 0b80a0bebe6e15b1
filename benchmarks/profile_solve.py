"""Where skysolve's solve time goes: wall time per solver phase, on bench_solve's inputs.

Wraps the solver's internal functions (whichever of ``PHASES`` exist in
``skysolve.solver``) with process-CPU-time accumulators (``time.process_time``,
which other processes' load barely inflates; the solver is single-threaded) and
solves the inputs of one bench_solve case, after an unwrapped warm-up and an
unwrapped timing pass. Phases nest (``_refine`` calls ``_project_field``...), so the figures do
not add up. A developer tool, not a benchmark (run.py does not collect it)::

    .venv/bin/python benchmarks/profile_solve.py [small|real|tess] [-n 100]

With the compiled kernels (the default) the numpy phases they replace do not
appear; ``SKYSOLVE_DISABLE_NUMBA=1`` profiles the pure-numpy path instead.
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

PHASES = ("_lost_in_space", "_tracking", "_refine", "_verify", "_build_result", "_make_frame",
          "_thin_pixels", "_pattern_candidates", "_pattern_attitudes", "_refine_field",
          "_trimmed_fit", "_fit_pairs", "_attitude_covariance", "neighbour_keys",
          "_project_field", "_mutual_matches", "wahba_rotation", "_fit_focal",
          "pattern_edge_angles_indexed", "edge_ratios", "pattern_edge_angles", "canonical_order",
          "camera_vectors_from_tanplane")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", nargs="?", default="small", choices=("small", "real", "tess"))
    parser.add_argument("-n", type=int, default=100, help="inputs (small/tess)")
    args = parser.parse_args(argv)

    import skysolve
    import skysolve.solver as solver

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

    originals = {name: wrap(solver, name) for name in PHASES if hasattr(solver, name)}
    originals_db = {"lookup_keys": wrap(type(db), "lookup_keys")}
    try:
        wrapped = solve_all()
    finally:
        for name, fn in originals.items():
            setattr(solver, name, fn)
        for name, fn in originals_db.items():
            setattr(type(db), name, fn)

    n = len(inputs)
    print(f"{args.case}: {n} solves, {plain * 1e3:.2f} ms CPU/solve "
          f"({wrapped * 1e3:.2f} ms with the timers)")
    for name, s in spent.most_common():
        print(f"  {name:<30} {s / n * 1e3:8.3f} ms/solve {calls[name] / n:7.1f} calls/solve")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
