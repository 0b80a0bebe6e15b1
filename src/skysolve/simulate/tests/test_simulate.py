"""Tests of skysolve.simulate.starfield: rendered pixels and centroid lists against exact truth."""

from __future__ import annotations

import numpy as np
import pytest

from skysolve.camera.model import CameraModel
from skysolve.errors import InvalidArgumentError, InvalidTypeError
from skysolve.geometry import (
    as_rotation_matrix,
    north_east_basis,
    radec_roll_to_rotation,
    radec_to_vector,
    rotation_to_quaternion,
)
from skysolve.simulate import (
    GaussianPSF,
    magnitude_to_flux,
    random_attitudes,
    render_starfield,
    render_stars,
    simulate_centroids,
    tess_like_camera,
)
from skysolve.sky.catalogs import Catalog, load_gaia, load_hipparcos

ORION = radec_roll_to_rotation(83.8, -5.4, 30.0)


@pytest.fixture(scope="module")
def gaia() -> Catalog:
    return load_gaia()


@pytest.fixture(scope="module")
def hip() -> Catalog:
    return load_hipparcos()


def _moments(image: np.ndarray) -> tuple[float, float, float, float, float]:
    """Intensity-weighted centroid and second moments in centred pixel coordinates."""
    h, w = image.shape
    xs = np.arange(w) + 0.5 - w / 2
    ys = np.arange(h) + 0.5 - h / 2
    tot = image.sum()
    cx = (image.sum(axis=0) * xs).sum() / tot
    cy = (image.sum(axis=1) * ys).sum() / tot
    dx = xs[None, :] - cx
    dy = ys[:, None] - cy
    return (cx, cy, (image * dx * dx).sum() / tot, (image * dy * dy).sum() / tot,
            (image * dx * dy).sum() / tot)


# --------------------------------------------------------------------------------------
# bare renderer


def test_render_conserves_flux_round_and_elliptical():
    rng = np.random.default_rng(3)
    n = 400
    x = rng.uniform(-90, 90, n)
    y = rng.uniform(-60, 60, n)
    flux = 10 ** rng.uniform(1, 6, n)
    for psf in (1.3, GaussianPSF(1.0, edge_sigma_px=2.0, edge_ellipticity=0.4,
                                 elongation_angle_deg=20.0)):
        img = render_stars((160, 220), x, y, flux, psf)
        assert img.sum() == pytest.approx(flux.sum(), rel=1e-9)
        assert img.min() >= 0.0


def test_star_on_the_edge_deposits_exactly_the_on_image_part():
    # a round Gaussian centred on the left edge: exactly half of it is on the image
    img = render_stars((64, 64), [-32.0], [0.3], [1000.0], 1.5)
    assert img.sum() == pytest.approx(500.0, rel=1e-5)  # stamps truncate at ~5 sigma
    # centred 3 px outside the corner: the on-image part is the product of two tails
    from scipy.special import ndtr

    img = render_stars((64, 64), [35.0], [-35.0], [1e6], 1.5)
    assert img.sum() == pytest.approx(1e6 * ndtr(-3.0 / 1.5) ** 2, rel=1e-6)
    # far outside: nothing
    assert render_stars((64, 64), [200.0], [0.0], [1e6], 1.5).sum() == 0.0


@pytest.mark.parametrize("x0, y0", [(0.37, -0.21), (-5.5, 3.0), (2.999, -0.001)])
def test_subpixel_centroid_and_width_round(x0, y0):
    sigma = 1.1
    img = render_stars((48, 48), [x0], [y0], [1e4], sigma)
    cx, cy, vxx, vyy, vxy = _moments(img)
    assert abs(cx - x0) < 1e-4 and abs(cy - y0) < 1e-4
    # pixel integration adds the variance of a uniform pixel (Sheppard's 1/12)
    assert vxx == pytest.approx(sigma**2 + 1 / 12, abs=2e-3)
    assert vyy == pytest.approx(sigma**2 + 1 / 12, abs=2e-3)
    assert abs(vxy) < 1e-6


def test_elliptical_psf_has_requested_covariance_and_centroid():
    psf = GaussianPSF(1.2, edge_sigma_px=2.2, edge_ellipticity=0.5, elongation_angle_deg=0.0)
    shape = (200, 200)
    x0, y0 = 60.3, 45.8  # off-centre: elongated along the radius
    cov = psf.covariance([x0], [y0], shape)[0]
    # the major axis points along the radius vector
    evals, evecs = np.linalg.eigh(np.array([[cov[0], cov[2]], [cov[2], cov[1]]]))
    radial = np.array([x0, y0]) / np.hypot(x0, y0)
    assert abs(abs(evecs[:, 1] @ radial) - 1) < 1e-9
    assert evals[1] > evals[0] * 1.2
    img = render_stars(shape, [x0], [y0], [1e5], psf)
    cx, cy, vxx, vyy, vxy = _moments(img)
    assert abs(cx - x0) < 1e-3 and abs(cy - y0) < 1e-3
    assert vxx == pytest.approx(cov[0] + 1 / 12, abs=5e-3)
    assert vyy == pytest.approx(cov[1] + 1 / 12, abs=5e-3)
    assert vxy == pytest.approx(cov[2], abs=5e-3)


