"""Radial (Brown-Conrady) calibration with its optical axis far off the image."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skysolve import CameraModel, RadialDistortion
from skysolve.calibration.radial import metric_axis
from skysolve.simulate import random_attitudes

from .synthetic import mapping_error_px, synthetic_solves, within_radius

W = H = 1024


def off_axis_camera() -> CameraModel:
    """FOV ~14 deg, optical axis ~950 px from the image centre (beyond a corner), a
    decentred Brown-Conrady lens moving the far corner by ~15 px."""
    return CameraModel(4000.0, W, H, crpix=(-700.0, 650.0),
                       distortion=RadialDistortion(3.2e-9, 1e-16, 0.0, 1e-7, -5e-8, (20.0, -15.0)))


def test_off_axis_lens_is_recovered(small_db):
    truth = off_axis_camera()
    rots = random_attitudes(6, rng=11)
    res, cents = synthetic_solves(small_db, [truth] * 6, rots, 0.05, seed=11, max_stars=200)
    cal = small_db.calibrate_camera(res, cents, model="radial")
    cam = cal.camera_model
    assert isinstance(cam.distortion, RadialDistortion)
    assert cal.crpix_fitted and cal.center_fitted
    # the optical axis is found ~950 px away, to about a pixel
    assert np.hypot(*(cam.crpix - truth.crpix)) < 5.0
    g = np.linspace(-W / 2 + 0.5, W / 2 - 0.5, 33)
    gx, gy = (a.ravel() for a in np.meshgrid(g, g))
    err = np.concatenate([mapping_error_px(cal.image_camera(i), cal.rotations[i], truth, R,
                                           gx, gy) for i, R in enumerate(rots)])
    assert math.sqrt(np.mean(err ** 2)) <= 0.05
    assert cal.rmse_after_px == pytest.approx(0.05 * math.sqrt(2), rel=0.15)
    assert cal.rmse_before_px > 100  # the solves' centred pinhole is far off
    # without the free centres the same lens cannot be fitted
    fixed = small_db.calibrate_camera(res, cents, model="radial", fit_distortion_center=False)
    assert not fixed.center_fitted and fixed.camera_model.distortion.center == (0.0, 0.0)


def test_metric_axis_points_at_the_optical_axis():
    """The principal directions of a radial camera's pixel -> sky metric meet at its axis,
    wherever it is (the gnomonic projection alone makes them radial)."""
    for crpix in ((-700.0, 650.0), (0.0, 0.0), (300.0, -2000.0)):
        plain = CameraModel(4000.0, W, H, crpix=crpix)
        axis = metric_axis(plain, W, H)
        assert np.hypot(*(axis - crpix)) < 1.0
        lens = plain.replace(distortion=RadialDistortion(3e-9))
        assert np.hypot(*(metric_axis(lens, W, H) - crpix)) < 5.0
    # a field too small to show any anisotropy points nowhere
    assert metric_axis(CameraModel(1e9, W, H), W, H) is None


def central_frames(db, seed: int, reach: float, n: int = 10):
    """Ten 1024 x 768 frames of a mild barrel lens (0.8 px at 300 px from the centre)
    whose matched stars lie within ``reach`` px of the image centre; the truth and the
    attitudes too."""
    truth = CameraModel(3800.0, 1024, 768, crpix=(6.0, -4.0),
                        distortion=RadialDistortion(k1=-1.2e-8))
    rots = random_attitudes(n, rng=seed)
    res, cents = synthetic_solves(db, [truth] * n, rots, 0.1, seed=seed)
    return (*within_radius(res, cents, reach), truth, rots)


@pytest.mark.parametrize(("seed", "reach"), [(4, 150.0), (5, 200.0)])
def test_stars_in_the_middle_of_the_image_are_fitted(small_db, seed, reach):
    """Stars within 150-200 px of the centre hardly constrain the centres and the higher
    radial terms: the fit used to start from an extrapolated polynomial and diverge
    ("focal length became invalid") or return residuals of 10^6 px."""
    res, cents, truth, rots = central_frames(small_db, seed, reach)
    cal = small_db.calibrate_camera(res, cents, model="radial")
    assert cal.converged
    assert cal.rmse_after_px == pytest.approx(0.1 * math.sqrt(2), rel=0.1)
    assert cal.camera_model.focal_length_px == pytest.approx(truth.focal_length_px, rel=2e-3)
    g = np.linspace(-reach, reach, 15)
    gx, gy = (a.ravel() for a in np.meshgrid(g, g))
    gx, gy = gx[np.hypot(gx, gy) < reach], gy[np.hypot(gx, gy) < reach]
    err = np.concatenate([mapping_error_px(cal.image_camera(i), cal.rotations[i], truth, R,
                                           gx, gy) for i, R in enumerate(rots)])
    assert math.sqrt(np.mean(err ** 2)) < 0.1
