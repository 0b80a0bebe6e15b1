"""Tests of skysolve.io.wcs: CameraModel + attitude <-> astropy WCS."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS, Sip

from skysolve.camera.distortion import PolynomialDistortion, RadialDistortion, num_polynomial_terms
from skysolve.camera.model import CameraModel
from skysolve.errors import InvalidArgumentError, InvalidTypeError
from skysolve.geometry import (
    angle_between,
    radec_roll_to_rotation,
    radec_to_vector,
    vector_to_radec,
)
from skysolve.io.wcs import camera_to_wcs, wcs_to_camera, wcs_to_header

W, H = 2048, 1536
CRPIX = (14.3, -9.7)
R0 = radec_roll_to_rotation(123.4, -56.7, 33.0)


def _poly(primary):
    rng = np.random.default_rng(7)
    n = num_polynomial_terms(5)
    scale = np.r_[0.0, 0.5, 0.5, np.ones(n - 3)]
    a, b = rng.normal(0, 1.0, n) * scale, rng.normal(0, 1.0, n) * scale
    maker = PolynomialDistortion.from_forward if primary == "forward" else \
        PolynomialDistortion.from_inverse
    return maker(5, W / 2, a, b, image_width=W, image_height=H, crpix=CRPIX)


CAMERAS = {
    "plain": CameraModel.from_fov(10.0, W, H, crpix=CRPIX),
    "flip": CameraModel.from_fov(10.0, W, H, crpix=CRPIX, parity_flip=True),
    "radial_flip": CameraModel.from_fov(
        10.0, W, H, crpix=CRPIX, parity_flip=True,
        distortion=RadialDistortion(k1=-4e-9, k2=2e-16, p1=1e-7, p2=-5e-8)),
    "poly_forward": CameraModel.from_fov(10.0, W, H, crpix=CRPIX, distortion=_poly("forward")),
    "poly_inverse_flip": CameraModel.from_fov(10.0, W, H, crpix=CRPIX, parity_flip=True,
                                              distortion=_poly("inverse")),
}


def centred_grid(w=W, h=H, n=33):
    gx, gy = np.meshgrid(np.linspace(-w / 2, w / 2, n), np.linspace(-h / 2, h / 2, n))
    return gx.ravel(), gy.ravel()


def arcsec_between(ra1, dec1, ra2, dec2):
    return np.degrees(angle_between(radec_to_vector(ra1, dec1), radec_to_vector(ra2, dec2))) * 3600


def model_radec(cam, R, x, y):
    return cam.pixel_to_world(x, y, R)


def test_linear_wcs_known_answer():
    cam = CameraModel(5000.0, W, H, crpix=CRPIX)
    R = radec_roll_to_rotation(40.0, 20.0, 0.0)  # camera +Y = North, +X = East
    w = camera_to_wcs(cam, R)
    assert list(w.wcs.ctype) == ["RA---TAN", "DEC--TAN"]
    np.testing.assert_allclose(w.wcs.crval, [40.0, 20.0], atol=1e-12)
    np.testing.assert_allclose(w.wcs.crpix, [W / 2 + 0.5 + CRPIX[0], H / 2 + 0.5 + CRPIX[1]])
    d = math.degrees(1 / 5000.0)
    np.testing.assert_allclose(w.wcs.cd, [[d, 0], [0, d]], atol=1e-15)
    assert w.pixel_shape == (W, H)
    flip = camera_to_wcs(cam.replace(parity_flip=True), R)
    np.testing.assert_allclose(flip.wcs.cd, [[-d, 0], [0, d]], atol=1e-15)
    # astropy's 0-based pixel of the optical centre is the boresight
    c = w.pixel_to_world(W / 2 - 0.5 + CRPIX[0], H / 2 - 0.5 + CRPIX[1])
    assert c.ra.deg == pytest.approx(40.0) and c.dec.deg == pytest.approx(20.0)


@pytest.mark.parametrize("name", sorted(CAMERAS))
def test_wcs_matches_numpy_model(name):
    cam = CAMERAS[name]
    w = camera_to_wcs(cam, R0)
    assert w.wcs.ctype[0].endswith("-SIP") == (cam.distortion is not None)
    x, y = centred_grid()
    sky = w.pixel_to_world(x + W / 2 - 0.5, y + H / 2 - 0.5)
    ra, dec = model_radec(cam, R0, x, y)
    assert np.max(arcsec_between(ra, dec, sky.ra.deg, sky.dec.deg)) < 0.01
    # and astropy's inverse lands on the same pixels
    px, py = w.world_to_pixel(sky)
    assert np.max(np.hypot(px - (x + W / 2 - 0.5), py - (y + H / 2 - 0.5))) < 1e-4


@pytest.mark.parametrize("name", sorted(CAMERAS))
def test_header_round_trip(name):
    cam = CAMERAS[name]
    w = camera_to_wcs(cam, R0)
    hdr = wcs_to_header(w)
    assert isinstance(hdr, fits.Header)
    assert hdr["NAXIS1"] == W and hdr["NAXIS2"] == H
    assert ("A_ORDER" in hdr) == (cam.distortion is not None)
    text = hdr.tostring()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w2 = WCS(fits.Header.fromstring(text))
    assert w2.pixel_shape == (W, H)
    x, y = centred_grid(n=17)
    s1 = w.pixel_to_world(x + W / 2 - 0.5, y + H / 2 - 0.5)
    s2 = w2.pixel_to_world(x + W / 2 - 0.5, y + H / 2 - 0.5)
    assert np.max(arcsec_between(s1.ra.deg, s1.dec.deg, s2.ra.deg, s2.dec.deg)) < 1e-5
    # and the header converts back to the camera
    cam2, R2 = wcs_to_camera(hdr)
    ra, dec = model_radec(cam2, R2, x, y)
    ra0, dec0 = model_radec(cam, R0, x, y)
    assert np.max(arcsec_between(ra, dec, ra0, dec0)) < 1e-4


@pytest.mark.parametrize("name", sorted(CAMERAS))
def test_wcs_to_camera_inverts_camera_to_wcs(name):
    cam = CAMERAS[name]
    cam2, R2 = wcs_to_camera(camera_to_wcs(cam, R0))
    np.testing.assert_allclose(R2, R0, atol=1e-12)
    assert cam2.focal_length_px == pytest.approx(cam.focal_length_px, rel=1e-12)
    np.testing.assert_allclose(cam2.crpix, cam.crpix, atol=1e-9)
    assert (cam2.image_width, cam2.image_height) == (W, H)
    assert cam2.parity_flip == cam.parity_flip
    assert (cam2.distortion is None) == (cam.distortion is None)
    x, y = centred_grid()
    xi, eta = cam.pixel_to_tanplane(x, y)
    xi2, eta2 = cam2.pixel_to_tanplane(x, y)
    # compare in pixels: tangent-plane difference times focal length
    err_px = np.hypot(xi2 - xi, eta2 - eta) * cam.focal_length_px
    assert np.max(err_px) < 1e-4
    x2, y2 = cam2.tanplane_to_pixel(xi, eta)
    assert np.max(np.hypot(x2 - x, y2 - y)) < 1e-4
    if cam.distortion is None:
        assert cam2 == cam.replace(focal_length_px=cam2.focal_length_px, crpix=cam2.crpix)


@pytest.mark.parametrize("R", [
    radec_roll_to_rotation(0.0, 90.0, 10.0),
    radec_roll_to_rotation(200.0, -90.0, 250.0),
    radec_roll_to_rotation(359.99999, 89.99999, 0.0),
    np.eye(3),
])
def test_poles_and_odd_attitudes(R):
    cam = CAMERAS["flip"]
    w = camera_to_wcs(cam, R)
    x, y = centred_grid(n=9)
    sky = w.pixel_to_world(x + W / 2 - 0.5, y + H / 2 - 0.5)
    ra, dec = model_radec(cam, R, x, y)
    assert np.max(arcsec_between(ra, dec, sky.ra.deg, sky.dec.deg)) < 1e-6
    cam2, R2 = wcs_to_camera(w)
    np.testing.assert_allclose(R2, R, atol=1e-12)


def test_pixel_offset_cut_out():
    cam = CAMERAS["radial_flip"]
    w = camera_to_wcs(cam, R0, pixel_offset=(44, 7))
    assert w.pixel_shape == (W + 44, H + 7)
    x, y = centred_grid(n=9)
    sky = w.pixel_to_world(x + W / 2 - 0.5 + 44, y + H / 2 - 0.5 + 7)
    ra, dec = model_radec(cam, R0, x, y)
    assert np.max(arcsec_between(ra, dec, sky.ra.deg, sky.dec.deg)) < 0.01
    cam2, R2 = wcs_to_camera(w, pixel_offset=(44, 7))
    assert (cam2.image_width, cam2.image_height) == (W, H)
    np.testing.assert_allclose(cam2.crpix, CRPIX, atol=1e-9)
    np.testing.assert_allclose(R2, R0, atol=1e-12)


def test_external_sip_header_with_skewed_cd():
    """A header with non-conformal CD and SIP A/B only (no AP/BP) maps exactly."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    w.wcs.crval = [210.0, 54.0]
    w.wcs.crpix = [812.3, 620.9]
    w.wcs.cd = np.array([[-2.1e-4, 0.3e-5], [0.1e-5, 1.95e-4]])
    a = np.zeros((4, 4))
    b = np.zeros((4, 4))
    a[2, 0], a[1, 1], a[0, 3] = 2e-6, -1e-6, 3e-9
    b[0, 2], b[2, 1] = -1.5e-6, 2e-9
    w.sip = Sip(a, b, None, None, w.wcs.crpix)
    w.pixel_shape = (1600, 1200)
    cam, R = wcs_to_camera(w)
    assert cam.parity_flip  # det(CD) < 0
    assert isinstance(cam.distortion, PolynomialDistortion) and cam.distortion.order == 3
    x, y = centred_grid(1600, 1200, 21)
    sky = w.pixel_to_world(x + 800 - 0.5, y + 600 - 0.5)
    ra, dec = model_radec(cam, R, x, y)
    scale_arcsec = math.degrees(cam.pixel_scale()) * 3600
    assert np.max(arcsec_between(ra, dec, sky.ra.deg, sky.dec.deg)) / scale_arcsec < 1e-6
    px, py = cam.world_to_pixel(sky.ra.deg, sky.dec.deg, R)
    assert np.max(np.hypot(px - x, py - y)) < 1e-6
    # a plain TAN header with a skewed CD becomes an order-1 polynomial
    w.sip = None
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    cam, R = wcs_to_camera(w)
    assert cam.distortion.order == 1
    sky = w.pixel_to_world(x + 800 - 0.5, y + 600 - 0.5)
    ra, dec = model_radec(cam, R, x, y)
    assert np.max(arcsec_between(ra, dec, sky.ra.deg, sky.dec.deg)) / scale_arcsec < 1e-6


