"""How long ``solve_image`` takes to give up on a frame with no stars in it.

A developer tool, not a benchmark (run.py does not collect it). Frames of pure
noise (1024x768, sky 1000 ADU, noise 20 ADU) and the same under a cloud's glow (a
Gaussian hump of 300 ADU, sigma 300 px), ``-n`` noise draws of each, solved
with ``solve_image`` on the default database with no hint and with a 12 deg
field-of-view estimate. Their first extraction (5 sigmas) keeps 0-1 centroids,
so each is extracted again at 3 sigmas (:mod:`skysolve.batch.deeper`) and the
150-250 noise detections are searched until the deeper solve's hypothesis budget or
time limit ends it. Prints the wall time of every solve (ms) and the median::

    .venv/bin/python benchmarks/giveup_image.py [-n 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np


def frames(n: int) -> dict[str, list[np.ndarray]]:
    """``n`` noise frames, bare and under a cloud's glow."""
    yy, xx = np.mgrid[0:768, 0:1024]
    glow = 300.0 * np.exp(-((xx - 400.0) ** 2 + (yy - 300.0) ** 2) / (2 * 300.0 ** 2))
    out: dict[str, list[np.ndarray]] = {"noise": [], "cloud": []}
    for seed in range(n):
        img = np.random.default_rng(seed).normal(1000.0, 20.0, (768, 1024))
        out["noise"].append(img)
        out["cloud"].append(img + glow)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3, help="noise draws per kind")
    args = parser.parse_args(argv)

    import skysolve

    warnings.simplefilter("ignore")  # (the solves' own warnings are not the point here)
    skysolve.solve_image(np.random.default_rng(99).normal(1000.0, 20.0, (768, 1024)))
    for kind, imgs in frames(args.n).items():
        for hint in ({}, {"fov_estimate_deg": 12.0}):
            times = []
            for img in imgs:
                t0 = time.perf_counter()
                res = skysolve.solve_image(img, **hint)
                times.append(1e3 * (time.perf_counter() - t0))
                if res:
                    raise SystemExit(f"a starless {kind} frame solved: {res}")
            said = "FOV estimate 12 deg" if hint else "no hint"
            print(f"{kind:6s} {said:20s} median {statistics.median(times):6.0f} ms   "
                  + " ".join(f"{t:.0f}" for t in times), flush=True)


if __name__ == "__main__":
    main()
