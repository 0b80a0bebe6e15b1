"""Simulations through every lens projection: wide fields, image circles, horizons.

Expected star sets and positions are computed here from the catalog's unit
vectors with the projections' textbook formulas (``r = f g(theta)``), not with
the simulator's own geometry.
"""

from __future__ import annotations

import numpy as np
import pytest

from skysolve.camera.distortion import RadialDistortion
from skysolve.camera.model import CameraModel
from skysolve.errors import InvalidArgumentError, InvalidTypeError
from skysolve.geometry import radec_roll_to_rotation, radec_to_vector
from skysolve.simulate import random_centroids, render_starfield, simulate_centroids
from skysolve.sky.catalogs import Catalog, load_gaia, load_hipparcos

#: r / f as a function of the angle from the axis (the issue's definitions)
G = {"pinhole": np.tan, "equidistant": lambda t: t, "equisolid": lambda t: 2 * np.sin(t / 2),
     "stereographic": lambda t: 2 * np.tan(t / 2), "orthographic": np.sin}
#: a wide frame of each projection: (FOV across the width, width, height)
FRAMES = {"pinhole": (90.0, 900, 600), "equidistant": (200.0, 800, 600),
          "equisolid": (180.0, 800, 800), "stereographic": (180.0, 800, 600),
          "orthographic": (180.0, 800, 800)}
R_SKY = radec_roll_to_rotation(250.0, -35.0, 20.0)


@pytest.fixture(scope="module")
def hip() -> Catalog:
    return load_hipparcos()


def _camera(proj, **kw):
    fov, w, h = FRAMES[proj]
    return CameraModel.from_fov(fov, w, h, projection=proj, **kw)


def _expected(catalog, cam, R, max_mag=None):
    """Catalog rows imaged inside the frame (textbook projection), with x, y, theta."""
    v = radec_to_vector(catalog.ra_deg, catalog.dec_deg) @ R.T
    theta = np.arccos(np.clip(v[:, 2], -1, 1))
    s = np.hypot(v[:, 0], v[:, 1])
    domain = theta < np.pi / 2 if cam.projection in ("pinhole", "orthographic") else \
        theta < np.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cam.focal_length_px * G[cam.projection](theta)
        x = np.where(domain, r * v[:, 0] / s, np.nan)
        y = np.where(domain, r * v[:, 1] / s, np.nan)
        w, h = cam.image_width, cam.image_height
        ok = (np.abs(x) < w / 2) & (np.abs(y) < h / 2)
    if max_mag is not None:
        ok &= catalog.mag <= max_mag
    idx = np.flatnonzero(ok)
    return idx, x[idx], y[idx], theta[idx]


def _rows_of(catalog, ids):
    by_id = np.argsort(catalog.ids)
    return by_id[np.searchsorted(catalog.ids, ids, sorter=by_id)]


@pytest.mark.parametrize("proj", sorted(FRAMES))
def test_centroids_land_where_the_projection_puts_them(hip, proj):
    cam = _camera(proj)
    sim = simulate_centroids(hip, cam, R_SKY, max_magnitude=6.0)
    idx, x, y, theta = _expected(hip, cam, R_SKY, max_mag=6.0)
    assert idx.size > 100
    assert sorted(sim.catalog_ids.tolist()) == sorted(hip.ids[idx].tolist())
    order = np.argsort(hip.ids[idx])
    sorted_ids = hip.ids[idx][order]
    k = order[np.searchsorted(sorted_ids, sim.catalog_ids)]
    np.testing.assert_allclose(sim.centroids[:, 0], x[k], atol=1e-6)
    np.testing.assert_allclose(sim.centroids[:, 1], y[k], atol=1e-6)
    if proj in ("equidistant", "equisolid", "stereographic"):
        assert np.degrees(theta.max()) > 95  # the frame reaches behind the hemisphere
    else:
        assert np.degrees(theta.max()) < 90


