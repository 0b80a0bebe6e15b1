"""Every quantity a solve reports, against an answer the solver did not compute.

The expected values come from the simulation's truth (the attitude and the
noise-free star positions the centroids were drawn from), from astropy (position
angles, offsets, its own WCS), and from textbook formulas written here (the
gnomonic projection), never from the function under test. Each check runs on a
plain and on a mirrored (left-right flipped) frame of the same sky.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from skysolve.camera.model import CameraModel
from skysolve.geometry import radec_roll_to_rotation, rotation_to_radec_roll, vector_to_radec
from skysolve.simulate import simulate_centroids

W, H = 1024, 768
FOV = 14.0
TRUE_RA, TRUE_DEC, TRUE_ROLL = 83.8, -5.4, 30.0  # Orion; the roll the simulation is given
ARCSEC = 180 * 3600 / math.pi
# 14 deg over 1024 px is 49"/px; 0.1 px centroid noise on ~60 stars fits the attitude to
# well under 1" and the roll to ~0.005 deg (measured: 0.3" and 0.002 deg), so these bounds
# leave a margin of about 3 without admitting any convention error (those are >= 1 px).
BORESIGHT_TOL_ARCSEC = 3.0
ROLL_TOL_DEG = 0.02
PIXEL_TOL_PX = 0.1


@pytest.fixture(scope="module")
def truth():
    return radec_roll_to_rotation(TRUE_RA, TRUE_DEC, TRUE_ROLL)


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "mirrored"])
def solved(request, small_db, hip_catalog, truth):
    mirror = request.param
    cam = CameraModel.from_fov(FOV, W, H)
    sim = simulate_centroids(hip_catalog, cam, truth, epoch_year=2025.0, mirror=mirror, seed=3,
                             centroid_noise_px=0.1, max_magnitude=8.0, num_stars=60)
    res = small_db.solve_from_centroids(sim.centroids, fov_estimate_deg=15.0, image_width=W,
                                        image_height=H)
    assert res, res
    return res, sim, mirror


def _sky(v) -> SkyCoord:
    ra, dec = vector_to_radec(np.asarray(v, dtype=float))
    return SkyCoord(ra, dec, unit="deg", frame="icrs")


def _position_angle_deg(axis_icrs, bore_icrs) -> float:
    """Position angle (astropy: from North through East) of a small step along ``axis``."""
    bore = _sky(bore_icrs)
    step = _sky(np.asarray(bore_icrs) + 1e-5 * np.asarray(axis_icrs))
    return float(bore.position_angle(step).to_value(u.deg))


def _angle_diff_deg(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def _standard_coordinates(ra_deg, dec_deg, ra0_deg, dec0_deg):
    """Gnomonic (TAN) standard coordinates xi (east), eta (north), radians (textbook form)."""
    a, d = np.radians(ra_deg), np.radians(dec_deg)
    a0, d0 = math.radians(ra0_deg), math.radians(dec0_deg)
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.cos(d) * np.sin(a - a0) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc
    return xi, eta


def _true_star_radec(sim, small_db):
    ids = sim.catalog_ids
    stars = [small_db.get_star_by_id(int(i)) for i in ids]
    return np.array([s.ra_deg for s in stars]), np.array([s.dec_deg for s in stars])


def test_the_truth_is_what_astropy_says(truth):
    """The simulation's attitude puts camera +Y at position angle 30 deg, per astropy."""
    assert _position_angle_deg(truth[1], truth[2]) == pytest.approx(TRUE_ROLL, abs=1e-3)
    ra, dec = vector_to_radec(truth[2])
    assert (float(ra), float(dec)) == pytest.approx((TRUE_RA, TRUE_DEC), abs=1e-9)


def test_boresight_fov_parity(solved, truth):
    res, _, mirror = solved
    sep = _sky(truth[2]).separation(SkyCoord(res.ra_deg, res.dec_deg, unit="deg"))
    assert sep.to_value(u.arcsec) < BORESIGHT_TOL_ARCSEC
    assert res.fov_deg == pytest.approx(FOV, abs=0.005)
    assert res.parity_flip is mirror


def test_roll_is_the_true_roll(solved, truth):
    """Roll is the position angle of camera +Y: the simulation's 30 deg, whatever the parity
    (image +y is camera +Y in both; a mirror flips x only)."""
    res, _, _ = solved
    assert _angle_diff_deg(res.roll_deg, TRUE_ROLL) < ROLL_TOL_DEG
    # ... and the position angle astropy measures for image +y through the solve's own WCS
    wcs = res.to_wcs()
    c = wcs.pixel_to_world(W / 2 - 0.5, H / 2 - 0.5)
    down = wcs.pixel_to_world(W / 2 - 0.5, H / 2 - 0.5 + 20.0)  # +y is down the image rows
    assert _angle_diff_deg(c.position_angle(down).to_value(u.deg), res.roll_deg) < ROLL_TOL_DEG


