"""The error a per-image header states (SKYERRPX) is in pixels over the whole image."""

from __future__ import annotations

import numpy as np
import pytest

from skysolve.calibration.export import image_wcs
from skysolve.camera.distortion import RadialDistortion
from skysolve.camera.model import CameraModel
from skysolve.geometry import radec_to_vector
from skysolve.simulate import random_attitudes

from .synthetic import synthetic_solves

W, H = 1600, 1200


@pytest.mark.parametrize("fov", [40.0, 80.0])
def test_the_stated_error_is_the_largest_pixel_distance(small_db, fov):
    # measured as an angle times the focal length, it was what the error is at the
    # optical centre: a pinhole's edge pixels span less sky, so 2x too small at 80 deg
    truth = CameraModel.from_fov(fov, W, H, distortion=RadialDistortion(k1=-2e-8))
    rots = random_attitudes(4, rng=5)
    res, cents = synthetic_solves(small_db, [truth] * 4, rots, 0.05, seed=1)
    cal = small_db.calibrate_camera(res, cents, model="radial", validation_folds=0)
    wcs, err = image_wcs(cal, 0, sip_order=4)
    cam, R = cal.image_camera(0), cal.rotations[0]
    g = np.linspace(-0.5, 0.5, 33)
    x, y = (a.ravel() for a in np.meshgrid(g * W, g * H))
    ra, dec = wcs.all_pix2world(x + 0.5 + W / 2, y + 0.5 + H / 2, 1)
    px, py = cam.vectors_to_pixel(radec_to_vector(ra, dec) @ np.asarray(R).T)
    assert err == pytest.approx(float(np.max(np.hypot(px - x, py - y))), rel=0.01)
