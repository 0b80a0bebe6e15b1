"""A SIP header of order > 6 becomes a camera that keeps its mapping, or says it cannot."""

import warnings

import numpy as np
import pytest
from astropy.wcs import WCS, Sip

from skysolve.camera import CameraModel
from skysolve.camera.distortion import RadialDistortion
from skysolve.geometry import angle_between, radec_roll_to_rotation, radec_to_vector
from skysolve.io.wcs import camera_to_wcs, wcs_to_camera, wcs_to_header

W, H = 2048, 1536
R0 = radec_roll_to_rotation(123.4, -56.7, 33.0)


def _grid(n=21):
    gx, gy = np.meshgrid(np.linspace(-W / 2, W / 2, n), np.linspace(-H / 2, H / 2, n))
    return gx.ravel(), gy.ravel()


@pytest.mark.parametrize("corner_shift", [0.04, 0.05])
def test_a_wide_lens_round_trips_through_its_order_9_header(corner_shift):
    # a lens whose corners move inwards by 4-5 %: r (1 + k1 r^2) is short sky -> pixel but a
    # long series pixel -> sky, so its header has SIP A/B of order 9 (AP/BP of order 3);
    # converting the header back refitted A/B at order 6 and lost ~0.1 px, silently
    k1 = -corner_shift / (0.5 * np.hypot(W, H)) ** 2
    cam = CameraModel.from_fov(20.0, W, H, crpix=(30.0, -20.0),
                               distortion=RadialDistortion(k1=k1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the header holds the lens closely: no warning
        hdr = wcs_to_header(camera_to_wcs(cam, R0))
        assert hdr["A_ORDER"] > 6
        cam2, R2 = wcs_to_camera(hdr)
    x, y = _grid()
    u1, v1 = cam.ideal_offsets(x, y)
    u2, v2 = cam2.ideal_offsets(x, y)
    assert np.max(np.hypot(u2 - u1, v2 - v1)) < 0.02
    np.testing.assert_allclose(R2, R0, atol=1e-9)


def test_a_header_no_order_6_camera_holds_warns_with_the_error():
    # an order-8 SIP term (5 px at the edges) no order-6 polynomial reproduces (to 0.04 px)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    w.wcs.crval = [10.0, 20.0]
    w.wcs.crpix = [W / 2 + 0.5, H / 2 + 0.5]
    d = 5.0 / 3600
    w.wcs.cd = [[d, 0.0], [0.0, d]]
    a = np.zeros((9, 9))
    b = np.zeros((9, 9))
    a[8, 0] = 5.0 / (W / 2) ** 8
    b[0, 8] = 5.0 / (H / 2) ** 8
    w.sip = Sip(a, b, None, None, w.wcs.crpix)
    w.pixel_shape = (W, H)
    w.wcs.set()
    with pytest.warns(UserWarning, match="px"):
        cam, R = wcs_to_camera(w)
    # and what it does return is the closest it can, not the 5 px the term moves
    col, row = (g.ravel() for g in np.meshgrid(np.linspace(0, W - 1, 21),
                                                np.linspace(0, H - 1, 21)))
    sky = w.all_pix2world(col, row, 0)
    ra, dec = cam.pixel_to_world(col + 0.5 - W / 2, row + 0.5 - H / 2, R)
    err_px = np.degrees(angle_between(radec_to_vector(ra, dec),
                                      radec_to_vector(sky[0], sky[1]))) / d
    assert np.max(err_px) < 0.5