def test_sampled_and_exact_paths_agree_for_axis_aligned_psf():
    from skysolve.simulate.render import render_covariance, render_separable

    x = np.array([0.2, 10.7, -13.4])
    y = np.array([-0.4, 6.1, 9.9])
    flux = np.array([1e4, 5e3, 2e3])
    sx, sy = np.array([1.0, 1.5, 2.0]), np.array([1.3, 1.1, 2.5])
    exact = render_separable((40, 48), x, y, flux, sx, sy)
    sampled = render_covariance((40, 48), x, y, flux, np.stack([sx**2, sy**2, 0 * sx], 1),
                                subsample=5)
    assert np.abs(sampled - exact).max() < 2e-3 * exact.max()


def test_halo_keeps_flux_and_centroid_and_widens_the_psf():
    core, frac, wide = 1.2, 0.2, 6.0
    psf = GaussianPSF(core, halo_fraction=frac, halo_sigma_px=wide)
    img = render_stars((96, 96), [0.3], [-0.6], [1e5], psf)
    cx, cy, vxx, vyy, _ = _moments(img)
    assert img.sum() == pytest.approx(1e5, rel=1e-9)
    assert (cx, cy) == pytest.approx((0.3, -0.6), abs=1e-4)
    expect = (1 - frac) * core**2 + frac * wide**2 + 1 / 12
    assert vxx == pytest.approx(expect, rel=0.01) and vyy == pytest.approx(expect, rel=0.01)


def test_render_stars_rejects_bad_input():
    with pytest.raises(InvalidArgumentError, match="shape"):
        render_stars((0, 10), [0.0], [0.0], [1.0])
    with pytest.raises(InvalidArgumentError, match="x, y and flux"):
        render_stars((10, 10), [0.0, 1.0], [0.0], [1.0])
    with pytest.raises(InvalidTypeError, match="psf"):
        render_stars((10, 10), [0.0], [0.0], [1.0], psf="wide")
    with pytest.raises(InvalidArgumentError, match="edge_ellipticity"):
        GaussianPSF(1.0, edge_ellipticity=1.0)


# --------------------------------------------------------------------------------------
# star fields


def _quiet(**kw):
    """Noise-free, artefact-free detector settings (expected electrons = ADU)."""
    base = dict(noise=False, background_e=0.0, read_noise_e=0.0, full_well_e=None)
    base.update(kw)
    return base


def _catalog_at_pixels(camera, R, xy, mags, epoch=2016.0):
    """A catalog whose stars project exactly to the centred pixel positions ``xy``."""
    ra, dec = camera.pixel_to_world(xy[:, 0], xy[:, 1], R)
    return Catalog.from_arrays(np.arange(1, len(xy) + 1), ra, dec, mags, epoch=epoch)


def test_photometry_and_truth_positions_from_camera(hip):
    cam = CameraModel.from_fov(12.0, 640, 480)
    img, truth = render_starfield(hip, cam, ORION, exposure_s=2.0, zeropoint_mag=18.0,
                                  **_quiet())
    assert img.dtype == np.float32 and img.shape == (480, 640)
    assert np.all(np.diff(truth.flux) <= 0)  # brightest first
    assert np.allclose(truth.flux, 2.0 * 10 ** (-0.4 * (truth.mag - 18.0)))
    assert np.allclose(truth.flux, magnitude_to_flux(truth.mag, 18.0, 2.0))
    # positions are the catalog stars projected through the camera (proper motion off)
    rows = np.searchsorted(hip.ids, truth.catalog_id)
    assert np.array_equal(hip.ids[rows], truth.catalog_id)
    x, y = cam.world_to_pixel(hip.ra_deg[rows], hip.dec_deg[rows], ORION)
    assert np.allclose(truth.x, x, atol=1e-9) and np.allclose(truth.y, y, atol=1e-9)
    # every star whose light reaches the image is there, and only those
    assert np.all(np.abs(truth.x) < 320 + 40) and np.all(np.abs(truth.y) < 240 + 40)
    assert truth.on_image.sum() >= 20
    assert img.sum() == pytest.approx(
        render_stars((480, 640), truth.x, truth.y, truth.flux, 1.2).sum(), rel=1e-6)
    table = truth.to_table()
    assert len(table) == len(truth) and "catalog_id" in table.colnames