def test_distorted_fisheye_centroids_match_the_camera_model(hip):
    cam = _camera("equidistant", crpix=(7.0, -3.0), parity_flip=True,
                  distortion=RadialDistortion(k1=-1e-7))
    sim = simulate_centroids(hip, cam, R_SKY, max_magnitude=5.5)
    rows = _rows_of(hip, sim.catalog_ids)
    x, y = cam.world_to_pixel(hip.ra_deg[rows], hip.dec_deg[rows], R_SKY)
    np.testing.assert_allclose(sim.centroids[:, 0], x, atol=1e-6)
    np.testing.assert_allclose(sim.centroids[:, 1], y, atol=1e-6)
    # every bright star the model images inside the frame is listed
    bright = np.flatnonzero(hip.mag <= 5.5)
    bx, by = cam.world_to_pixel(hip.ra_deg[bright], hip.dec_deg[bright], R_SKY)
    with np.errstate(invalid="ignore"):
        inside = (np.abs(bx) < 400) & (np.abs(by) < 300)
    assert sorted(sim.catalog_ids.tolist()) == sorted(hip.ids[bright[inside]].tolist())


@pytest.mark.parametrize("circle", [dict(image_circle_deg=90.0), dict(image_circle_px=300.0)])
def test_image_circle_keeps_exactly_the_stars_inside_it(hip, circle):
    cam = _camera("equisolid")  # 180° across 800 px: corners reach 180° off axis
    sim = simulate_centroids(hip, cam, R_SKY, max_magnitude=6.0, **circle)
    idx, x, y, theta = _expected(hip, cam, R_SKY, max_mag=6.0)
    if "image_circle_deg" in circle:
        inside = theta <= np.radians(90.0)
    else:
        inside = np.hypot(x, y) <= 300.0
    assert 0 < inside.sum() < idx.size
    assert sorted(sim.catalog_ids.tolist()) == sorted(hip.ids[idx[inside]].tolist())


def test_horizon_hides_exactly_the_stars_below_it(hip):
    cam = _camera("equisolid")
    # the zenith defaults to the boresight: an all-sky camera pointing up
    sim = simulate_centroids(hip, cam, R_SKY, max_magnitude=6.0, image_circle_deg=90.0,
                             horizon_deg=10.0)
    v = radec_to_vector(hip.ra_deg, hip.dec_deg)
    alt = 90.0 - np.degrees(np.arccos(np.clip(v @ R_SKY[2], -1, 1)))
    want = np.flatnonzero((alt >= 10.0) & (hip.mag <= 6.0))
    assert sorted(sim.catalog_ids.tolist()) == sorted(hip.ids[want].tolist())
    # a camera tilted 40° from a given zenith: its horizon cuts one side of the frame
    zenith = (10.0, 30.0)
    tilted = radec_roll_to_rotation(10.0, -10.0, 0.0)
    sim = simulate_centroids(hip, cam, tilted, max_magnitude=6.0, image_circle_deg=90.0,
                             horizon_deg=5.0, zenith_radec_deg=zenith)
    z = radec_to_vector(*zenith)
    alt = 90.0 - np.degrees(np.arccos(np.clip(v @ z, -1, 1)))
    off_axis = np.degrees(np.arccos(np.clip(v @ tilted[2], -1, 1)))
    want = np.flatnonzero((alt >= 5.0) & (off_axis <= 90.0) & (hip.mag <= 6.0))
    assert sorted(sim.catalog_ids.tolist()) == sorted(hip.ids[want].tolist())
    assert np.any((alt < 5.0) & (off_axis <= 90.0) & (hip.mag <= 6.0))  # some were hidden