def test_bad_inputs():
    cam = CAMERAS["plain"]
    with pytest.raises(InvalidTypeError, match="camera"):
        camera_to_wcs("cam", R0)
    with pytest.raises(InvalidArgumentError, match="rotation"):
        camera_to_wcs(cam, np.ones((3, 3)))
    with pytest.raises(InvalidArgumentError, match="pixel_offset"):
        camera_to_wcs(cam, R0, pixel_offset=(1, 2, 3))
    with pytest.raises(InvalidTypeError, match="wcs"):
        wcs_to_camera("header")
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---AIT", "DEC--AIT"]
    w.wcs.crval = [1.0, 2.0]
    w.wcs.cdelt = [-1e-3, 1e-3]
    w.pixel_shape = (100, 100)
    with pytest.raises(InvalidArgumentError, match="RA---AIT"):
        wcs_to_camera(w)
    w.wcs.ctype = ["RA---TAN", "DEC--ARC"]
    with pytest.raises(InvalidArgumentError, match="DEC--ARC"):
        wcs_to_camera(w)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.set_pv([(2, 1, 0.2)])  # slant orthographic: no lens
    with pytest.raises(InvalidArgumentError, match="PV2_1"):
        wcs_to_camera(w)
    w.wcs.set_pv([])
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.pixel_shape = None
    with pytest.raises(InvalidArgumentError, match="image_width"):
        wcs_to_camera(w)
    cam2, _ = wcs_to_camera(w, 100, 80)
    assert (cam2.image_width, cam2.image_height) == (100, 80)
    assert cam2.parity_flip and cam2.distortion is None
    with pytest.raises(InvalidTypeError, match="wcs"):
        wcs_to_header(cam)