def test_truth_includes_stars_centred_just_off_the_image():
    cam = CameraModel.from_fov(5.0, 200, 100)
    xy = np.array([[0.3, 0.2], [103.0, 10.0], [-20.0, -52.5], [400.0, 0.0]])
    cat = _catalog_at_pixels(cam, ORION, xy, np.array([8.0, 6.0, 7.0, 5.0]))
    img, truth = render_starfield(cat, cam, ORION, psf=1.5, **_quiet())
    assert sorted(truth.catalog_id.tolist()) == [1, 2, 3]  # star 4 is 300 px away
    order = np.argsort(truth.catalog_id)
    assert np.allclose(truth.x[order], xy[:3, 0], atol=1e-6)
    assert np.allclose(truth.y[order], xy[:3, 1], atol=1e-6)
    assert truth.on_image[order].tolist() == [True, False, False]
    # star 2 lights the right edge columns although its centre is 3 px outside
    assert img[:, -1].sum() > 0.001 * magnitude_to_flux(6.0)


def test_proper_motion_epoch(hip):
    cam = CameraModel.from_fov(2.0, 400, 400)
    R = radec_roll_to_rotation(120.0, 30.0, 0.0)
    ra, dec = cam.pixel_to_world(0.0, 0.0, R)
    # 3600 mas/yr north over 10 years: 36 arcsec along +y (roll 0 puts camera +Y north)
    cat = Catalog.from_arrays([7], [ra], [dec], [6.0], pmra=[0.0], pmdec=[3600.0],
                              epoch=2000.0)
    _, t0 = render_starfield(cat, cam, R, **_quiet())
    _, t1 = render_starfield(cat, cam, R, epoch_year=2010.0, **_quiet())
    scale_arcsec = np.degrees(cam.pixel_scale()) * 3600
    assert t1.epoch_year == 2010.0
    assert t1.y[0] - t0.y[0] == pytest.approx(36.0 / scale_arcsec, rel=1e-3)
    assert t1.x[0] == pytest.approx(t0.x[0], abs=1e-6)


def test_saturation_bleeds_along_columns_and_conserves_charge():
    cam = CameraModel.from_fov(5.0, 120, 300)
    cat = _catalog_at_pixels(cam, ORION, np.array([[0.4, 10.2], [-40.0, -100.0]]),
                             np.array([2.0, 12.0]))
    kw = _quiet(psf=1.3, zeropoint_mag=20.0)
    clean, _ = render_starfield(cat, cam, ORION, **kw)
    bled, truth = render_starfield(cat, cam, ORION, **{**kw, "full_well_e": 50_000.0})
    clean, bled = clean.astype(np.float64), bled.astype(np.float64)
    flux = magnitude_to_flux(2.0)
    assert clean.sum() == pytest.approx(flux + magnitude_to_flux(12.0), rel=1e-6)
    assert bled.sum() == pytest.approx(clean.sum(), rel=1e-6)  # charge conserved
    assert bled.max() <= 50_000.0 * (1 + 1e-6)
    # charge moved only within columns
    assert np.allclose(bled.sum(axis=0), clean.sum(axis=0), rtol=1e-5, atol=1e-2)
    full = bled >= 50_000.0 * (1 - 1e-6)
    rows, cols = np.nonzero(full)
    assert np.ptp(rows) > 10 * max(np.ptp(cols), 1)  # a vertical trail
    # spilled evenly up and down from the star (row 160)
    assert rows.min() < 160 - 20 and rows.max() > 160 + 20
    assert truth.saturated.tolist() == [True, False]


def test_bleed_off_both_column_ends_loses_only_what_cannot_fit():
    from skysolve.simulate.detector import bleed as _bleed

    col = np.zeros((5, 2))
    col[2, 0] = 100.0
    _bleed(col, 10.0)
    assert np.allclose(col[:, 0], 10.0) and np.all(col[:, 1] == 0)
    col = np.zeros((9, 1))
    col[1, 0] = 45.0  # close to the top: the up side fills, the rest goes down
    _bleed(col, 10.0)
    assert col.sum() == pytest.approx(45.0)
    assert np.allclose(col[:4, 0], 10.0) and col[4, 0] == pytest.approx(5.0)


def test_bleed_random_columns_conserve_charge_and_cap_at_full_well():
    from skysolve.simulate.detector import bleed as _bleed

    rng = np.random.default_rng(8)
    img = rng.uniform(0, 5, (60, 300))
    # several saturated runs per column, some close enough for their spills to merge
    for _ in range(400):
        img[rng.integers(0, 60), rng.integers(0, 300)] += rng.uniform(10, 60)
    img[30, 5] += 2000.0  # more than the whole column can hold
    before = img.copy()
    _bleed(img, 20.0)
    assert img.max() <= 20.0 + 1e-9
    fits = before.sum(axis=0) <= 20.0 * 60
    assert fits.sum() == 299
    assert np.allclose(img.sum(axis=0)[fits], before.sum(axis=0)[fits])
    assert np.allclose(img[:, ~fits], 20.0)  # columns with too much charge fill up
    untouched = (before <= 20.0).all(axis=0)
    assert np.array_equal(img[:, untouched], before[:, untouched])