def test_the_benchmark_recipe_brightest_80_noise_drops_and_false_stars():
    """Brightest <= 80, 0.3 px noise, 10 % dropped, 10 % false at random ranks."""
    gaia = load_gaia()
    cam = CameraModel.from_fov(62.0, 1920, 1280)
    ranks, dropped = [], []
    for k, R in enumerate([R_SKY, radec_roll_to_rotation(40.0, 60.0, 100.0),
                           radec_roll_to_rotation(300.0, 5.0, 200.0)]):
        clean = simulate_centroids(gaia, cam, R, num_stars=80)
        sim = simulate_centroids(gaia, cam, R, num_stars=80, centroid_noise_px=0.3,
                                 drop_fraction=0.1, false_fraction=0.1, seed=k)
        assert len(sim) == 80
        false = sim.catalog_ids == -1
        assert false.sum() == 8 and np.all(np.isnan(sim.magnitudes[false]))
        assert np.all(np.diff(sim.centroids[:, 2]) <= 0)  # still brightest first
        assert np.all((np.abs(sim.centroids[false, 0]) < 960)
                      & (np.abs(sim.centroids[false, 1]) < 640))
        ranks.extend(np.flatnonzero(false))
        err = sim.centroids[~false, :2] - sim.true_xy[~false]
        assert np.std(err) == pytest.approx(0.3, rel=0.25)
        # real rows are the brightest stars less the dropped ones
        real = sim.catalog_ids[~false]
        last = np.flatnonzero(clean.catalog_ids == real[-1])[0]
        dropped.append(1.0 - real.size / (last + 1))
    assert 20 < np.mean(ranks) < 60  # spread over the list, not appended at the end
    assert min(ranks) < 20 and max(ranks) > 60
    assert 0.03 < np.mean(dropped) < 0.2


def test_random_centroids_fill_the_image_circle_uniformly():
    cam = _camera("equisolid")
    c = random_centroids(cam, 4000, image_circle_deg=90.0, seed=3)
    assert c.shape == (4000, 3) and np.all(np.diff(c[:, 2]) <= 0)
    r = np.hypot(c[:, 0], c[:, 1]) / 400.0  # the 90° circle is inscribed: radius 400 px
    assert r.max() <= 1.0 + 1e-9
    assert np.mean(r < np.sqrt(0.5)) == pytest.approx(0.5, abs=0.03)  # uniform in area
    assert np.abs(c[:, :2].mean(axis=0)).max() < 15
    flat = random_centroids(CameraModel.from_fov(10.0, 640, 480), 1000, seed=3)
    assert np.abs(flat[:, 0]).max() <= 320 and np.abs(flat[:, 1]).max() <= 240
    assert np.abs(flat[:, 0]).max() > 300  # reaches the corners of the frame
    np.testing.assert_array_equal(flat, random_centroids(
        CameraModel.from_fov(10.0, 640, 480), 1000, seed=3))
    with pytest.raises(InvalidArgumentError, match="num_centroids"):
        random_centroids(cam, -1)
    with pytest.raises(InvalidArgumentError, match="image circle"):
        random_centroids(cam, 3, image_circle_px=1e-3)


def test_rendered_all_sky_frame_is_dark_outside_its_circle_and_vignetted(hip):
    cam = CameraModel.from_fov(180.0, 200, 200, projection="equisolid", crpix=(3.0, -2.0))
    img, truth = render_starfield(hip, cam, R_SKY, image_circle_px=90.0, vignetting=0.4,
                                  horizon_deg=10.0, noise=False, background_e=100.0,
                                  read_noise_e=0.0, full_well_e=None, zeropoint_mag=5.0)
    xs = np.arange(200) + 0.5 - 100
    r = np.hypot(xs[None, :] - 3.0, xs[:, None] + 2.0)
    assert np.all(img[r > 90.0] == 0.0)
    # the sky inside follows 1 - 0.4 (r / 90)^2 where no star's light reaches
    sky_only = render_starfield(Catalog.from_arrays([1], [0.0], [0.0], [30.0]), cam, R_SKY,
                                image_circle_px=90.0, vignetting=0.4, noise=False,
                                background_e=100.0, read_noise_e=0.0, full_well_e=None)[0]
    inside = r <= 90.0
    np.testing.assert_allclose(sky_only[inside], 100.0 * (1 - 0.4 * (r[inside] / 90.0) ** 2),
                               rtol=1e-5)
    assert np.all(sky_only[~inside] == 0.0)
    # the stars: inside the circle, above the horizon, where the camera puts them
    assert len(truth) > 50
    assert np.all(np.hypot(truth.x - 3.0, truth.y + 2.0) <= 90.0)
    rows = _rows_of(hip, truth.catalog_id)
    v = radec_to_vector(hip.ra_deg[rows], hip.dec_deg[rows])
    assert np.all(90.0 - np.degrees(np.arccos(np.clip(v @ R_SKY[2], -1, 1))) >= 10.0)
    x, y = cam.world_to_pixel(hip.ra_deg[rows], hip.dec_deg[rows], R_SKY)
    np.testing.assert_allclose(truth.x, x, atol=1e-9)
    np.testing.assert_allclose(truth.y, y, atol=1e-9)
    # and every star's light (vignetted) is in the image, less what the circle cuts
    assert img.sum() < sky_only.sum() + truth.flux.sum() * 1.0001


