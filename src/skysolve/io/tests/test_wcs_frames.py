"""A WCS in FK4 or FK5 of another equinox is read as the sky it describes, not as ICRS."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS

from skysolve.geometry import angle_between, radec_to_vector
from skysolve.io.wcs import move_reference_pixel, wcs_to_camera

W, H = 1000, 800


def _wcs(radesys, equinox, code="TAN"):
    w = WCS(naxis=2)
    w.wcs.ctype = [f"RA---{code}", f"DEC--{code}"]
    w.wcs.crval = [50.0, 30.0]
    w.wcs.crpix = [400.5, 300.25]
    w.wcs.cd = np.array([[-1.0, 0.2], [0.1, 1.1]]) * 20.0 / 3600
    w.wcs.radesys = radesys
    if equinox is not None:
        w.wcs.equinox = equinox
    w.pixel_shape = (W, H)
    w.wcs.set()
    return w


def _icrs_of_pixels(w, col, row):
    """What astropy says the WCS's pixels are, in ICRS (the known answer)."""
    frame = {"FK4": "fk4", "FK5": "fk5", "ICRS": "icrs"}[w.wcs.radesys]
    ra, dec = w.all_pix2world(col, row, 0)
    kw = {} if frame == "icrs" else {"equinox": f"{'B' if frame == 'fk4' else 'J'}"
                                                f"{w.wcs.equinox:g}"}
    c = SkyCoord(ra * u.deg, dec * u.deg, frame=frame, **kw).icrs
    return c.ra.deg, c.dec.deg


@pytest.mark.parametrize("radesys, equinox, code", [
    ("FK4", 1950.0, "TAN"),    # old plates' headers: 0.7 deg from ICRS here
    ("FK5", 1950.0, "TAN"),
    ("FK5", 2000.0, "ARC"),    # FK5 J2000: the frame bias, 0.02"
    ("ICRS", None, "TAN"),
])
def test_the_camera_attitude_is_icrs_whatever_the_wcs_frame(radesys, equinox, code):
    w = _wcs(radesys, equinox, code)
    cam, R = wcs_to_camera(w)
    col, row = (g.ravel() for g in np.meshgrid(np.linspace(0, W - 1, 11),
                                                np.linspace(0, H - 1, 11)))
    ra, dec = cam.pixel_to_world(col + 0.5 - W / 2, row + 0.5 - H / 2, R)
    ra0, dec0 = _icrs_of_pixels(w, col, row)
    err = np.degrees(angle_between(radec_to_vector(ra, dec), radec_to_vector(ra0, dec0))) * 3600
    # (FK4's E-terms are no rotation: over this 6 deg field 0.017" of them is left)
    assert np.max(err) < (0.03 if radesys == "FK4" else 0.01)


def test_a_frame_that_needs_an_observation_time_is_refused():
    w = _wcs("GAPPT", None)
    with pytest.raises(ValueError, match="RADESYS"):
        wcs_to_camera(w)


def test_moving_the_reference_pixel_keeps_the_frame():
    w = _wcs("FK4", 1950.0)
    moved = move_reference_pixel(w, (W / 2 + 0.5, H / 2 + 0.5), W, H)
    assert moved.wcs.radesys == "FK4" and moved.wcs.equinox == 1950.0
    col, row = (g.ravel() for g in np.meshgrid(np.linspace(0, W - 1, 7),
                                                np.linspace(0, H - 1, 7)))
    a = radec_to_vector(*_icrs_of_pixels(w, col, row))
    b = radec_to_vector(*_icrs_of_pixels(moved, col, row))
    assert np.max(np.degrees(angle_between(a, b))) * 3600 < 0.01