def test_tess_archival_sip_wcs():
    """The archival TESS SIP solution converts exactly over the 2048² science area."""
    tesswcs = pytest.importorskip("tesswcs")
    w = tesswcs.WCS.from_sector(sector=1, camera=1, ccd=1)
    cam, R = wcs_to_camera(w, 2048, 2048, pixel_offset=(44, 0))
    assert cam.image_width == cam.image_height == 2048
    assert 11.5 < cam.fov_deg < 11.8  # 21"/px
    # det(CD) > 0: with +y down the FFI is not mirrored in skysolve's convention
    assert not cam.parity_flip
    assert cam.distortion.order == w.sip.a_order
    col, row = np.meshgrid(np.linspace(0, 2047, 41), np.linspace(0, 2047, 41))
    col, row = col.ravel(), row.ravel()
    x, y = col + 0.5 - 1024, row + 0.5 - 1024
    sky = w.pixel_to_world(col + 44, row)
    ra, dec = cam.pixel_to_world(x, y, R)
    err_px = np.radians(arcsec_between(ra, dec, sky.ra.deg, sky.dec.deg) / 3600) * \
        cam.focal_length_px
    assert np.max(err_px) < 0.01
    px, py = cam.world_to_pixel(sky.ra.deg, sky.dec.deg, R)
    assert np.max(np.hypot(px - x, py - y)) < 0.01
    # the seed notebook's reference point (science centre) agrees too
    c = w.pixel_to_world(1024 + 44, 1024)
    ra, dec = cam.pixel_to_world(0.5, 0.5, R)
    assert arcsec_between(ra, dec, c.ra.deg, c.dec.deg) < 0.01


