"""The calibration's accuracy figures (issue 18): honest uncertainties, held-out residuals.

Not a speed benchmark: it prints the figures the calibration tests assert, over
more trials than the tests run, from simulated calibrations with known truth
(:mod:`skysolve.calibration.tests.synthetic`: a small Hipparcos database's own
stars projected through true cameras, 0.05 px centroid noise):

* coverage -- across many calibrations (4 frames of 150 stars, per-frame plate
  scales of up to 1e-4, an order-3 pixel -> sky polynomial), the fraction of a
  9x9 grid of every frame where the true mapping error is within 2 sigma, and
  the ratio rms true error / rms sigma; from the fit's covariance and (with
  ``--bootstrap N``) from N bootstrap resamples with magnitude-dependent noise;
* held-out -- k-fold held-out vs in-sample residuals at the true order and at a
  deliberately too-high one (3 frames of 40 stars), and the order chosen by
  ``select_order``;
* radial -- a Brown-Conrady lens with its axis ~950 px off the image recovered
  from uncalibrated solves: rms mapping error, fitted vs true axis;
* with ``--demo DIR`` (a ``skysolve demo`` work directory): the radial model on
  the demo's ten TESS-like frames from uncalibrated solves (tetra3rs's own
  radial test), pooled residual before and after, fitted optical centre vs the
  true axis of the frames' WCS.

Usage: ``python benchmarks/calibration_figures.py [--trials N] [--bootstrap N] [--demo DIR]``.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import skysolve
from skysolve.calibration.tests import test_radial, test_uncertainty, test_validation
from skysolve.calibration.tests.synthetic import mapping_error_px, synthetic_solves
from skysolve.simulate import random_attitudes


def _small_db():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "_root_conftest", Path(__file__).resolve().parents[1] / "conftest.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    return skysolve.SolverDatabase.generate_from_hipparcos(**conf.SMALL_DB_PARAMETERS)


def coverage(db, trials: int, bootstrap: int) -> None:
    t = time.perf_counter()
    frac, ratio = test_uncertainty._coverage(db, range(trials))
    print(f"coverage (fit covariance, {trials} calibrations x 4 frames x 81 points): "
          f"{100 * frac:.1f} % within 2 sigma; rms error / rms sigma {ratio:.2f} "
          f"[{time.perf_counter() - t:.0f} s]")
    if bootstrap:
        t = time.perf_counter()
        n = max(trials // 2, 2)
        frac, ratio = test_uncertainty._coverage(db, range(100, 100 + n), method="bootstrap",
                                                 bootstrap=bootstrap, magnitude_noise=True)
        print(f"coverage (bootstrap x{bootstrap}, magnitude-dependent noise, {n} "
              f"calibrations): {100 * frac:.1f} % within 2 sigma; rms error / rms sigma "
              f"{ratio:.2f} [{time.perf_counter() - t:.0f} s]")


def held_out(db) -> None:
    res, cents = test_validation._frames(db, 4, 150)
    cal = db.calibrate_camera(res, cents, order=3)
    print(f"held-out (4 frames x 150 stars, true order 3): in-sample {cal.rmse_after_px:.4f} "
          f"px, held-out {cal.holdout_rmse_px:.4f} px "
          f"(+{100 * (cal.holdout_rmse_px / cal.rmse_after_px - 1):.1f} %)")
    res, cents = test_validation._frames(db, 3, 40)
    for order in (3, 6):
        cal = db.calibrate_camera(res, cents, order=order)
        print(f"held-out (3 frames x 40 stars, order {order}): in-sample "
              f"{cal.rmse_after_px:.4f} px, held-out {cal.holdout_rmse_px:.4f} px "
              f"(+{100 * (cal.holdout_rmse_px / cal.rmse_after_px - 1):.1f} %), "
              f"overfitting={cal.overfitting}")
    chosen = db.calibrate_camera(res, cents, order=6, select_order=True)
    scores = ", ".join(f"{k}: {v[1]:.4f}" for k, v in sorted(chosen.order_scores.items()))
    print(f"select_order from 6: chose order {chosen.camera_model.distortion.order} "
          f"(held-out px by order: {scores})")


def radial(db) -> None:
    truth = test_radial.off_axis_camera()
    rots = random_attitudes(6, rng=11)
    res, cents = synthetic_solves(db, [truth] * 6, rots, 0.05, seed=11, max_stars=200)
    cal = db.calibrate_camera(res, cents, model="radial")
    w = h = test_radial.W
    g = np.linspace(-w / 2 + 0.5, w / 2 - 0.5, 33)
    gx, gy = (a.ravel() for a in np.meshgrid(g, g))
    err = np.concatenate([mapping_error_px(cal.image_camera(i), cal.rotations[i], truth, R,
                                           gx, gy) for i, R in enumerate(rots)])
    print(f"radial, axis {math.hypot(*truth.crpix):.0f} px off the {w}x{h} image: residual "
          f"{cal.rmse_before_px:.1f} -> {cal.rmse_after_px:.4f} px; mapping error rms "
          f"{math.sqrt(np.mean(err ** 2)):.4f} px, max {err.max():.4f} px; axis "
          f"({cal.camera_model.crpix[0]:.1f}, {cal.camera_model.crpix[1]:.1f}) vs true "
          f"({truth.crpix[0]:.1f}, {truth.crpix[1]:.1f}) px")


def demo_radial(workdir: str) -> None:
    from pathlib import Path

    from astropy.io import fits

    from skysolve.calibration.radial import metric_axis
    from skysolve.demo import frames, run
    from skysolve.io.wcs import wcs_to_camera

    paths, _ = frames.ensure_frames(Path(workdir), frames.DEFAULT_SECTORS, progress=False)
    db, _ = run._load_or_build_database(Path(workdir), False, False)
    cents = []
    for path in paths:
        image = fits.getdata(path, ext=1).astype(np.float32)[:2048, 44:2092]
        cents.append(skysolve.extract_centroids(
            image, sigma_threshold=180.0, min_pixels=4, local_bg_block_size=16,
            max_elongation=6.0, matched_filter_sigma=None).centroids)
    res = [db.solve_from_centroids(c, fov_estimate_deg=11.8, fov_max_error_deg=0.5,
                                   image_shape=(2048, 2048), match_radius=0.005) for c in cents]
    cal = db.calibrate_camera(res, cents, image_shape=(2048, 2048), model="radial")
    truth, _ = wcs_to_camera(frames.sector_wcs(1), 2048, 2048, pixel_offset=(44, 0))
    axis = metric_axis(truth, 2048, 2048)
    c = cal.camera_model.crpix
    print(f"radial on the demo frames ({sum(map(bool, res))}/{len(res)} solved, "
          f"{cal.n_inliers} inliers): residual {cal.rmse_before_px:.3f} -> "
          f"{cal.rmse_after_px:.4f} px; optical centre ({c[0]:.1f}, {c[1]:.1f}) px vs the "
          f"true axis ({axis[0]:.1f}, {axis[1]:.1f}) px ({math.hypot(*axis):.0f} px off the "
          f"CCD centre): {math.hypot(*(c - axis)):.1f} px apart")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=24, help="calibrations for the coverage")
    p.add_argument("--bootstrap", type=int, default=0,
                   help="bootstrap resamples for the bootstrap coverage (0: skip it)")
    p.add_argument("--demo", metavar="DIR", help="also the radial model on the demo frames "
                                                 "of this skysolve demo work directory")
    args = p.parse_args(argv)
    if args.demo:
        demo_radial(args.demo)
    db = _small_db()
    coverage(db, args.trials, args.bootstrap)
    held_out(db)
    radial(db)


if __name__ == "__main__":
    main()