def test_mirror_flips_image_and_truth(hip):
    cam = CameraModel.from_fov(10.0, 300, 200)
    kw = dict(seed=11, hot_pixel_fraction=1e-3, cosmic_rays=3, faint_star_depth_mag=1.0)
    img, truth = render_starfield(hip, cam, ORION, **kw)
    img_m, truth_m = render_starfield(hip, cam, ORION, mirror=True, **kw)
    assert np.array_equal(img_m, img[:, ::-1])
    assert np.array_equal(truth_m.x, -truth.x) and np.array_equal(truth_m.y, truth.y)
    assert np.array_equal(truth_m.catalog_id, truth.catalog_id) and truth_m.mirror
    assert np.array_equal(truth_m.hot_pixels[:, 0], -truth.hot_pixels[:, 0])
    # a mirrored image is what a camera with parity_flip=True sees
    _, truth_p = render_starfield(hip, CameraModel.from_fov(10.0, 300, 200, parity_flip=True),
                                  ORION, **_quiet())
    _, truth_q = render_starfield(hip, cam, ORION, mirror=True, **_quiet())
    assert np.allclose(truth_p.x, truth_q.x) and np.allclose(truth_p.y, truth_q.y)


@pytest.mark.parametrize("mirror", [False, True])
def test_truth_psf_covariance_matches_rendered_star(mirror):
    cam = CameraModel.from_fov(5.0, 300, 200)
    psf = GaussianPSF(1.0, edge_sigma_px=2.5, edge_ellipticity=0.5, elongation_angle_deg=-10.0)
    cat = _catalog_at_pixels(cam, ORION, np.array([[-100.3, 61.7]]), np.array([6.0]))
    img, truth = render_starfield(cat, cam, ORION, psf=psf, mirror=mirror, **_quiet())
    cx, cy, vxx, vyy, vxy = _moments(img.astype(np.float64))
    assert cx == pytest.approx(100.3 if mirror else -100.3, abs=1e-3)
    assert (cx, cy) == pytest.approx((truth.x[0], truth.y[0]), abs=1e-3)
    cov = truth.psf_cov[0]
    assert abs(cov[2]) > 0.3
    assert (vxx, vyy, vxy) == pytest.approx((cov[0] + 1 / 12, cov[1] + 1 / 12, cov[2]), abs=5e-3)


def test_seed_determinism(hip):
    cam = CameraModel.from_fov(10.0, 256, 256)
    kw = dict(seed=5, hot_pixel_fraction=1e-3, cosmic_rays=4, faint_star_depth_mag=2.0,
              background_gradient_e=(0.1, -0.05))
    a, ta = render_starfield(hip, cam, ORION, **kw)
    b, tb = render_starfield(hip, cam, ORION, **kw)
    assert np.array_equal(a, b)
    assert np.array_equal(ta.x, tb.x) and np.array_equal(ta.mag, tb.mag)
    c, tc = render_starfield(hip, cam, ORION, **{**kw, "seed": 6})
    assert not np.array_equal(a, c)
    g = np.random.default_rng(5)
    d, _ = render_starfield(hip, cam, ORION, **{**kw, "seed": g})
    assert np.array_equal(a, d)  # a Generator seeded alike gives the same frame


def test_noise_background_bias_and_gain():
    cam = CameraModel.from_fov(1.0, 256, 256)
    empty = Catalog.from_arrays([1], [0.0], [-89.0], [10.0])  # nowhere near the field
    img, truth = render_starfield(empty, cam, ORION, background_e=400.0, read_noise_e=8.0,
                                  gain_e_per_adu=2.0, bias_adu=1000.0, seed=2)
    assert len(truth) == 0
    assert img.mean() == pytest.approx(1000.0 + 200.0, abs=0.5)
    # Poisson (400 e-) and read noise (8 e-) in quadrature, over gain 2
    assert img.std() == pytest.approx(np.sqrt(400.0 + 64.0) / 2.0, rel=0.02)
    grad, _ = render_starfield(empty, cam, ORION, background_gradient_e=(0.5, 0.0),
                               **_quiet(background_e=100.0))
    assert grad.mean() == pytest.approx(100.0, rel=1e-6)
    assert np.allclose(np.diff(grad, axis=1), 0.5) and np.allclose(np.diff(grad, axis=0), 0.0)


