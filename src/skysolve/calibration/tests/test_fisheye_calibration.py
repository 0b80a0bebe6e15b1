"""Calibration on top of a fisheye projection: a simulated 120 deg equidistant lens
with radial distortion and an off-centre optical axis is recovered from five frames
solved lost-in-space with no scale hint."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skysolve import load_gaia
from skysolve.camera import CameraModel, RadialDistortion
from skysolve.geometry import wahba_rotation
from skysolve.simulate import random_attitudes, simulate_centroids

W, H = 1600, 1200


def _map_error_px(fitted: CameraModel, truth: CameraModel) -> float:
    """RMS distance (px) between where the two cameras image the same directions, over a
    grid filling the image, after the best rotation between their camera frames (which
    a calibration leaves to the attitudes)."""
    x, y = np.meshgrid(np.linspace(-0.48 * W, 0.48 * W, 25), np.linspace(-0.48 * H, 0.48 * H, 19))
    x, y = x.ravel(), y.ravel()
    v_true = truth.pixel_to_vectors(x, y)
    v_fit = fitted.pixel_to_vectors(x, y)
    turn = wahba_rotation(v_true, v_fit)  # v_true ~ turn @ v_fit
    px, py = truth.vectors_to_pixel(v_fit @ turn.T)
    return float(np.sqrt(np.mean((px - x) ** 2 + (py - y) ** 2)))


def test_equidistant_lens_with_radial_distortion_is_recovered(wide_db):
    gaia = load_gaia()
    truth = CameraModel.from_fov(120.0, W, H, projection="equidistant", crpix=(14.0, -9.0),
                                 distortion=RadialDistortion(0.04, -0.01, scale=1000.0))
    results, sets = [], []
    for k, R in enumerate(random_attitudes(5, rng=21)):
        sim = simulate_centroids(gaia, truth, R, num_stars=150, centroid_noise_px=0.2, seed=k)
        res = wide_db.solve_from_centroids(sim.centroids, image_shape=(H, W),
                                           projection="equidistant")
        assert res, k
        # where the uncalibrated solution sees the true optical centre: the true axis
        axis = res.camera_model.pixel_to_vectors(14.0, -9.0) @ res.rotation_matrix_icrs_to_camera
        assert math.degrees(math.acos(min(1.0, axis @ R[2]))) < 0.1
        results.append(res)
        sets.append(sim.centroids)
    # a solve's own model fits the optical centre (a wide field's residuals call for it)
    # and a radial term about it, one coefficient: within a pixel; the calibration's
    # k1 and k2, shared by five frames, do better
    start = results[0].camera_model
    assert start.crpix == pytest.approx((14.0, -9.0), abs=1.0)
    assert _map_error_px(start, truth) < 1.0
    cal = wide_db.calibrate_camera(results, sets, model="radial")
    cam = cal.camera_model
    assert cam.projection == "equidistant"
    assert cal.rmse_after_px < 0.35  # the 0.2 px per-axis centroid noise
    assert _map_error_px(cam, truth) <= 0.1
    # each image's calibrated mapping as a FITS header in the lens's own projection (ARC)
    from skysolve.calibration.export import image_header

    hdr = image_header(cal, 0, sip_order=9)
    assert hdr["CTYPE1"] == "RA---ARC-SIP" and hdr["SKYERRPX"] <= 0.01


def test_a_circular_fisheye_calibrates_without_a_word_of_its_dark_corners(wide_db):
    """An equisolid 180 deg lens whose image circle (480 px) stops short of the
    1280 x 960 sensor's corners (800 px): no camera maps those corners to the sky. The
    round-trip check took them for a camera that turns over, and warned of a fit that
    held the stars to their noise; it looks only where the lens images the sky."""
    import warnings

    truth = CameraModel(480 / (2 * math.sin(math.radians(45))), 1280, 960,
                        projection="equisolid")
    results, sets = [], []
    for k, R in enumerate(random_attitudes(6, rng=21)):
        sim = simulate_centroids(load_gaia(), truth, R, num_stars=150, centroid_noise_px=0.2,
                                 seed=k, image_circle_deg=180.0)
        res = wide_db.solve_from_centroids(sim.centroids, image_shape=(960, 1280),
                                           camera_model=truth)
        if res:
            results.append(res)
            sets.append(sim.centroids)
    assert len(results) >= 4
    for model in ("radial", "polynomial"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            cal = wide_db.calibrate_camera(results, sets, model=model)
        assert cal.rmse_after_px < 0.35  # (0.2 px centroids: 0.28)
