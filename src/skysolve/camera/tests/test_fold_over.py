"""Offsets beyond a strong barrel term's fold-over have no ideal offset (NaN)."""

from __future__ import annotations

import numpy as np

from skysolve.camera import CameraModel, RadialDistortion


def test_radial_undistort_beyond_fold_over_is_nan():
    d = RadialDistortion(-0.05, scale=800.0)  # r_d peaks at 1377 px (r = 2066 px)
    u, v = d.undistort(np.array([1000.0, 1370.0, 1380.0, 1e6]), np.zeros(4))
    assert np.all(np.isfinite(u[:2])) and np.all(u[:2] > 0)
    np.testing.assert_allclose(d.distort(u[:2], v[:2])[0], [1000.0, 1370.0], atol=1e-6)
    assert np.all(np.isnan(u[2:])) and np.all(np.isnan(v[2:]))


def test_pixel_beyond_fold_over_has_no_sky_position():
    cam = CameraModel.from_fov(60.0, 1600, 1200, distortion=RadialDistortion(-0.05, scale=800.0))
    R = np.eye(3)
    assert cam.pixel_to_world(1380.0, 0.0, R) is None or not np.isfinite(
        np.asarray(cam.pixel_to_world(1380.0, 0.0, R), dtype=float)).all()
    v = cam.pixel_to_vectors(np.array([1380.0]), np.array([0.0]))
    assert np.isnan(v).all()