def test_vignetting_flat_field_and_adc():
    cam = CameraModel.from_fov(3.0, 200, 100)
    corner = np.array([[-99.5, -49.5]])  # the centre of the corner pixel, t² ≈ 1
    xy = np.concatenate([[[0.5, 0.5]], corner])
    cat = _catalog_at_pixels(cam, ORION, xy, np.array([9.0, 9.0]))
    img, truth = render_starfield(cat, cam, ORION, vignetting=0.3,
                                  **_quiet(background_e=100.0))
    t2 = (99.5**2 + 49.5**2) / (100**2 + 50**2)
    centre, edge = np.argsort(np.hypot(truth.x, truth.y))
    t2_centre = 0.5 / (100**2 + 50**2)
    assert truth.flux[edge] / truth.flux[centre] == pytest.approx((1 - 0.3 * t2) /
                                                                  (1 - 0.3 * t2_centre))
    assert img[0, 0] > 0 and img[0, -1] == pytest.approx(100.0 * (1 - 0.3 * t2), rel=1e-5)
    assert img[50, 150] < 100.0  # sky vignetted too
    flat, _ = render_starfield(cat, cam, ORION, flat_field_rms=0.02, seed=1,
                               **_quiet(background_e=1000.0))
    sky = flat[:, 150:]
    assert sky.std() / sky.mean() == pytest.approx(0.02, rel=0.1)
    adc, _ = render_starfield(cat, cam, ORION, adc_bits=12, bias_adu=100.0, gain_e_per_adu=4.0,
                              seed=1, full_well_e=1e6, zeropoint_mag=26.0)
    assert np.array_equal(adc, np.round(adc)) and adc.min() >= 0 and adc.max() == 4095


def test_hot_pixels_cosmic_rays_and_faint_stars(gaia):
    cam = CameraModel.from_fov(8.0, 400, 400)
    img, truth = render_starfield(gaia, cam, ORION, hot_pixel_fraction=5e-4, cosmic_rays=6,
                                  faint_star_depth_mag=2.0, seed=9,
                                  **_quiet(background_e=10.0))
    assert truth.hot_pixels.shape == (80, 2) and truth.cosmic_rays.shape == (6, 4)
    cols = (truth.hot_pixels[:, 0] + 200 - 0.5).astype(int)
    rows = (truth.hot_pixels[:, 1] + 200 - 0.5).astype(int)
    assert np.all(img[rows, cols] > 10.0 + 40.0)
    extra = ~truth.in_catalog
    assert extra.sum() > truth.in_catalog.sum()  # faint stars outnumber catalog stars
    assert np.all(truth.catalog_id[extra] == -1)
    limit = np.percentile(gaia.mag, 99.5)
    assert np.all((truth.mag[extra] >= limit) & (truth.mag[extra] <= limit + 2.0))


def test_render_starfield_rejects_bad_arguments(hip):
    cam = CameraModel.from_fov(10.0, 64, 64)
    with pytest.raises(InvalidArgumentError, match="camera and attitude"):
        render_starfield(hip, cam)
    with pytest.raises(InvalidArgumentError, match="attitude"):
        render_starfield(hip, cam, np.eye(3) * 2)
    with pytest.raises(InvalidTypeError, match="catalog"):
        render_starfield([1, 2, 3], cam, ORION)
    with pytest.raises(InvalidArgumentError, match="read_noise_e"):
        render_starfield(hip, cam, ORION, read_noise_e=-1.0)
    with pytest.raises(InvalidArgumentError, match="background_e"):
        render_starfield(hip, cam, ORION, background_e=np.zeros((3, 3)))
    with pytest.raises(InvalidArgumentError, match="shape"):
        render_starfield(hip, cam, ORION, shape=(32, 32))
    with pytest.raises(InvalidTypeError, match="seed"):
        render_starfield(hip, cam, ORION, seed="x")


# --------------------------------------------------------------------------------------
# WCS path


def _tan_wcs(camera: CameraModel, R: np.ndarray, offset=(0.0, 0.0)):
    """A TAN WCS built by hand from the camera axes (independent of skysolve.io.wcs)."""
    from astropy.wcs import WCS

    bore = R[2]
    north, east = north_east_basis(bore)
    M = np.array([[R[0] @ east, R[0] @ north], [R[1] @ east, R[1] @ north]])
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    ra, dec = camera.pixel_to_world(0.0, 0.0, R)  # the optical centre (crpix = 0)
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [camera.image_width / 2 + 0.5 + offset[0],
                   camera.image_height / 2 + 0.5 + offset[1]]
    w.wcs.cd = np.degrees(1.0) / camera.focal_length_px * M.T
    return w


def test_wcs_and_camera_paths_agree(hip):
    cam = CameraModel.from_fov(15.0, 500, 400)
    _, t_cam = render_starfield(hip, cam, ORION, **_quiet())
    img_cam, _ = render_starfield(hip, cam, ORION, **_quiet())
    for offset in [(0.0, 0.0), (44.0, 7.0)]:
        w = _tan_wcs(cam, ORION, offset)
        img_w, t_w = render_starfield(hip, wcs=w, shape=(400, 500), pixel_offset=offset,
                                      **_quiet())
        assert np.array_equal(t_w.catalog_id, t_cam.catalog_id)
        assert np.allclose(t_w.x, t_cam.x, atol=1e-6) and np.allclose(t_w.y, t_cam.y, atol=1e-6)
        assert np.allclose(img_w, img_cam, rtol=1e-4, atol=1e-3)


