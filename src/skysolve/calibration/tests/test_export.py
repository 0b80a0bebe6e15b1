"""Per-image TAN-SIP headers reproduce the calibrated mappings."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from skysolve.calibration.export import image_header, image_wcs
from skysolve.geometry import angle_between, radec_to_vector
from skysolve.simulate import random_attitudes
from skysolve.sky.aberration import unaberrate

from .synthetic import synthetic_solves
from .test_uncertainty import NOISE_PX, truth_camera

W = H = 1024


@pytest.fixture(scope="module")
def calibrations(small_db):
    truth = truth_camera()
    rots = random_attitudes(3, rng=51)
    res, cents = synthetic_solves(small_db, [truth] * 3, rots, NOISE_PX, seed=51,
                                  max_stars=150)
    velocities = [np.array([12.0, -25.0, 8.0]), None, np.array([-29.0, 3.0, 1.0])]
    plain = small_db.calibrate_camera(res, cents, order=3, validation_folds=0)
    moving = small_db.calibrate_camera(res, cents, order=3, validation_folds=0,
                                       observer_velocities_km_s=velocities)
    return plain, moving


def _calibrated_sky(cal, i, x, y):
    v = cal.image_camera(i).pixel_to_vectors(x, y) @ cal.rotations[i]
    vel = cal.per_image_velocity_km_s[i]
    return v if vel is None else unaberrate(v, vel)


@pytest.mark.parametrize("which", [0, 1])
def test_headers_reproduce_the_calibration(calibrations, which):
    cal = calibrations[which]
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-W / 2, W / 2, 500), rng.uniform(-H / 2, H / 2, 500)
    for i in range(3):
        hdr = image_header(cal, i, sip_order=4, pixel_offset=(44, 7))
        wcs = WCS(fits.Header.fromstring(hdr.tostring()))  # through FITS text
        assert hdr["SKYERRPX"] <= 0.01
        ra, dec = wcs.all_pix2world(x + W / 2 - 0.5 + 44, y + H / 2 - 0.5 + 7, 0)
        err = angle_between(radec_to_vector(ra, dec), _calibrated_sky(cal, i, x, y))
        assert np.max(err) * cal.image_camera(i).focal_length_px <= 0.01
        assert hdr["SKYSCALE"] == cal.per_image_scale[i]
        assert hdr["A_ORDER"] == 4 and (hdr["NAXIS1"], hdr["NAXIS2"]) == (W + 44, H + 7)


def test_aberration_is_undone_in_the_headers(calibrations):
    plain, moving = calibrations
    assert moving.per_image_velocity_km_s[1] is None
    assert np.allclose(moving.per_image_velocity_km_s[0], [12.0, -25.0, 8.0])
    # the same stars: both headers describe the catalog sky, the fits' cameras differ by
    # the differential aberration only
    w0, _ = image_wcs(plain, 0)
    w1, _ = image_wcs(moving, 0)
    p = np.array([[1.0, 1.0], [512.5, 512.5], [1024.0, 1024.0]])
    a = radec_to_vector(*w0.all_pix2world(p[:, 0], p[:, 1], 1))
    b = radec_to_vector(*w1.all_pix2world(p[:, 0], p[:, 1], 1))
    assert np.degrees(np.max(angle_between(a, b))) * 3600 < 0.5
    with pytest.raises(ValueError, match="sip_order"):
        image_wcs(plain, 0, sip_order=1)
    with pytest.raises(TypeError, match="sip_order must be a whole number"):
        image_wcs(plain, 0, sip_order=4.5)  # was cut to 4
    low, err = image_wcs(plain, 0, sip_order=2)
    assert err > 0.01  # an order-2 SIP cannot hold an order-3 camera: the error says so


def _radial_calibration(small_db, k1: float):
    """A radial calibration of three frames of a 14 deg 1024x1024 barrel lens (``k1`` at
    the half-width: ``k1`` x 512 px of barrel at the edges' middles)."""
    from skysolve.camera.distortion import RadialDistortion
    from skysolve.camera.model import CameraModel

    truth = CameraModel.from_fov(14.0, W, H, distortion=RadialDistortion(k1, scale=W / 2))
    res, cents = synthetic_solves(small_db, [truth] * 3, random_attitudes(3, rng=52), 0.05,
                                  seed=52, max_stars=150)
    return small_db.calibrate_camera(res, cents, model="radial", validation_folds=0)


def test_the_default_sip_order_is_the_lowest_that_holds_the_lens(small_db, calibrations):
    """The headers' SIP order was fixed (6 from the CLI, 5 from the API): a 14 deg lens with
    13 px of barrel at the edges' middles needs order 9 (order 6 left 0.15 px, named only
    in SKYERRPX), a mild polynomial camera a low order; the default now takes the lowest
    order that reproduces the calibration to SIP_TOLERANCE_PX."""
    from skysolve.calibration.export import SIP_TOLERANCE_PX

    cal = _radial_calibration(small_db, -0.025)
    hdr = image_header(cal, 0)
    order = hdr["A_ORDER"]
    assert hdr["SKYERRPX"] <= SIP_TOLERANCE_PX and order >= 7
    assert image_wcs(cal, 0, sip_order=order - 1)[1] > SIP_TOLERANCE_PX
    assert image_wcs(cal, 0, sip_order=6)[1] > 0.1
    plain = calibrations[0]
    order = image_header(plain, 1)["A_ORDER"]
    assert image_header(plain, 1)["SKYERRPX"] <= SIP_TOLERANCE_PX
    assert image_wcs(plain, 1, sip_order=order - 1)[1] > SIP_TOLERANCE_PX


def test_a_lens_no_sip_order_holds_is_written_with_a_warning(small_db):
    """25 px of barrel at the edges' middles: the inverse series converges too slowly for
    any SIP order up to 9; the most accurate order is written and the error named."""
    cal = _radial_calibration(small_db, -0.05)
    errors = [image_wcs(cal, 0, sip_order=k)[1] for k in range(2, 10)]
    with pytest.warns(UserWarning, match="most accurate SIP header"):
        hdr = image_header(cal, 0)
    assert hdr["SKYERRPX"] == pytest.approx(min(errors), rel=1e-2) and min(errors) > 0.01