# -- every lens projection -----------------------------------------------------------------
# (projection, FOV across the width): the fisheyes reach past 90° off axis in the corners
# (the equisolid frame is the 180° all-sky one, its image circle inscribed in the square)
WIDE = {"pinhole": ("pinhole", 100.0, 1600, 1200),
        "equidistant": ("equidistant", 200.0, 1600, 1200),
        "equisolid": ("equisolid", 180.0, 1600, 1600),
        "stereographic": ("stereographic", 170.0, 1600, 1200),
        "orthographic": ("orthographic", 180.0, 1600, 1600)}
FISHEYE_CODES = {"pinhole": "TAN", "equidistant": "ARC", "equisolid": "ZEA",
                 "stereographic": "STG", "orthographic": "SIN"}  # the FITS standard's names
WIDE_VARIANTS = {
    "plain": {},
    "flip": {"parity_flip": True},
    "radial": {"distortion": RadialDistortion(k1=-2e-8, k2=1e-15, p1=2e-7)},
    "radial_flip": {"parity_flip": True, "distortion": RadialDistortion(k1=1.5e-8)},
}


def wide_camera(proj, variant):
    name, fov, w, h = WIDE[proj]
    return CameraModel.from_fov(fov, w, h, crpix=(6.5, -4.25), projection=name,
                                **WIDE_VARIANTS[variant])


def off_axis_deg(cam, x, y):
    v = cam.pixel_to_vectors(x, y)
    return np.degrees(np.arccos(np.clip(v[..., 2], -1.0, 1.0)))