def test_wcs_path_with_sip_matches_distorted_camera(hip):
    wcs_mod = pytest.importorskip("skysolve.io.wcs")
    from skysolve.camera.distortion import RadialDistortion

    cam = CameraModel.from_fov(15.0, 500, 400, crpix=(6.0, -4.0),
                               distortion=RadialDistortion(k1=-2e-7))
    R = as_rotation_matrix(rotation_to_quaternion(ORION))  # quaternion round trip
    _, t_cam = render_starfield(hip, cam, rotation_to_quaternion(ORION), **_quiet())
    w = wcs_mod.camera_to_wcs(cam, R, pixel_offset=(44.0, 0.0))
    assert w.sip is not None
    _, t_w = render_starfield(hip, wcs=w, shape=(400, 500), pixel_offset=(44.0, 0.0), **_quiet())
    assert np.array_equal(np.sort(t_w.catalog_id[t_w.on_image]),
                          np.sort(t_cam.catalog_id[t_cam.on_image]))
    ids, i_cam, i_w = np.intersect1d(t_cam.catalog_id, t_w.catalog_id, return_indices=True)
    assert ids.size >= 20
    assert np.abs(t_w.x[i_w] - t_cam.x[i_cam]).max() < 1e-4
    assert np.abs(t_w.y[i_w] - t_cam.y[i_cam]).max() < 1e-4


def test_tess_sip_wcs_subframe_round_trips_to_the_catalog(gaia):
    tesswcs = pytest.importorskip("tesswcs")
    w = tesswcs.WCS.from_sector(1, 1, 1)
    offset = (44 + 700, 800)  # a 512x384 cut of the science pixels
    _, truth = render_starfield(gaia, wcs=w, shape=(384, 512), pixel_offset=offset,
                                epoch_year=2018.6, **_quiet())
    assert truth.on_image.sum() > 20
    # centred px -> 0-based WCS pixel of the full frame -> sky == the propagated catalog
    col = truth.x + 512 / 2 - 0.5 + offset[0]
    row = truth.y + 384 / 2 - 0.5 + offset[1]
    ra, dec = w.all_pix2world(col, row, 0)
    by_id = np.argsort(gaia.ids)
    rows = by_id[np.searchsorted(gaia.ids, truth.catalog_id, sorter=by_id)]
    assert np.array_equal(gaia.ids[rows], truth.catalog_id)
    cat = gaia.select(rows).propagate(2018.6)
    sep = np.degrees(np.arccos(np.clip(np.sum(radec_to_vector(ra, dec)
                                              * radec_to_vector(cat.ra_deg, cat.dec_deg), 1),
                                       -1, 1))) * 3600
    assert np.all(sep < 0.01)  # arcsec (21"/px)


def test_wcs_shape_defaults_to_naxis(hip):
    cam = CameraModel.from_fov(10.0, 120, 80)
    w = _tan_wcs(cam, ORION)
    with pytest.raises(InvalidArgumentError, match="shape"):
        render_starfield(hip, wcs=w)
    w.pixel_shape = (120, 80)
    img, _ = render_starfield(hip, wcs=w, **_quiet())
    assert img.shape == (80, 120)
    # a sub-frame from an offset runs to the end of the WCS frame by default
    img, _ = render_starfield(hip, wcs=w, pixel_offset=(20, 10), **_quiet())
    assert img.shape == (70, 100)
    with pytest.raises(InvalidArgumentError, match="not both"):
        render_starfield(hip, cam, ORION, wcs=w)


# --------------------------------------------------------------------------------------
# centroid lists


def _brute_force(catalog, camera, R):
    """All catalog stars projected onto the image, brightest first (no cone search)."""
    v = radec_to_vector(catalog.ra_deg, catalog.dec_deg) @ R.T
    front = v[:, 2] > 0
    x = np.full(len(catalog), np.nan)
    y = np.full(len(catalog), np.nan)
    x[front] = camera.focal_length_px * v[front, 0] / v[front, 2]
    y[front] = camera.focal_length_px * v[front, 1] / v[front, 2]
    w, h = camera.image_width, camera.image_height
    inside = (x >= -w / 2) & (x < w / 2) & (y >= -h / 2) & (y < h / 2)
    idx = np.flatnonzero(inside)
    idx = idx[np.argsort(catalog.mag[idx], kind="stable")]
    return idx, x[idx], y[idx]


