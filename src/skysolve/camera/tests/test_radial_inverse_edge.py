"""Radial distortion inverts everywhere it is one-to-one, up to its fold-over.

A pincushion ``k1`` with a negative ``k3`` (a common calibrated fit) bends the
distorted radius over at some radius; every distorted offset inside that bend
has exactly one ideal offset, and ``undistort`` must find it, also just inside
the bend where the map is nearly flat.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from skysolve.calibration.radial import folds_over
from skysolve.camera import CameraModel, RadialDistortion

#: (k1, k2, k3, p1, p2) of models whose radius turns over beyond the image's middle
MODELS = [(0.3, 0.0, -0.04, 0.0, 0.0), (0.2, 0.0, -0.04, 0.0, 0.0),
          (0.3105, -0.1097, -0.0375, -0.0042, 0.0017), (0.1806, 0.0253, -0.043, 0.0068, -0.0016),
          # turns over at 1347 px and back up at 2200 px: past that second turn lies
          # another orientation-keeping root, 2860 px from the right one
          (0.3253, -0.1947, 0.0104, 0.0, 0.0), (0.3253, -0.1947, 0.0104, -0.0081, 0.0075)]


def _fold_radius(k1: float, k2: float, k3: float) -> float:
    """First positive radius (units of scale) where d(r R(r))/dr = 0: analytic, from the
    cubic 1 + 3 k1 s + 5 k2 s^2 + 7 k3 s^3 in s = r^2."""
    s = [z.real for z in np.roots([7 * k3, 5 * k2, 3 * k1, 1.0])
         if abs(z.imag) < 1e-12 and z.real > 0]
    return math.sqrt(min(s))


@pytest.mark.parametrize("coeffs", MODELS)
def test_undistort_inverts_up_to_just_inside_the_fold(coeffs):
    k1, k2, k3, p1, p2 = coeffs
    scale = 1000.0
    d = RadialDistortion(*coeffs, scale=scale)
    r_fold = _fold_radius(k1, k2, k3) * scale
    # ideal offsets out to 97 % of the fold radius, round the circle (the tangential
    # terms are small: the 2-D map stays one-to-one there)
    r = np.linspace(0.0, 0.97 * r_fold, 300)
    for a in np.radians([0.0, 37.0, 90.0, 161.0, 250.0]):
        x, y = r * math.cos(a), r * math.sin(a)
        xd, yd = d.distort(x, y)
        xu, yu = d.undistort(xd, yd)
        np.testing.assert_allclose(xu, x, atol=1e-6)
        np.testing.assert_allclose(yu, y, atol=1e-6)


def test_a_camera_whose_corners_lie_inside_the_fold_does_not_fold_over():
    # the corners, 1700 px out, image ideal offsets 1300 px out; the pincushion turns over
    # at 1483 px (distorted 1830 px): the camera is one-to-one over the image
    d = RadialDistortion(0.3, 0.0, -0.04, scale=1000.0)
    cam = CameraModel.from_fov(60.0, 2720, 2040, distortion=d)
    assert not folds_over(cam)
    corners_x, corners_y = np.array([-1360.0, 1360.0]), np.array([-1020.0, 1020.0])
    xs, ys = np.meshgrid(corners_x, corners_y)
    v = cam.pixel_to_vectors(xs.ravel(), ys.ravel())
    assert np.all(np.isfinite(v))