def test_theta_is_the_angle_of_camera_x(solved, truth):
    """theta_deg: angle from East to camera +X, counter-clockwise (towards North), whatever
    the parity, as tetra3rs. On a mirrored frame image +x is camera -X: theta + 180 deg."""
    res, _, mirror = solved
    pa_x = _position_angle_deg(truth[0], truth[2])  # position angle of the true camera +X
    assert _angle_diff_deg(res.theta_deg, 90.0 - pa_x) < ROLL_TOL_DEG
    assert -180.0 < res.theta_deg <= 180.0
    # image +x, measured by astropy through the WCS header
    wcs = res.to_wcs()
    c = wcs.pixel_to_world(W / 2 - 0.5, H / 2 - 0.5)
    right = wcs.pixel_to_world(W / 2 - 0.5 + 20.0, H / 2 - 0.5)
    image_x = 90.0 - c.position_angle(right).to_value(u.deg)
    assert _angle_diff_deg(image_x, res.theta_deg + (180.0 if mirror else 0.0)) < ROLL_TOL_DEG


def test_cd_matrix_is_the_fitted_linear_map(solved, small_db):
    """CD maps pixel offsets to gnomonic (xi, eta): fit it to the true star positions."""
    res, sim, mirror = solved
    ra, dec = _true_star_radec(sim, small_db)
    xi, eta = _standard_coordinates(ra, dec, res.crval_ra_deg, res.crval_dec_deg)
    xy = sim.true_xy - res.crpix
    # no distortion: TAN is exactly linear in the pixel offsets; the solved boresight is off
    # by < 1", so a constant term absorbs it
    design = np.column_stack([xy, np.ones(len(xy))])
    fit, *_ = np.linalg.lstsq(design, np.column_stack([xi, eta]), rcond=None)
    cd_fit = fit[:2].T
    scale = 2.0 * math.tan(math.radians(FOV / 2)) / W  # 1/f, radians per pixel
    np.testing.assert_allclose(res.cd_matrix, cd_fit, atol=2e-4 * scale)
    np.testing.assert_allclose(np.degrees(res.cd_matrix), res.to_wcs().wcs.cd,
                               atol=1e-6 * math.degrees(scale))
    # pixel +y runs down the image, so an unmirrored view has det > 0 (tetra3rs's published
    # example: [[-1.7289e-4, -9.085e-5], [9.085e-5, -1.7289e-4]]) and a mirrored one det < 0
    assert bool(np.linalg.det(res.cd_matrix) < 0) is mirror
    assert math.sqrt(abs(np.linalg.det(res.cd_matrix))) == pytest.approx(scale, rel=2e-4)


def test_pixel_and_sky_both_ways_against_the_true_positions(solved, small_db):
    res, sim, _ = solved
    ra, dec = _true_star_radec(sim, small_db)
    x, y = res.world_to_pixel(ra, dec)
    assert np.max(np.hypot(x - sim.true_xy[:, 0], y - sim.true_xy[:, 1])) < PIXEL_TOL_PX
    pra, pdec = res.pixel_to_world(sim.true_xy[:, 0], sim.true_xy[:, 1])
    sep = SkyCoord(pra, pdec, unit="deg").separation(SkyCoord(ra, dec, unit="deg"))
    assert np.max(sep.to_value(u.arcsec)) < PIXEL_TOL_PX * FOV * 3600 / W
    # astropy's own WCS from the header (FITS pixels: 0-based, first pixel centre at 0)
    cols, rows = res.to_wcs().world_to_pixel(SkyCoord(ra, dec, unit="deg"))
    assert np.max(np.hypot(cols - (sim.true_xy[:, 0] + W / 2 - 0.5),
                           rows - (sim.true_xy[:, 1] + H / 2 - 0.5))) < PIXEL_TOL_PX


def test_matched_stars_are_the_true_stars(solved):
    res, sim, _ = solved
    assert res.num_matches >= 0.9 * len(sim.centroids)
    np.testing.assert_array_equal(sim.catalog_ids[res.matched_centroids],
                                  res.matched_catalog_ids)