@pytest.mark.parametrize("fov", [2.0, 20.0])
def test_simulate_centroids_matches_full_projection(gaia, fov):
    cam = CameraModel.from_fov(fov, 1024, 768)
    for R in random_attitudes(6, 21):
        sim = simulate_centroids(gaia, cam, R, num_stars=25)
        idx, x, y = _brute_force(gaia, cam, R)
        n = min(25, idx.size)
        assert len(sim) == n
        # the same stars (ties in magnitude may swap order), at the projected positions
        assert set(sim.catalog_ids.tolist()) == set(gaia.ids[idx[:n]].tolist())
        by_id = {int(i): (a, b) for i, a, b in zip(gaia.ids[idx], x, y, strict=True)}
        xy = np.array([by_id[int(i)] for i in sim.catalog_ids])
        assert np.allclose(sim.centroids[:, :2], xy, atol=1e-6)
        assert np.all(np.diff(sim.centroids[:, 2]) <= 0)


def test_simulate_centroids_unpacks_and_matches_geometry(hip):
    cam = CameraModel.from_fov(12.0, 800, 600)
    centroids, ids = simulate_centroids(hip, cam, ORION)
    # every row reprojects through the geometry helpers with the camera's focal length
    rows = np.searchsorted(hip.ids, ids)
    v = radec_to_vector(hip.ra_deg[rows], hip.dec_deg[rows]) @ ORION.T
    f = cam.focal_length_px
    assert np.allclose(centroids[:, 0], f * v[:, 0] / v[:, 2], atol=1e-8)
    assert np.allclose(centroids[:, 1], f * v[:, 1] / v[:, 2], atol=1e-8)
    assert np.allclose(centroids[:, 2], magnitude_to_flux(hip.mag[rows]))
    assert np.all(np.abs(centroids[:, 0]) <= 400) and np.all(np.abs(centroids[:, 1]) <= 300)


def test_simulate_centroids_perturbations(gaia):
    cam = CameraModel.from_fov(10.0, 1000, 1000)
    R = radec_roll_to_rotation(280.0, -20.0, 45.0)
    clean = simulate_centroids(gaia, cam, R)
    noisy = simulate_centroids(gaia, cam, R, centroid_noise_px=0.3, drop_fraction=0.25,
                               num_false_stars=40, seed=4)
    real = noisy.catalog_ids >= 0
    assert np.count_nonzero(~real) == 40
    assert np.all(np.isnan(noisy.true_xy[~real]))
    kept = real.sum() / len(clean)
    assert 0.7 < kept < 0.8
    err = noisy.centroids[real, :2] - noisy.true_xy[real]
    assert np.std(err) == pytest.approx(0.3, rel=0.1)
    assert np.all(np.diff(noisy.centroids[:, 2]) <= 0)
    mirrored = simulate_centroids(gaia, cam, R, centroid_noise_px=0.3, drop_fraction=0.25,
                                  num_false_stars=40, seed=4, mirror=True)
    assert np.array_equal(mirrored.centroids[:, 0], -noisy.centroids[:, 0])
    assert np.array_equal(mirrored.catalog_ids, noisy.catalog_ids)
    top = simulate_centroids(gaia, cam, R, num_stars=10, num_false_stars=40, seed=4)
    assert len(top) == 10
    again = simulate_centroids(gaia, cam, R, num_stars=10, num_false_stars=40, seed=4)
    assert np.array_equal(top.centroids, again.centroids)


def test_simulate_centroids_quaternion_epoch_and_errors(gaia):
    cam = CameraModel.from_fov(10.0, 640, 480)
    q = rotation_to_quaternion(ORION)
    a = simulate_centroids(gaia, cam, q, num_stars=15)
    b = simulate_centroids(gaia, cam, ORION, num_stars=15)
    assert np.allclose(a.centroids, b.centroids)
    later = simulate_centroids(gaia, cam, ORION, num_stars=15, epoch_year=2030.0)
    assert not np.array_equal(later.centroids[:, :2], b.centroids[:, :2])
    assert np.abs(later.centroids[:, :2] - b.centroids[:, :2]).max() < 1.0
    faint_cut = simulate_centroids(gaia, cam, ORION, max_magnitude=6.5)
    assert 0 < len(faint_cut) < len(simulate_centroids(gaia, cam, ORION, max_magnitude=8.0))
    assert np.all(faint_cut.magnitudes <= 6.5)
    with pytest.raises(InvalidArgumentError, match="drop_fraction"):
        simulate_centroids(gaia, cam, ORION, drop_fraction=1.5)
    with pytest.raises(InvalidTypeError, match="max_magnitude"):
        simulate_centroids(gaia, cam, ORION, max_magnitude="bright")
    with pytest.raises(InvalidArgumentError, match="num_stars"):
        simulate_centroids(gaia, cam, ORION, num_stars=-1)


