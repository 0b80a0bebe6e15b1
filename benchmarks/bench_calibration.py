"""Seed notebook's multi-image calibration pipeline: skysolve vs tetra3rs.

Ten synthetic TESS-like frames (2048², FOV 11.65°, mirror parity, a TESS-sized
SIP-like distortion of ~60 px at the corners and an optical centre 23.5 px off
the image centre; centroid noise 0.05 px) are solved and calibrated four times
with the seed's settings (match radius 0.01 → 0.002, distortion order 3 → 6,
each pass feeding its camera model to the next). Both libraries get the same
centroid arrays and a database built from the bundled Gaia catalog with the
same (seed) parameters.

Reported per pass: calibration wall time of each library and the ratio; for
the whole pipeline: total time ratio, final ``rmse_after_px`` and the truth
mapping error — the rms pixel distance over a 33×33 grid on every frame
between where the final solution (fitted camera + re-solved attitude) and the
truth put the same sky direction.
"""

from __future__ import annotations

import math
import time

import numpy as np

import skysolve
from skysolve.calibration.workflow import SEED_PASSES, calibrate_frames
from skysolve.camera import CameraModel
from skysolve.simulate import random_attitudes, simulate_centroids, tess_like_camera

W = H = 2048
NOISE_PX = 0.05
SEED_DB = dict(max_fov_deg=14.0, pattern_max_error=0.005, lattice_field_oversampling=100,
               patterns_per_lattice_field=500, verification_stars_per_fov=3000,
               epoch_proper_motion_year=2025.0)


def _pipeline(db, cents):
    """skysolve: the seed's four passes through the library's workflow; returns (per-pass
    solve s, per-pass calibrate s, last cal, final re-solve results)."""
    run = calibrate_frames(cents, db, SEED_PASSES, fov_estimate_deg=11.8,
                           fov_max_error_deg=0.5, image_shape=(H, W), progress=False)
    return ([p.solve_seconds for p in run.passes], [p.calibrate_seconds for p in run.passes],
            run.calibration, run.final)


def _peer_pipeline(db, cents):
    """tetra3rs: the same four passes, as the seed notebook writes them (tetra3rs 0.14 has
    no refine_iterations)."""
    camera = None
    solve_s, cal_s = [], []
    cal = None
    for config in SEED_PASSES:
        t0 = time.perf_counter()
        results = [db.solve_from_centroids(
            c, fov_estimate_deg=camera.fov_deg if camera else 11.8, fov_max_error_deg=0.5,
            image_shape=(H, W), match_radius=config.match_radius, match_threshold=1e-5,
            camera_model=camera) for c in cents]
        t1 = time.perf_counter()
        cal = db.calibrate_camera(results, cents, image_shape=(H, W), order=config.order)
        t2 = time.perf_counter()
        camera = cal.camera_model
        solve_s.append(t1 - t0)
        cal_s.append(t2 - t1)
    final = [db.solve_from_centroids(c, fov_estimate_deg=camera.fov_deg, fov_max_error_deg=0.5,
                                     image_shape=(H, W), match_radius=SEED_PASSES[-1].match_radius,
                                     match_threshold=1e-5, camera_model=camera)
             for c in cents]
    return solve_s, cal_s, cal, final


def _truth_error_px(final, truth: CameraModel, rotations) -> tuple[float, int]:
    """RMS grid mapping error (px) of the re-solved frames and how many solved."""
    g = np.linspace(-W / 2 + 0.5, W / 2 - 0.5, 33)
    x, y = (a.ravel() for a in np.meshgrid(g, g))
    errs = []
    for res, R in zip(final, rotations, strict=True):
        if not res:
            continue
        ra, dec = res.pixel_to_world(x, y)
        px, py = truth.world_to_pixel(np.asarray(ra), np.asarray(dec), R)
        errs.append(np.hypot(px - x, py - y))
    if not errs:
        return math.nan, 0
    e = np.concatenate(errs)
    return float(np.sqrt(np.nanmean(e ** 2))), len(errs)


def _median_runs(fn, repeat: int):
    runs = [fn() for _ in range(repeat)]
    solve = np.median([r[0] for r in runs], axis=0)
    cal = np.median([r[1] for r in runs], axis=0)
    return solve, cal, runs[-1][2], runs[-1][3]


def run(quick: bool) -> list[dict]:
    import tetra3rs

    params = dict(SEED_DB)
    n_stars = 1000
    repeat = 3
    if quick:
        params.update(patterns_per_lattice_field=100, verification_stars_per_fov=1000)
        n_stars = 400
        repeat = 1
    ours = skysolve.SolverDatabase.generate_from_gaia(**params, progress=False)
    peer = tetra3rs.SolverDatabase.generate_from_gaia(**params)

    truth = tess_like_camera()
    rotations = random_attitudes(10, rng=2024)
    gaia = skysolve.load_gaia()
    cents = [np.ascontiguousarray(simulate_centroids(
        gaia, truth, R, epoch_year=2025.0, centroid_noise_px=NOISE_PX, num_stars=n_stars,
        seed=k).centroids) for k, R in enumerate(rotations)]

    s_solve, s_cal, s_last, s_final = _median_runs(lambda: _pipeline(ours, cents), repeat)
    p_solve, p_cal, p_last, p_final = _median_runs(lambda: _peer_pipeline(peer, cents), repeat)
    s_err, s_ok = _truth_error_px(s_final, truth, rotations)
    p_err, p_ok = _truth_error_px(p_final, truth, rotations)

    rows = []
    for k, config in enumerate(SEED_PASSES):
        mr, order = config.match_radius, config.order
        rows.append({
            "benchmark": f"calibrate_camera pass {k + 1} (10 frames, order {order}, r {mr})",
            "peer": "tetra3rs", "skysolve_s": float(s_cal[k]), "peer_s": float(p_cal[k]),
            "ratio": float(s_cal[k] / p_cal[k]),
            "skysolve_solve_s": float(s_solve[k]), "peer_solve_s": float(p_solve[k]),
        })
    s_total = float(np.sum(s_solve) + np.sum(s_cal))
    p_total = float(np.sum(p_solve) + np.sum(p_cal))
    rows.append({
        "benchmark": "seed 4-pass solve+calibrate pipeline (10 TESS-like frames)",
        "peer": "tetra3rs", "skysolve_s": s_total, "peer_s": p_total,
        "ratio": s_total / p_total,
        "skysolve_rmse_after_px": float(s_last.rmse_after_px),
        "peer_rmse_after_px": float(p_last.rmse_after_px),
        "skysolve_inliers": int(s_last.n_inliers), "peer_inliers": int(p_last.n_inliers),
        "skysolve_truth_err_px": s_err, "peer_truth_err_px": p_err,
        "skysolve_frames_solved": s_ok, "peer_frames_solved": p_ok,
        "noise_floor_px": NOISE_PX * math.sqrt(2),
    })
    return rows


if __name__ == "__main__":
    import sys

    for row in run(quick="--quick" in sys.argv):
        print(row)