def test_roll_of_many_rotations_is_the_astropy_position_angle():
    """The stacked (array) path of rotation_to_radec_roll, against astropy, pole included."""
    rng = np.random.default_rng(8)
    ra, dec, roll = rng.uniform(0, 360, 40), rng.uniform(-89, 89, 40), rng.uniform(0, 360, 40)
    dec[0], roll[0] = 90.0 - 1e-7, 123.0  # at the pole north follows -X (RA 0 meridian)
    R = radec_roll_to_rotation(ra, dec, roll)
    _, _, got = rotation_to_radec_roll(R)
    for k in range(1, len(R)):
        assert _angle_diff_deg(float(got[k]), _position_angle_deg(R[k, 1], R[k, 2])) < 1e-3
        assert _angle_diff_deg(float(got[k]), float(rotation_to_radec_roll(R[k])[2])) < 1e-9
    assert _angle_diff_deg(float(got[0]), float(rotation_to_radec_roll(R[0])[2])) < 1e-9


def test_error_statistics_are_those_of_the_residuals(solved):
    """rmse, p90e and max_err are statistics of the per-star residuals (numpy's own)."""
    res, _, _ = solved
    r = res.matched_residuals_arcsec
    assert len(r) == res.num_matches
    assert res.rmse_arcsec == pytest.approx(math.sqrt(np.mean(r ** 2)), rel=1e-9)
    assert res.p90e_arcsec == pytest.approx(np.percentile(r, 90), rel=1e-9)
    assert res.max_err_arcsec == pytest.approx(r.max(), rel=1e-9)


def test_attitude_covariance_is_the_scatter_of_repeated_solves(small_db, hip_catalog, truth):
    """attitude_cov_rad2 against the scatter of [theta, xi0, eta0] over 40 noise draws.

    Stars from the right part of the frame only, so that the roll and the boresight
    are strongly correlated and the covariance's off-diagonal terms are tested too.
    With 40 draws a standard deviation is known to ~11 % and a correlation to ~0.1.
    """
    cam = CameraModel.from_fov(FOV, W, H)
    pa_x = _position_angle_deg(truth[0], truth[2])
    draws, reported = [], []
    for seed in range(40):
        sim = simulate_centroids(hip_catalog, cam, truth, epoch_year=2025.0, seed=100 + seed,
                                 centroid_noise_px=0.5, max_magnitude=8.0, num_stars=80)
        keep = sim.true_xy[:, 0] > 100.0
        # tracking from the truth (a half field holds too few of the database's patterns)
        res = small_db.solve_from_centroids(sim.centroids[keep], camera_model=cam,
                                            attitude_hint=truth, strict_hint=True)
        assert res and res.mode == "tracking", res
        xi, eta = _standard_coordinates(res.ra_deg, res.dec_deg, TRUE_RA, TRUE_DEC)
        dtheta = math.radians(((res.theta_deg - (90.0 - pa_x)) + 180.0) % 360.0 - 180.0)
        draws.append([dtheta, xi, eta])
        reported.append(res.attitude_cov_rad2)
    emp = np.cov(np.array(draws).T)
    rep = np.mean(reported, axis=0)
    np.testing.assert_allclose(np.sqrt(np.diag(emp)), np.sqrt(np.diag(rep)), rtol=0.3)
    corr = emp / np.sqrt(np.outer(np.diag(emp), np.diag(emp)))
    rcorr = rep / np.sqrt(np.outer(np.diag(rep), np.diag(rep)))
    assert np.max(np.abs(rcorr[0, 1:])) > 0.5  # the half-frame field couples roll and position
    np.testing.assert_allclose(corr, rcorr, atol=0.25)


def test_matches_pair_the_true_stars_when_the_brightness_order_differs(small_db, hip_catalog,
                                                                       truth):
    """0.5 mag of brightness noise: centroid order and catalog order disagree, and every
    matched centroid must still be paired with its own star."""
    cam = CameraModel.from_fov(FOV, W, H)
    sim = simulate_centroids(hip_catalog, cam, truth, epoch_year=2025.0, seed=4,
                             centroid_noise_px=0.1, magnitude_noise=0.5, max_magnitude=8.0,
                             num_stars=60)
    res = small_db.solve_from_centroids(sim.centroids, fov_estimate_deg=15.0, image_width=W,
                                        image_height=H)
    assert res, res
    assert res.num_matches >= 0.9 * len(sim.centroids)
    assert np.all(np.diff(res.matched_centroids) > 0)
    np.testing.assert_array_equal(sim.catalog_ids[res.matched_centroids],
                                  res.matched_catalog_ids)