@pytest.mark.parametrize("proj, fov, w, h", [("stereographic", 150.0, 240, 180),
                                              ("orthographic", 180.0, 160, 160)])
def test_rendered_fisheye_wcs_and_camera_paths_agree(hip, proj, fov, w, h):
    from skysolve.io.wcs import camera_to_wcs

    bright = hip.select(np.flatnonzero(hip.mag < 6.0))
    cam = CameraModel.from_fov(fov, w, h, projection=proj, crpix=(2.0, 1.0))
    quiet = dict(noise=False, background_e=50.0, read_noise_e=0.0, full_well_e=None)
    img_c, t_c = render_starfield(bright, cam, R_SKY, **quiet)
    img_w, t_w = render_starfield(bright, wcs=camera_to_wcs(cam, R_SKY), shape=(h, w), **quiet)
    assert len(t_c) > 100
    np.testing.assert_array_equal(np.sort(t_w.catalog_id), np.sort(t_c.catalog_id))
    ids, i_c, i_w = np.intersect1d(t_c.catalog_id, t_w.catalog_id, return_indices=True)
    assert np.abs(t_w.x[i_w] - t_c.x[i_c]).max() < 1e-4
    assert np.abs(t_w.y[i_w] - t_c.y[i_c]).max() < 1e-4
    np.testing.assert_allclose(img_w, img_c, rtol=1e-4, atol=1e-3)
    if proj == "orthographic":  # the corners image nothing in both: dark
        assert img_c[0, 0] == img_w[0, 0] == 0.0 and img_c[80, 80] > 0


def test_wide_field_arguments_are_checked(hip):
    cam = _camera("equisolid")
    for kw, exc, name in [(dict(image_circle_px=-1.0), InvalidArgumentError, "image_circle_px"),
                          (dict(image_circle_deg=181.0), InvalidArgumentError,
                           "image_circle_deg"),
                          (dict(horizon_deg=91.0), InvalidArgumentError, "horizon_deg"),
                          (dict(horizon_deg="low"), InvalidTypeError, "horizon_deg"),
                          (dict(zenith_radec_deg=(10.0, 95.0)), InvalidArgumentError,
                           "zenith_radec_deg"),
                          (dict(zenith_radec_deg=5.0), InvalidArgumentError,
                           "zenith_radec_deg"),
                          (dict(false_fraction=1.0), InvalidArgumentError, "false_fraction")]:
        with pytest.raises(exc, match=name):
            simulate_centroids(hip, cam, R_SKY, **kw)
        if name != "false_fraction":
            with pytest.raises(exc, match=name):
                render_starfield(hip, cam, R_SKY, **kw)
    from skysolve.io.wcs import camera_to_wcs

    with pytest.raises(InvalidArgumentError, match="image_circle"):
        render_starfield(hip, wcs=camera_to_wcs(cam, R_SKY), shape=(800, 800),
                         image_circle_deg=90.0)