@pytest.mark.parametrize("variant", sorted(WIDE_VARIANTS))
@pytest.mark.parametrize("proj", sorted(WIDE))
def test_every_projection_matches_astropy_within_0_05_arcsec(proj, variant):
    cam = wide_camera(proj, variant)
    w, h = cam.image_width, cam.image_height
    wcs = camera_to_wcs(cam, R0)
    suffix = "-SIP" if cam.distortion is not None else ""
    code = FISHEYE_CODES[proj]
    assert list(wcs.wcs.ctype) == [f"RA---{code}{suffix}", f"DEC--{code}{suffix}"]
    x, y = centred_grid(w, h, n=45)
    # and a ray of points from the axis out to (fisheyes) 89.9° off axis
    ray = np.radians(np.r_[np.linspace(0.0, 79.0, 8), np.linspace(80.0, 89.0, 10)])
    rx, ry = cam.vectors_to_pixel(np.stack([np.sin(ray) * 0.6, np.sin(ray) * 0.8,
                                            np.cos(ray)], axis=1))
    if proj != "pinhole":
        assert np.isfinite(rx).all()
        x, y = np.r_[x, rx], np.r_[y, ry]
    ra, dec = cam.pixel_to_world(x, y, R0)
    theta = off_axis_deg(cam, x, y)
    # the orthographic projection's angle per pixel grows as 1/cos(theta): at its limb
    # (90°) any pixel error is an unbounded angle, so it is held to 0.05" up to 89.5°
    ok = np.isfinite(ra) & ((theta <= 89.5) | (proj != "orthographic"))
    theta = theta[ok]
    if proj != "pinhole":
        assert np.count_nonzero((theta > 80) & (theta < 90)) >= 10
    if proj in ("equidistant", "equisolid", "stereographic"):
        assert theta.max() > 95  # beyond the hemisphere in the frame's corners
    col, row = x + w / 2 - 0.5, y + h / 2 - 0.5
    sky = wcs.all_pix2world(np.stack([col, row], axis=1), 0)
    assert np.max(arcsec_between(ra[ok], dec[ok], sky[ok, 0], sky[ok, 1])) < 0.05
    pix = wcs.all_world2pix(np.stack([ra[ok], dec[ok]], axis=1), 0, tolerance=1e-9,
                            maxiter=100, quiet=True)
    # the pixel astropy finds images (through the camera) the same sky point
    ra2, dec2 = cam.pixel_to_world(pix[:, 0] - w / 2 + 0.5, pix[:, 1] - h / 2 + 0.5, R0)
    assert np.max(arcsec_between(ra[ok], dec[ok], ra2, dec2)) < 0.05
    assert np.max(np.hypot(pix[:, 0] - col[ok], pix[:, 1] - row[ok])) < 1e-4


@pytest.mark.parametrize("proj", ["equisolid", "orthographic"])
def test_outside_the_image_circle_astropy_has_no_sky_either(proj):
    """Pixels beyond what the projection images (ZEA: 180°, SIN: 90°) are NaN in both."""
    cam = CameraModel(300.0, 1600, 1600, projection=proj)
    limit = 2.0 if proj == "equisolid" else 1.0  # plane radius of the image circle
    x = np.linspace(0.0, 799.0, 101)
    x = x[np.abs(x / 300.0 - limit) > 1e-3]
    ra, _ = cam.pixel_to_world(x, np.zeros_like(x), R0)
    sky = camera_to_wcs(cam, R0).all_pix2world(np.stack([x + 799.5, np.full_like(x, 799.5)],
                                                        axis=1), 0)
    np.testing.assert_array_equal(np.isnan(ra), x / 300.0 > limit)
    np.testing.assert_array_equal(np.isnan(sky[:, 0]), x / 300.0 > limit)


