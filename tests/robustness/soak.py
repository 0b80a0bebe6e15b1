"""Soak test: solve many synthetic frames and count right, wrong and failed answers.

Run ``python tests/robustness/soak.py [--frames 100000] [--seed S] [--jobs 2]``. Each frame
is drawn from ``(seed, frame index)`` alone, so any frame can be replayed. Kinds of
frame (fractions of the total):

``stars`` (55 %)
    A random attitude and a field of view within the database's range, centroid
    noise, dropped stars, a few false stars; a field-of-view estimate that is
    sometimes absent and sometimes off by up to 5 %.
``mirrored`` (15 %)
    The same, mirrored left-right (the parity search must find it).
``false_stars`` (10 %)
    Real stars mixed with as many false detections as real ones.
``noise`` (14 %)
    Pure noise: 4-12 random centroids and no star at all. Any answer is wrong.
``noise_timeout`` (1 %)
    20-30 random centroids; the search usually runs into ``solve_timeout_ms``.
``empty`` (5 %)
    0-3 centroids: must end ``too_few``.

A solve is *right* when its attitude moves no point of the image (centre and
corners) by more than 10 pixels from where the true attitude puts it (far beyond
centroid noise, far below any misidentification) and its field of view is
within 1 %, and *wrong* otherwise; every answer on a noise frame is wrong. The summary (stdout and a
JSON file) gives the counts per kind and status, the measured false-positive
rate (wrong / frames attempted, and on the noise frames alone) with its 95 %
upper bound, and solve-time percentiles.
The exit status is 1 when any solve was wrong.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["KINDS", "frame", "run_soak", "main"]

#: Frame kinds and their fractions of the total.
KINDS: dict[str, float] = {"stars": 0.55, "mirrored": 0.15, "false_stars": 0.10,
                           "noise": 0.14, "noise_timeout": 0.01, "empty": 0.05}
_NOISE_KINDS = ("noise", "noise_timeout", "empty")
RIGHT_ANGLE_PX = 10.0
RIGHT_FOV_FRACTION = 0.01
#: The default database: Hipparcos, fields of view 10-20 deg (as tests/conftest.py).
DEFAULT_DB = dict(max_fov_deg=20.0, min_fov_deg=10.0, pattern_max_error=0.005,
                  patterns_per_lattice_field=50, lattice_field_oversampling=100,
                  verification_stars_per_fov=150, epoch_proper_motion_year=2025.0)

_state: dict[str, Any] = {}


def frame(catalog: Any, seed: int, index: int, min_fov: float, max_fov: float,
          width: int = 1024, height: int = 1024, epoch_year: float = 2025.0) -> dict[str, Any]:
    """Frame ``index`` of soak run ``seed``: its kind, centroids, truth and solve arguments.

    Returns
    -------
    dict
        ``kind``, ``centroids`` ((N, 3) array: x, y, brightness in centred pixels),
        ``rotation`` (true ICRS->camera matrix or None), ``fov_deg`` (true
        horizontal FOV or None) and ``solve_kwargs`` for ``solve_from_centroids``.
    """
    from skysolve.camera import CameraModel
    from skysolve.simulate import random_attitudes, simulate_centroids

    rng = np.random.default_rng([int(seed), int(index)])
    kind = str(rng.choice(list(KINDS), p=list(KINDS.values())))
    kwargs: dict[str, Any] = {"image_shape": (height, width)}
    if kind in _NOISE_KINDS:
        n = {"noise": (4, 13), "noise_timeout": (20, 31), "empty": (0, 4)}[kind]
        k = int(rng.integers(*n))
        xy = np.c_[rng.uniform(-width / 2, width / 2, k), rng.uniform(-height / 2, height / 2, k)]
        b = np.sort(10.0 ** rng.uniform(2, 5, k))[::-1]
        if rng.random() < 0.5:
            kwargs["fov_estimate_deg"] = float(rng.uniform(min_fov, max_fov))
        return {"kind": kind, "centroids": np.c_[xy, b], "rotation": None, "fov_deg": None,
                "solve_kwargs": kwargs}
    fov = float(math.exp(rng.uniform(math.log(min_fov), math.log(max_fov))))
    R = random_attitudes(1, rng)[0]
    cam = CameraModel.from_fov(fov, width, height)
    n_false = int(rng.integers(0, 4))
    if kind == "false_stars":
        n_false = int(rng.integers(5, 16))
    sim = simulate_centroids(catalog, cam, R, num_stars=int(rng.integers(8, 31)),
                             epoch_year=epoch_year,
                             centroid_noise_px=float(rng.uniform(0.1, 1.0)),
                             magnitude_noise=float(rng.uniform(0.0, 0.3)),
                             drop_fraction=float(rng.uniform(0.0, 0.3)),
                             num_false_stars=n_false, mirror=kind == "mirrored", seed=rng)
    u = rng.random()
    if u < 0.6:
        kwargs["fov_estimate_deg"] = fov * float(rng.uniform(0.95, 1.05))
    elif u < 0.8:
        kwargs["fov_estimate_deg"] = fov * float(rng.uniform(0.95, 1.05))
        kwargs["fov_max_error_deg"] = 0.1 * fov
    return {"kind": kind, "centroids": sim.centroids, "rotation": R, "fov_deg": fov,
            "solve_kwargs": kwargs}


def _attitude_error_px(solved: np.ndarray, true: np.ndarray, fov_deg: float, width: int,
                       height: int) -> float:
    """Largest shift (px) of the image centre and corners between two attitudes."""
    f = 0.5 * width / math.tan(math.radians(fov_deg) / 2.0)
    x = np.array([0.0, -1, 1, -1, 1]) * width / 2
    y = np.array([0.0, -1, -1, 1, 1]) * height / 2
    v = np.stack([x, y, np.full(5, f)], axis=1)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    moved = v @ true @ solved.T  # camera -> sky (true) -> camera (solved)
    ang = np.arccos(np.clip(np.sum(v * moved, axis=1), -1.0, 1.0))
    return float(np.max(ang) * f)


def _init_worker(db_path: str, params: dict[str, Any]) -> None:
    from skysolve import SolverDatabase
    from skysolve.sky import load_hipparcos

    _state["db"] = SolverDatabase.load_from_file(db_path, mmap=True)
    _state["catalog"] = load_hipparcos()
    _state["params"] = params


def _run_chunk(indices: Sequence[int]) -> list[tuple]:
    db, catalog, p = _state["db"], _state["catalog"], _state["params"]
    out = []
    for i in indices:
        f = frame(catalog, p["seed"], i, db.min_fov_deg, db.max_fov_deg, p["width"],
                  p["height"], p["epoch_year"])
        res = db.solve_from_centroids(f["centroids"], match_threshold=p["match_threshold"],
                                      solve_timeout_ms=p["timeout_ms"], **f["solve_kwargs"])
        angle = fov_err = None
        if res and f["rotation"] is not None:
            angle = _attitude_error_px(res.rotation_matrix_icrs_to_camera, f["rotation"],
                                       f["fov_deg"], p["width"], p["height"])
            fov_err = abs(res.fov_deg - f["fov_deg"]) / f["fov_deg"]
            right = angle < RIGHT_ANGLE_PX and fov_err < RIGHT_FOV_FRACTION
        else:
            right = False
        verdict = ("right" if right else "wrong") if res else "failed"
        out.append((int(i), f["kind"], res.status, verdict, float(res.solve_time_ms), angle,
                    fov_err, float(res.probability) if res else None))
    return out


def _upper95(k: int, n: int) -> float:
    """One-sided 95 % upper bound of a binomial rate (exact Clopper-Pearson)."""
    if n == 0:
        return 1.0
    if k >= n:
        return 1.0
    from scipy.stats import beta

    return float(beta.ppf(0.95, k + 1, n - k))


def run_soak(frames: int = 20000, seed: int = 0, jobs: int = 2, db_path: str | None = None,
             timeout_ms: float = 300.0, match_threshold: float = 1e-5, width: int = 1024,
             height: int = 1024, chunk: int = 100, progress: bool | None = None
             ) -> dict[str, Any]:
    """Solve ``frames`` synthetic frames in ``jobs`` processes and summarise.

    Parameters
    ----------
    frames : int
        Number of frames.
    seed : int
        Run seed; frame ``i`` depends on ``(seed, i)`` only.
    jobs : int
        Worker processes (each loads the database memory-mapped and the
        Hipparcos catalog).
    db_path : str, optional
        A saved database; default: a Hipparcos 10-20 deg database built once
        (``DEFAULT_DB``, about 5 s) in a temporary file.
    timeout_ms : float
        ``solve_timeout_ms`` of every solve.
    match_threshold : float
        ``match_threshold`` of every solve.
    width, height : int
        Image size in pixels.
    chunk : int
        Frames per task sent to a worker.
    progress : bool or None
        Progress bar on stderr (None: only on a terminal).

    Returns
    -------
    dict
        The JSON-friendly summary (see the module docstring).
    """
    from skysolve import SolverDatabase
    from skysolve._progress import progress_bar

    if frames < 1 or jobs < 1 or chunk < 1:
        raise ValueError("frames, jobs and chunk must be positive")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="skysolve-soak-") as tmp:
        if db_path is None:
            db = SolverDatabase.generate_from_hipparcos(**DEFAULT_DB, progress=progress)
            db_path = os.path.join(tmp, "soak.db")
            db.save_to_file(db_path)
        db = SolverDatabase.load_from_file(db_path, mmap=True)
        epoch = float(db.parameters.get("epoch_proper_motion_year") or 2025.0)
        params = {"seed": seed, "timeout_ms": timeout_ms, "match_threshold": match_threshold,
                  "width": width, "height": height, "epoch_year": epoch}
        t_start = time.perf_counter()
        records: list[tuple] = []
        tasks = [range(s, min(s + chunk, frames)) for s in range(0, frames, chunk)]
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                                 initargs=(db_path, params)) as pool, \
                progress_bar(frames, "soak", progress, unit="frame") as bar:
            futures = [pool.submit(_run_chunk, list(t)) for t in tasks]
            wrong_so_far = 0
            for fut in as_completed(futures):
                part = fut.result()
                records.extend(part)
                wrong_so_far += sum(r[3] == "wrong" for r in part)
                bar.update(len(part))
                bar.set_postfix(wrong=wrong_so_far, refresh=False)
        wall = time.perf_counter() - t_start
    records.sort()
    summary = _summarise(records, wall, time.perf_counter() - t0)
    summary.update(frames=frames, seed=seed, jobs=jobs, timeout_ms=timeout_ms,
                   match_threshold=match_threshold, image_shape=[height, width],
                   database={k: db.parameters.get(k) for k in (
                       "catalog", "min_fov_deg", "max_fov_deg", "num_stars", "num_patterns",
                       "pattern_max_error", "epoch_proper_motion_year")})
    return summary


def _summarise(records: list[tuple], wall_s: float, total_s: float) -> dict[str, Any]:
    n = len(records)
    by_kind: dict[str, dict[str, int]] = {}
    for _, kind, status, verdict, *_rest in records:
        d = by_kind.setdefault(kind, {"frames": 0, "right": 0, "wrong": 0, "failed": 0})
        d["frames"] += 1
        d[verdict] += 1
        d[f"status_{status}"] = d.get(f"status_{status}", 0) + 1
    right = sum(d["right"] for d in by_kind.values())
    wrong = sum(d["wrong"] for d in by_kind.values())
    failed = sum(d["failed"] for d in by_kind.values())
    noise_n = sum(by_kind.get(k, {}).get("frames", 0) for k in _NOISE_KINDS)
    noise_wrong = sum(by_kind.get(k, {}).get("wrong", 0) for k in _NOISE_KINDS)
    star_n = n - noise_n
    times = np.array([r[4] for r in records])
    solved = [r for r in records if r[3] == "right"]
    angles = np.array([r[5] for r in solved]) if solved else np.zeros(0)

    def pct(a: np.ndarray, q: float) -> float | None:
        return float(np.percentile(a, q)) if len(a) else None

    timeouts = np.array([r[4] for r in records if r[2] == "timeout"])
    return {
        "right": right, "wrong": wrong, "failed": failed,
        "solve_rate_star_frames": right / star_n if star_n else None,
        "false_positive_rate": wrong / n if n else None,
        "false_positive_rate_upper95": _upper95(wrong, n),
        "noise_frames": noise_n, "noise_wrong": noise_wrong,
        "noise_false_positive_rate": noise_wrong / noise_n if noise_n else None,
        "noise_false_positive_rate_upper95": _upper95(noise_wrong, noise_n),
        "by_kind": by_kind,
        "solve_time_ms": {"mean": float(times.mean()) if n else None, "p50": pct(times, 50),
                          "p90": pct(times, 90), "p99": pct(times, 99),
                          "max": float(times.max()) if n else None},
        "timeout_solve_time_ms": {"count": int(len(timeouts)), "p50": pct(timeouts, 50),
                                  "max": float(timeouts.max()) if len(timeouts) else None},
        "right_attitude_error_px": {"p50": pct(angles, 50), "p99": pct(angles, 99),
                                        "max": float(angles.max()) if len(angles) else None},
        "wall_s": wall_s, "total_s": total_s,
        "ms_per_frame_wall": 1e3 * wall_s / n if n else None,
        "wrong_frames": [{"index": r[0], "kind": r[1], "status": r[2],
                          "angle_px": r[5], "fov_error": r[6], "probability": r[7]}
                         for r in records if r[3] == "wrong"][:200],
    }


def _print_summary(s: dict[str, Any], out_path: str) -> None:
    n = s["frames"]
    print(f"skysolve soak: {n} frames, seed {s['seed']}, {s['jobs']} jobs, "
          f"{s['wall_s']:.0f} s ({s['ms_per_frame_wall']:.2f} ms/frame wall)")
    print(f"  database: {s['database']}")
    print(f"  solved right {s['right']}   wrong {s['wrong']}   failed {s['failed']}")
    print(f"  false-positive rate: {s['wrong']}/{n} = {s['false_positive_rate']:.2e} "
          f"(95% upper bound {s['false_positive_rate_upper95']:.1e}; "
          f"match_threshold {s['match_threshold']:g})")
    print(f"  on pure-noise frames: {s['noise_wrong']}/{s['noise_frames']} "
          f"(95% upper bound {s['noise_false_positive_rate_upper95']:.1e})")
    if s["solve_rate_star_frames"] is not None:
        print(f"  solve rate on star frames: {100 * s['solve_rate_star_frames']:.2f} %")
    print("  kind           frames    right    wrong   failed   statuses")
    for kind, d in s["by_kind"].items():
        st = {k[7:]: v for k, v in d.items() if k.startswith("status_")}
        print(f"  {kind:<13} {d['frames']:>7} {d['right']:>8} {d['wrong']:>8} {d['failed']:>8}"
              f"   {st}")
    t = s["solve_time_ms"]
    print(f"  solve time ms: mean {t['mean']:.1f}  p50 {t['p50']:.1f}  p90 {t['p90']:.1f}  "
          f"p99 {t['p99']:.1f}  max {t['max']:.1f}")
    if s["timeout_solve_time_ms"]["count"]:
        to = s["timeout_solve_time_ms"]
        print(f"  timeouts ({s['timeout_ms']:g} ms): {to['count']}, p50 {to['p50']:.1f} ms, "
              f"max {to['max']:.1f} ms")
    print(f"  summary written to {out_path}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python tests/robustness/soak.py``."""
    ap = argparse.ArgumentParser(prog="python tests/robustness/soak.py", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=20000, help="frames to solve (20000)")
    ap.add_argument("--seed", type=int, default=0, help="run seed (0)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (2)")
    ap.add_argument("--db", default=None, help="a saved database (default: Hipparcos 10-20 deg)")
    ap.add_argument("--timeout-ms", type=float, default=300.0, help="solve_timeout_ms (300)")
    ap.add_argument("--match-threshold", type=float, default=1e-5, help="match_threshold")
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--height", type=int, default=1024)
    ap.add_argument("--chunk", type=int, default=100, help="frames per worker task (100)")
    ap.add_argument("--output", default="soak_summary.json", help="JSON summary path")
    ap.add_argument("--no-progress", action="store_true",
                    help="no progress bar (the default when stderr is not a terminal)")
    a = ap.parse_args(argv)
    if a.frames < 1 or a.jobs < 1 or a.chunk < 1:
        ap.error("--frames, --jobs and --chunk must be positive")
    s = run_soak(frames=a.frames, seed=a.seed, jobs=a.jobs, db_path=a.db,
                 timeout_ms=a.timeout_ms, match_threshold=a.match_threshold, width=a.width,
                 height=a.height, chunk=a.chunk, progress=False if a.no_progress else None)
    Path(a.output).write_text(json.dumps(s, indent=1))
    _print_summary(s, a.output)
    return 1 if s["wrong"] else 0


if __name__ == "__main__":
    sys.exit(main())