def test_random_attitudes_are_uniform_rotations():
    Rs = random_attitudes(4000, 1)
    assert Rs.shape == (4000, 3, 3)
    assert np.allclose(Rs @ Rs.transpose(0, 2, 1), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(Rs), 1.0)
    # boresights uniform on the sphere: mean ~0, z uniform in [-1, 1]
    bore = Rs[:, 2]
    assert np.linalg.norm(bore.mean(axis=0)) < 0.05
    assert np.mean(np.abs(bore[:, 2]) < 0.5) == pytest.approx(0.5, abs=0.03)
    assert np.array_equal(random_attitudes(5, 7), random_attitudes(5, 7))
    with pytest.raises(InvalidArgumentError):
        random_attitudes(-1)


# --------------------------------------------------------------------------------------
# round trip through the extractor (issue 6 "must show")


def _isolated(truth, shape, min_flux, max_flux, radius=10.0, edge=20.0):
    h, w = shape
    xy = np.stack([truth.x, truth.y], 1)
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    np.fill_diagonal(d, np.inf)
    # no neighbour within radius brighter than 0.1 % of the star
    crowded = ((d < radius) & (truth.flux[None, :] > 1e-3 * truth.flux[:, None])).any(axis=1)
    ok = ((truth.flux >= min_flux) & (truth.flux <= max_flux) & ~crowded & ~truth.saturated
          & (np.abs(truth.x) < w / 2 - edge) & (np.abs(truth.y) < h / 2 - edge))
    return np.flatnonzero(ok)


@pytest.mark.parametrize("noise", [False, True])
def test_extraction_recovers_isolated_truth_stars(gaia, noise):
    extraction = pytest.importorskip("skysolve.extraction.extract")
    cam = CameraModel.from_fov(12.0, 1024, 1024)
    R = radec_roll_to_rotation(83.8, -5.4, 30.0)
    img, truth = render_starfield(gaia, cam, R, psf=1.3, background_e=200.0, read_noise_e=5.0,
                                  noise=noise, zeropoint_mag=21.0, seed=3)
    if not noise:
        # the extractor needs some background noise to set its threshold: 1 e- rms, with a
        # threshold high enough (50 sigma) that faint neighbours do not merge into the blobs
        img = img + np.random.default_rng(0).normal(0.0, 1.0, img.shape).astype(np.float32)
    res = extraction.extract_centroids(img, sigma_threshold=5.0 if noise else 50.0)
    found = np.array([[c.x, c.y] for c in res.centroids])
    sel = _isolated(truth, img.shape, 3e4, 5e5)
    assert sel.size >= 100
    d = np.hypot(found[None, :, 0] - truth.x[sel, None], found[None, :, 1] - truth.y[sel, None])
    nearest = d.min(axis=1)
    assert np.mean(nearest < 0.5) > 0.95  # recovered
    err = nearest[nearest < 0.5]
    if noise:
        # photon + read noise: ~0.01 px rms for these 3e4..5e5 e- stars
        assert np.sqrt(np.mean(err**2)) <= 0.02
    else:
        assert err.max() <= 0.02


def test_tess_like_distortion_runs_sky_to_pixel_as_the_archival_one():
    """``TESS_LIKE_A``/``B`` are forward (ideal -> distorted) coefficients, as
    ``tess_like_camera`` uses them: their curvature is that of the archival sector-1 SIP's
    sky-to-pixel AP/BP, not that of its pixel-to-sky A/B (the opposite sign)."""
    tesswcs = pytest.importorskip("tesswcs")
    from skysolve.camera.distortion import polynomial_terms
    from skysolve.simulate import TESS_LIKE_A, TESS_LIKE_B

    sip = tesswcs.WCS.from_sector(1, 1, 1).sip
    terms = polynomial_terms(4)
    curved = [k for k, (p, q) in enumerate(terms) if p + q >= 2]
    ours = np.array([TESS_LIKE_A, TESS_LIKE_B])[:, curved]

    def scaled(a, b):  # SIP's a[p, q] multiplies x^p y^q in pixels
        return np.array([[m[terms[k][0], terms[k][1]] * 1024.0 ** sum(terms[k]) for k in curved]
                         for m in (a, b)])

    np.testing.assert_allclose(ours, scaled(sip.ap, sip.bp), atol=0.7)
    assert np.abs(ours - scaled(sip.a, sip.b)).max() > 20.0
    # and the camera distorts with them: a corner's ideal offset moves by their sum
    cam = tess_like_camera()
    x, y = 1000.0, -900.0
    xd, yd = cam.distortion.distort(x, y)
    poly = [(x / 1024.0) ** p * (y / 1024.0) ** q for p, q in terms]
    assert xd - x == pytest.approx(np.dot(TESS_LIKE_A, poly), abs=1e-9)
    assert yd - y == pytest.approx(np.dot(TESS_LIKE_B, poly), abs=1e-9)