@pytest.mark.parametrize("variant", ["plain", "radial_flip"])
@pytest.mark.parametrize("proj", sorted(WIDE))
def test_every_projection_round_trips_through_a_header(proj, variant):
    cam = wide_camera(proj, variant)
    hdr = wcs_to_header(camera_to_wcs(cam, R0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cam2, R2 = wcs_to_camera(fits.Header.fromstring(hdr.tostring()))
    assert cam2.projection == cam.projection
    assert cam2.parity_flip == cam.parity_flip
    assert cam2.focal_length_px == pytest.approx(cam.focal_length_px, rel=1e-12)
    np.testing.assert_allclose(cam2.crpix, cam.crpix, atol=1e-9)
    np.testing.assert_allclose(R2, R0, atol=1e-12)
    if cam.distortion is None:
        assert cam2 == cam.replace(focal_length_px=cam2.focal_length_px, crpix=cam2.crpix)
    x, y = centred_grid(cam.image_width, cam.image_height, n=25)
    ra, dec = cam.pixel_to_world(x, y, R0)
    ra2, dec2 = cam2.pixel_to_world(x, y, R2)
    np.testing.assert_array_equal(np.isnan(ra), np.isnan(ra2))
    ok = np.isfinite(ra)
    assert np.max(arcsec_between(ra[ok], dec[ok], ra2[ok], dec2[ok])) < 0.01
    px, py = cam2.world_to_pixel(ra[ok], dec[ok], R2)
    assert np.max(np.hypot(px - x[ok], py - y[ok])) < 1e-4


def test_solve_result_of_a_fisheye_writes_and_converts_its_projection():
    from skysolve.solver.result import SolveResult

    cam = wide_camera("equidistant", "radial")
    res = SolveResult(ra_deg=123.4, dec_deg=-56.7, roll_deg=33.0, fov_deg=cam.fov_deg,
                      rotation_matrix_icrs_to_camera=R0, camera_model=cam, num_matches=20,
                      rmse_arcsec=1.0, p90e_arcsec=1.0, max_err_arcsec=2.0, probability=1e-9,
                      solve_time_ms=1.0, matched_centroids=np.arange(3),
                      matched_catalog_ids=np.arange(3))
    hdr = res.to_header()
    assert hdr["CTYPE1"] == "RA---ARC-SIP" and hdr["CTYPE2"] == "DEC--ARC-SIP"
    # a star 100° off the axis (behind the tangent plane) still has a pixel
    v = np.array([math.sin(math.radians(100.0)), 0.0, math.cos(math.radians(100.0))])
    ra, dec = (float(t) for t in vector_to_radec(v @ R0))
    x, y = res.world_to_pixel(ra, dec)
    assert math.hypot(x - 6.5, y + 4.25) > 700  # far out, near the edge of the frame
    ra2, dec2 = res.pixel_to_world(x, y)
    assert arcsec_between(ra, dec, ra2, dec2) < 1e-6
    sky = res.to_wcs().all_pix2world([[x + 799.5, y + 599.5]], 0)[0]
    assert arcsec_between(ra, dec, sky[0], sky[1]) < 0.05
    # one CD matrix for every projection (SolveResult's is in radians, as tetra3rs's)
    assert np.degrees(res.cd_matrix) == pytest.approx(res.to_wcs().wcs.cd, abs=1e-15)


@pytest.mark.parametrize("proj", ["pinhole", "equidistant", "equisolid", "stereographic"])
def test_fit_sip_wcs_in_every_projection_matches_astropy(proj):
    """A WCS fitted to pixel / sky pairs of a 90° lens with radial distortion, in the lens's
    own zenithal projection: astropy's sky of every pixel is the camera's to a few 0.01"."""
    from skysolve.io.wcs import fit_sip_wcs

    cam = CameraModel.from_fov(90.0, 1200, 900, crpix=(6.5, -4.25), projection=proj,
                               distortion=RadialDistortion(k1=-1e-8))
    w, h = cam.image_width, cam.image_height
    x, y = centred_grid(w, h, n=41)
    sky = cam.pixel_to_vectors(x, y) @ R0  # ICRS directions of the pixels
    fits_px = np.stack([x + 0.5 + w / 2, y + 0.5 + h / 2], axis=1)
    crpix = np.asarray(cam.crpix) + [0.5 + w / 2, 0.5 + h / 2]
    centre = cam.pixel_to_vectors(*cam.crpix) @ R0
    wcs = fit_sip_wcs(fits_px, sky, crpix, centre, 6, pixel_shape=(w, h), projection=proj)
    code = FISHEYE_CODES[proj]
    assert list(wcs.wcs.ctype) == [f"RA---{code}-SIP", f"DEC--{code}-SIP"]
    ra, dec = wcs.all_pix2world(fits_px[:, 0], fits_px[:, 1], 1)
    ra0, dec0 = vector_to_radec(sky)
    assert np.max(arcsec_between(ra, dec, ra0, dec0)) < 0.05
    # fitted in the wrong projection, the same order cannot follow a 90° fisheye
    if proj != "pinhole":
        tan = fit_sip_wcs(fits_px, sky, crpix, centre, 6, projection="pinhole")
        ra, dec = tan.all_pix2world(fits_px[:, 0], fits_px[:, 1], 1)
        assert np.max(arcsec_between(ra, dec, ra0, dec0)) > 1.0


@pytest.mark.parametrize("name", ["flip", "radial_flip", "poly_forward"])
@pytest.mark.parametrize("crpix", [(1.0, 1.0), (300.25, 1400.0), (2300.0, -150.0)])
def test_move_reference_pixel_keeps_every_pixel_within_0_01_arcsec(name, crpix):
    """solve-field's ``--crpix-x/-y``: the WCS about another reference pixel (CRVAL that
    pixel's sky position; the other tangent plane and any distortion in SIP) puts every
    pixel (each third one of the 2048x1536 frame, both ways) where the camera does."""
    from skysolve.io.wcs import move_reference_pixel

    cam = CAMERAS[name]
    original = camera_to_wcs(cam, R0)
    moved = move_reference_pixel(original, crpix, W, H)
    np.testing.assert_array_equal(moved.wcs.crpix, crpix)
    assert moved.wcs.ctype[0] == "RA---TAN-SIP"
    # CRVAL: where the WCS moved puts the pixel (off the image, a lens's distortion
    # polynomial is the WCS's extrapolation, not the camera's)
    ra0, dec0 = original.all_pix2world([crpix], 1)[0]
    assert arcsec_between(*moved.wcs.crval, ra0, dec0) < 1e-6
    if 0.5 <= crpix[0] <= W + 0.5 and 0.5 <= crpix[1] <= H + 0.5:
        ra0, dec0 = model_radec(cam, R0, crpix[0] - 0.5 - W / 2, crpix[1] - 0.5 - H / 2)
        assert arcsec_between(*moved.wcs.crval, ra0, dec0) < 0.001
    col, row = (a.ravel() for a in np.meshgrid(np.arange(0.0, W, 3), np.arange(0.0, H, 3)))
    ra, dec = moved.all_pix2world(col, row, 0)
    t_ra, t_dec = model_radec(cam, R0, col + 0.5 - W / 2, row + 0.5 - H / 2)
    assert np.max(arcsec_between(ra, dec, t_ra, t_dec)) < 0.01
    # the inverse as header readers evaluate it: the linear part, then AP/BP
    lin = moved.wcs_world2pix(np.column_stack([t_ra, t_dec])[::37], 1)
    u, v = lin[:, 0] - crpix[0], lin[:, 1] - crpix[1]
    ap, bp = moved.sip.ap, moved.sip.bp
    back = lin + np.column_stack([
        sum(ap[p, q] * u**p * v**q for p in range(ap.shape[0]) for q in range(ap.shape[1])),
        sum(bp[p, q] * u**p * v**q for p in range(bp.shape[0]) for q in range(bp.shape[1]))])
    np.testing.assert_allclose(back - 1.0, np.column_stack([col, row])[::37], atol=1e-3)
    # and as astropy inverts it (world_to_pixel iterates the forward SIP, reading no AP/BP)
    again_px = moved.all_world2pix(np.column_stack([t_ra, t_dec])[::37], 0, quiet=False)
    np.testing.assert_allclose(again_px, np.column_stack([col, row])[::37], atol=1e-3)
    # and through a header, as written to a .wcs file
    again = WCS(wcs_to_header(moved))
    np.testing.assert_allclose(again.all_pix2world(col[::97], row[::97], 0),
                               moved.all_pix2world(col[::97], row[::97], 0), atol=1e-9)


@pytest.mark.parametrize("fov, far", [(20.0, (-300.0, 1500.0)), (20.0, (1500.0, -300.0))])
def test_move_reference_pixel_refuses_what_astropy_cannot_invert(fov, far):
    """A 1024x768 pinhole frame 20 deg wide about pixel (-300, 1500), 1,400 px from its
    centre: SIP of order 6 held it forward within 0.001" and AP/BP inverted it to 1e-4 px,
    but its terms reached 2,187 px and astropy's ``world_to_pixel`` (which iterates them,
    reading no AP/BP) diverged, putting stars 25 px off with a warning. Refused now,
    naming the inverse, as is a pixel 300 px beyond another edge (written at order 7-8
    before); pixels about which astropy converges are still moved to."""
    from skysolve.io.wcs import move_reference_pixel

    cam = CameraModel.from_fov(fov, 1024, 768)
    wcs = camera_to_wcs(cam, R0)
    with pytest.raises(InvalidArgumentError, match="astropy's inverse of it does not converge"):
        move_reference_pixel(wcs, far, 1024, 768)
    col, row = (a.ravel() for a in np.meshgrid(np.linspace(1, 1024, 30), np.linspace(1, 768, 20)))
    sky = wcs.all_pix2world(np.column_stack([col, row]), 1)
    for crpix in ((1.0, 1.0), (-100.0, -100.0)):
        moved = move_reference_pixel(wcs, crpix, 1024, 768)
        np.testing.assert_allclose(moved.all_world2pix(sky, 1, quiet=False),
                                   np.column_stack([col, row]), atol=1e-3)


def test_move_reference_pixel_refuses_what_sip_cannot_hold():
    """A fisheye's projection about a point off its axis is no polynomial of the pixels
    within 0.01": refused (naming the pixel), never written off by arcminutes. The
    reference pixel a WCS already has gives the WCS itself; a non-finite one is refused."""
    from skysolve.io.wcs import move_reference_pixel

    cam = CameraModel.from_fov(120.0, 800, 600, projection="equidistant")
    wcs = camera_to_wcs(cam, R0)
    with pytest.raises(InvalidArgumentError, match=r"reference pixel \(1\.0, 1\.0\)"):
        move_reference_pixel(wcs, (1.0, 1.0), 800, 600)
    assert move_reference_pixel(wcs, (400.5, 300.5), 800, 600) is wcs
    with pytest.raises(InvalidArgumentError, match="crpix"):
        move_reference_pixel(wcs, (np.nan, 3.0), 800, 600)


def test_move_reference_pixel_far_beyond_any_fit_is_refused_as_such():
    """A reference pixel so far out that the fit's matrix is singular (1e300 px) is the
    same refusal as any other SIP cannot hold (it was numpy's bare 'Singular matrix')."""
    from skysolve.io.wcs import move_reference_pixel

    wcs = camera_to_wcs(CameraModel.from_fov(12.3, 1024, 768), R0)
    for crpix in ((1e300, 384.5), (512.5, -1e300)):
        with pytest.raises(InvalidArgumentError, match="reference pixel"):
            move_reference_pixel(wcs, crpix, 1024, 768)


@pytest.mark.parametrize("name", ["flip", "radial_flip"])
def test_a_wcs_file_states_its_image_size_as_imagew_imageh(name, tmp_path):
    """A ``.wcs`` file (solve-field's, ``skysolve-field``'s, ``skysolve solve --write-wcs``)
    is a header-only FITS file: ``NAXIS = 0``, the image size in ``IMAGEW``/``IMAGEH``.
    ``wcs_to_camera`` of skysolve's own output asked for the image size it states."""
    from skysolve.io.astrometry_files import write_wcs

    cam = CAMERAS[name]

    class Result:  # what write_wcs reads of a SolveResult
        def to_header(self):
            return wcs_to_header(camera_to_wcs(cam, R0))

    write_wcs(tmp_path / "frame.wcs", Result(), W, H)
    header = fits.getheader(tmp_path / "frame.wcs")
    assert header["NAXIS"] == 0 and (header["IMAGEW"], header["IMAGEH"]) == (W, H)
    cam2, R2 = wcs_to_camera(header)
    assert (cam2.image_width, cam2.image_height) == (W, H)
    np.testing.assert_allclose(cam2.crpix, CRPIX, atol=1e-9)
    x, y = centred_grid(n=17)
    ra, dec = model_radec(cam2, R2, x, y)
    ra0, dec0 = model_radec(cam, R0, x, y)
    assert np.max(arcsec_between(ra, dec, ra0, dec0)) < 1e-3
    # a size given wins; one that is not the file's image is refused by name
    assert wcs_to_camera(header, W - 48, H - 48)[0].image_width == W - 48
    with pytest.raises(InvalidArgumentError, match="image_width"):
        wcs_to_camera(header, W + 10, H)
