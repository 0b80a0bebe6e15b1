"""A forward polynomial distortion inverts to the root on the branch about the centre.

Newton from a poor first guess (the inverse polynomial of ``from_forward`` is itself
fitted from Newton inverses) can end on another root of the polynomial, far outside
the image, which the orientation checks do not reject: a corner of a 1600 x 1200
image, with a 9 % barrel term and percent-level others (a fitted wide lens), came back
25,000 px out, and the inverse polynomial fitted to such roots was 1700 px off. Known answers: the
ideal offsets the forward polynomial was evaluated at (round trips over the image).
"""

from __future__ import annotations

import numpy as np

from skysolve.camera import PolynomialDistortion
from skysolve.camera.distortion import polynomial_design_matrix

W, H, SCALE = 1600, 1200, 800.0
A = [0.0, 0.0, 0.0, 7.581915333895115, -6.097060058613696, 2.180464849408754,
     -95.50369188005472, 4.1370121752322255, -93.25209099484536, 6.361262590560075,
     4.968035367484375, 17.77015561473061, -0.6413951850505634, -7.802650656174504,
     -9.28893805871339]
B = [0.0, 0.0, 0.0, 12.151740309697207, 1.602545324432467, -7.816151641136185,
     -3.7036260011152695, -95.29075737569902, 1.4261380609631713, -98.38670270296686,
     10.255714502252495, -2.850474787473563, -1.8982374534056328, 7.385199630810091,
     -5.9877758536127565]


def _jacobian_det(d: PolynomialDistortion, x, y, h: float = 0.5):
    ax, ay = d.distort(x + h, y)
    bx, by = d.distort(x - h, y)
    cx, cy = d.distort(x, y + h)
    ex, ey = d.distort(x, y - h)
    return (ax - bx) * (cy - ey) - (ay - by) * (cx - ex), (ax - bx) + (cy - ey)


def test_the_model_is_one_to_one_along_every_ray_of_the_image():
    # (the premise: every image point is reached from the centre keeping orientation)
    d = PolynomialDistortion(4, SCALE, A, B)
    gx, gy = np.meshgrid(np.linspace(-W / 2, W / 2, 41), np.linspace(-H / 2, H / 2, 31))
    for t in np.linspace(0.02, 1.0, 50):
        det, trace = _jacobian_det(d, t * gx, t * gy)
        assert np.all(det > 0) and np.all(trace > 0)


def test_undistort_finds_the_ideal_offsets_out_to_the_corners():
    d = PolynomialDistortion.from_forward(4, SCALE, A, B, image_width=W, image_height=H)
    gx, gy = np.meshgrid(np.linspace(-W / 2, W / 2, 41), np.linspace(-H / 2, H / 2, 31))
    x, y = gx.ravel(), gy.ravel()
    xu, yu = d.undistort(*d.distort(x, y))
    np.testing.assert_allclose(xu, x, atol=1e-6)
    np.testing.assert_allclose(yu, y, atol=1e-6)
    # the inverse polynomial fitted over the image (from those inverses) is a first guess
    # within tens of px there (an order-4 polynomial of an inverse this steep near its
    # fold: 26 px), not 1700 px off as when it was fitted to far roots
    xd, yd = d.distort(x, y)
    m = polynomial_design_matrix(xd, yd, 4, SCALE)
    guess_error = np.hypot(xd + m @ d.ap_coeffs - x, yd + m @ d.bp_coeffs - y)
    assert np.max(guess_error) < 50.0
