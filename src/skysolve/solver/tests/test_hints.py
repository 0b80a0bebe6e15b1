"""Hints for the lost-in-space search: position cone, scale range, parity, observation time.

Fields are simulated from the Hipparcos catalog with known attitudes
(:func:`skysolve.simulate.simulate_centroids`); a hinted solve must give the
unhinted answer (same boresight, same matched stars) when the hint holds the
truth, and no answer at all -- never a wrong one -- when it does not. Speed
lives in ``benchmarks/bench_hints.py`` (1,000 missed cones there, a handful here).
"""

from __future__ import annotations

import datetime
import math

import numpy as np
import pytest

from skysolve.camera import CameraModel
from skysolve.errors import InvalidArgumentError, InvalidTypeError
from skysolve.geometry import radec_to_vector, vector_to_radec
from skysolve.simulate import random_attitudes, simulate_centroids
from skysolve.solver.solve import _positions

W, H = 1024, 768


@pytest.fixture(scope="module")
def fields(hip2025):
    """8 simulated 10-20 deg fields: (centroids, true rotation, camera, mirrored)."""
    rng = np.random.default_rng(1515)
    out = []
    for k, R in enumerate(random_attitudes(8, rng)):
        cam = CameraModel.from_fov(float(rng.uniform(10.0, 20.0)), W, H)
        mirror = k % 4 == 3
        sim = simulate_centroids(hip2025, cam, R, num_stars=40, max_magnitude=7.5,
                                 centroid_noise_px=0.3, mirror=mirror, seed=rng)
        out.append((sim.centroids.copy(), R, cam, mirror))
    return out


def _offset(v, deg, rng):
    """A direction ``deg`` degrees from unit vector ``v``, in a random direction."""
    a = np.cross(v, rng.normal(size=3))
    a /= np.linalg.norm(a)
    t = math.radians(deg)
    return v * math.cos(t) + a * math.sin(t)


def _radec(v):
    ra, dec = vector_to_radec(v)
    return float(ra), float(dec)


def _err_deg(res, R):
    return math.degrees(math.acos(min(1.0, float(res.rotation_matrix_icrs_to_camera[2] @ R[2]))))


def _sep_arcsec(a, b):
    """Angle between two solves' boresights (chord formula: acos of a dot product near 1
    cannot tell vectors a few ulps apart from 0.01 arcsec)."""
    d = a.rotation_matrix_icrs_to_camera[2] - b.rotation_matrix_icrs_to_camera[2]
    return math.degrees(2.0 * math.asin(min(1.0, 0.5 * float(np.linalg.norm(d))))) * 3600.0


@pytest.mark.parametrize("backend", ["compiled", "reference"])
def test_a_position_hint_holding_the_truth_gives_the_unhinted_answer(small_db, fields,
                                                                      backend):
    rng = np.random.default_rng(3)
    for xy, R, cam, _ in fields[: 8 if backend == "compiled" else 3]:
        kw = dict(fov_estimate_deg=cam.fov_deg, image_width=W, image_height=H, backend=backend)
        plain = small_db.solve_from_centroids(xy, **kw)
        hint = _radec(_offset(R[2], 2.0 * math.sqrt(rng.uniform()), rng))
        hinted = small_db.solve_from_centroids(xy, position_hint=hint, position_radius_deg=2.0,
                                               **kw)
        assert plain and hinted
        assert _err_deg(hinted, R) < 0.05
        assert _sep_arcsec(plain, hinted) < 0.05
        np.testing.assert_array_equal(np.sort(plain.matched_catalog_ids),
                                      np.sort(hinted.matched_catalog_ids))


def test_a_truth_just_inside_the_cone_is_found(small_db, fields):
    # the truth 15" inside the cone's edge: the four-star fit of the right pattern may
    # put the boresight (by up to ~1 px) outside, refinement brings it back inside
    # (the cone's centre in four directions from each truth)
    rng = np.random.default_rng(29)
    for xy, R, cam, _ in fields:
        kw = dict(fov_estimate_deg=cam.fov_deg, image_width=W, image_height=H)
        plain = small_db.solve_from_centroids(xy, **kw)
        for _ in range(4):
            hint = _radec(_offset(R[2], 2.0 - 15.0 / 3600.0, rng))
            hinted = small_db.solve_from_centroids(xy, position_hint=hint,
                                                   position_radius_deg=2.0, **kw)
            assert plain and hinted, hinted
            assert _sep_arcsec(plain, hinted) < 0.05


def test_a_position_hint_without_scale_and_as_skycoord(small_db, fields):
    from astropy.coordinates import SkyCoord

    xy, R, cam, _ = fields[0]
    ra, dec = _radec(R[2])
    # a SkyCoord in another frame is converted to ICRS
    hint = SkyCoord(ra, dec, unit="deg").galactic
    res = small_db.solve_from_centroids(xy, position_hint=hint, position_radius_deg=1.0,
                                        image_width=W, image_height=H)
    assert res and _err_deg(res, R) < 0.05


def test_a_cone_that_misses_the_pointing_gives_no_solution(small_db, fields):
    rng = np.random.default_rng(17)
    for k, (xy, R, cam, _) in enumerate(fields):
        # just outside (the field overlaps the cone's reach) or anywhere on the sky
        away = 2.0 + rng.uniform(0.05, 8.0) if k % 2 == 0 else float(rng.uniform(20.0, 180.0))
        res = small_db.solve_from_centroids(
            xy, position_hint=_radec(_offset(R[2], away, rng)), position_radius_deg=2.0,
            fov_estimate_deg=cam.fov_deg, image_width=W, image_height=H)
        assert not res, (k, away, res)
        assert res.status == "no_match"
        assert "cone" in res.message


@pytest.fixture(scope="module")
def sparse_db():
    """A 2-3 deg database of 2,000 stars spread over the sky (a field holds none or one)
    and a cluster of 40 within a degree of (150, 20) (in 0.3 s)."""
    from skysolve.database import SolverDatabase
    from skysolve.sky.catalogs import Catalog

    rng = np.random.default_rng(0)
    v = rng.normal(size=(2000, 3))
    ra, dec = vector_to_radec(v / np.linalg.norm(v, axis=1)[:, None])
    ra = np.r_[ra, 150.0 + rng.uniform(-1.0, 1.0, 40)]
    dec = np.r_[dec, 20.0 + rng.uniform(-1.0, 1.0, 40)]
    cat = Catalog(np.arange(1, ra.size + 1), ra, dec, rng.uniform(0.0, 8.0, ra.size),
                  name="sparse")
    with pytest.warns(UserWarning, match="fewer than 10"):  # (sparse by design)
        return SolverDatabase.generate_from_catalog(cat, max_fov_deg=3.0, min_fov_deg=2.0,
                                                    lattice_field_oversampling=1,
                                                    progress=False)


def test_a_position_hint_where_the_catalog_is_too_sparse_says_so(sparse_db):
    """A 1 deg telescope field near a galactic pole holds 3 stars of the bundled Gaia
    catalog, and its failure said only that no pattern verified within the cone."""
    noise = np.random.default_rng(4).uniform((-512, -384), (512, 384), (40, 2))
    stars = sparse_db.star_vectors
    # a 2.5 x 1.875 deg field's area is a circle of 1.22 deg radius
    radius = math.radians(math.sqrt(2.5 * 1.875 / math.pi))
    for where, sparse in (((150.0, 20.0), False), ((300.0, -40.0), True)):
        held = int(np.sum(stars @ radec_to_vector(*where) >= math.cos(radius)))
        assert (held < 6) == sparse, held
        res = sparse_db.solve_from_centroids(noise, image_width=W, image_height=H,
                                             fov_range_deg=(2.0, 2.5), position_hint=where,
                                             position_radius_deg=1.0)
        assert not res
        note = (f") holds {held} stars in the area of a 2.50 deg wide field, too few to "
                f"solve it: that needs a database with more stars there")
        assert (note in res.message) == sparse, res.message



def test_a_position_hint_where_the_catalog_is_too_sparse_says_so_without_a_scale(sparse_db):
    """Told no scale, the search spans the 2-3 deg database's range to 5 deg (3 / 0.6),
    then goes on to pinhole fields up to 125 deg (``BLIND_WIDEST_FOV_DEG``); the note
    counts the stars in the area of a 5 deg field, the widest of the database's range
    searched. It counted them for a 125 deg one, which holds plenty anywhere, and the
    note was never given."""
    noise = np.random.default_rng(4).uniform((-512, -384), (512, 384), (40, 2))
    where = (300.0, -40.0)
    radius = math.radians(math.sqrt(5.0 * 3.75 / math.pi))  # a 5 x 3.75 deg field's area
    held = int(np.sum(sparse_db.star_vectors @ radec_to_vector(*where) >= math.cos(radius)))
    assert held < 6
    res = sparse_db.solve_from_centroids(noise, image_width=W, image_height=H,
                                         position_hint=where, position_radius_deg=1.0)
    assert not res and res.status == "no_match"
    assert (f") holds {held} stars in the area of a 5.00 deg wide field, too few to solve "
            f"it" in res.message), res.message

def test_a_position_hint_of_astropy_angles(small_db, fields):
    # (ra, dec) as Quantities or Angles, in any angle unit, is read in degrees
    from astropy import units as u
    from astropy.coordinates import Angle

    xy, R, cam, _ = fields[0]
    ra, dec = _radec(R[2])
    for hint in ((ra * u.deg, dec * u.deg), (Angle(ra / 15.0, u.hourangle), dec * u.deg),
                 [ra, (dec * u.deg).to(u.arcmin)]):
        res = small_db.solve_from_centroids(xy, position_hint=hint, position_radius_deg=1.0,
                                            image_width=W, image_height=H)
        assert res and _err_deg(res, R) < 0.05


def test_every_form_of_an_astropy_sky_position_is_a_position_hint():
    """A SkyCoord in any representation (cartesian too) or a bare coordinate frame
    (``Galactic(l=, b=)``) gives its ICRS position, astropy's own conversion; one that
    cannot be converted (an AltAz frame without location) is refused by name, not as
    'got a SkyCoord'."""
    from astropy import units as u
    from astropy.coordinates import ICRS, Galactic, SkyCoord

    from skysolve import SolveOptions

    truth = SkyCoord(230.669, 11.036, unit="deg")
    gal = truth.galactic
    cart = SkyCoord(truth.cartesian, frame="icrs", representation_type="cartesian")
    for hint in (truth, gal, cart, Galactic(l=gal.l, b=gal.b), ICRS(ra=truth.ra, dec=truth.dec),
                 SkyCoord(truth.ra, truth.dec, distance=10 * u.pc)):
        got = SolveOptions(position_hint=hint).position_hint
        np.testing.assert_allclose(got, (230.669, 11.036), atol=1e-9)
    altaz = SkyCoord(az=10 * u.deg, alt=40 * u.deg, frame="altaz")
    with pytest.raises(InvalidArgumentError, match="position_hint.*altaz.*ICRS"):
        SolveOptions(position_hint=altaz)


def test_an_observer_velocity_is_checked_by_its_name(small_db, fields):
    xy = fields[0][0]
    with pytest.raises(InvalidArgumentError, match="observer_velocity_km_s.*light"):
        small_db.solve_from_centroids(xy, image_width=W, image_height=H,
                                      observer_velocity_km_s=[3e5, 1e4, 0.0])
    with pytest.warns(UserWarning, match="m/s"):  # 30 km/s given in m/s
        small_db.solve_from_centroids(xy, image_width=W, image_height=H,
                                      observer_velocity_km_s=[30000.0, 0.0, 0.0])


def test_world_to_pixel_refuses_a_declination_beyond_the_pole(small_db, fields):
    xy, R, _, _ = fields[0]
    res = small_db.solve_from_centroids(xy, image_width=W, image_height=H)
    assert res
    for dec in (91.0, [0.0, -90.5]):
        with pytest.raises(InvalidArgumentError, match="dec_deg"):
            res.world_to_pixel(0.0 if np.ndim(dec) == 0 else [0.0, 0.0], dec)
    assert res.world_to_pixel(0.0, 90.0) is None or len(res.world_to_pixel(0.0, 90.0)) == 2


def test_the_boresight_check_also_guards_tracking(small_db, fields):
    from skysolve.geometry import rotation_to_quaternion

    xy, R, cam, mirror = fields[1]
    rng = np.random.default_rng(5)
    kw = dict(fov_estimate_deg=cam.fov_deg, image_width=W, image_height=H,
              attitude_hint=rotation_to_quaternion(R))
    assert small_db.solve_from_centroids(xy, **kw)
    res = small_db.solve_from_centroids(xy, position_hint=_radec(_offset(R[2], 10.0, rng)),
                                        position_radius_deg=2.0, **kw)
    assert not res


def test_scale_hints_as_ranges(small_db, fields):
    xy, R, cam, _ = fields[2]
    fov = cam.fov_deg
    scale = 3600.0 * math.degrees(1.0 / cam.focal_length_px)  # arcsec per px at the centre
    base = dict(image_width=W, image_height=H)
    for kw in (dict(fov_range_deg=(0.95 * fov, 1.05 * fov)),
               dict(pixel_scale_range_arcsec=(0.97 * scale, 1.03 * scale))):
        res = small_db.solve_from_centroids(xy, **kw, **base)
        assert res and _err_deg(res, R) < 0.05
        assert abs(res.fov_deg - fov) < 0.01 * fov
    # a range that excludes the true scale finds nothing (and nothing wrong)
    for kw in (dict(fov_range_deg=(1.2 * fov, 1.4 * fov)),
               dict(pixel_scale_range_arcsec=(0.6 * scale, 0.8 * scale))):
        assert not small_db.solve_from_centroids(xy, **kw, **base)


def test_the_parity_hint(small_db, fields):
    for xy, R, cam, mirror in (fields[3], fields[0]):
        kw = dict(fov_estimate_deg=cam.fov_deg, image_width=W, image_height=H)
        res = small_db.solve_from_centroids(xy, parity_flip=mirror, **kw)
        assert res and res.parity_flip == mirror and _err_deg(res, R) < 0.05
        assert not small_db.solve_from_centroids(xy, parity_flip=not mirror, **kw)


def test_obstime_gives_the_earth_velocity(small_db, fields):
    from astropy.io import fits
    from astropy.time import Time

    from skysolve.sky.aberration import earth_barycentric_velocity

    xy, R, cam, _ = fields[0]
    kw = dict(fov_estimate_deg=cam.fov_deg, image_width=W, image_height=H)
    when = datetime.datetime(2019, 7, 29, 20, 47, 26)
    v = earth_barycentric_velocity(when)
    by_velocity = small_db.solve_from_centroids(xy, observer_velocity_km_s=v, **kw)
    header = fits.Header({"DATE-OBS": "2019-07-29T20:47:26"})
    for t in (Time("2019-07-29T20:47:26", scale="utc"), when, "2019-07-29T20:47:26", header):
        res = small_db.solve_from_centroids(xy, obstime=t, **kw)
        np.testing.assert_allclose(res.observer_velocity_km_s, v, atol=1e-9)
        np.testing.assert_allclose(res.rotation_matrix_icrs_to_camera,
                                   by_velocity.rotation_matrix_icrs_to_camera, atol=1e-12)


def test_an_unreadable_date_in_a_header_is_named():
    """A header whose DATE-OBS is no date says so, not that it has no DATE-OBS."""
    from astropy.io import fits

    from skysolve import SolveOptions

    with pytest.raises(InvalidArgumentError, match="obstime.*DATE-OBS = 'yesterday'"):
        SolveOptions(obstime=fits.Header({"DATE-OBS": "yesterday"}))
    with pytest.raises(InvalidArgumentError, match="obstime.*MJD-OBS = 'soon'"):
        SolveOptions(obstime=fits.Header({"MJD-OBS": "soon"}))
    with pytest.raises(InvalidArgumentError, match="obstime.*no DATE-AVG, DATE-OBS or MJD-OBS"):
        SolveOptions(obstime=fits.Header({"EXPTIME": 1.0}))


def test_an_obstime_in_the_local_scale_is_refused_by_name():
    """A ``Time`` in astropy's free-running 'local' scale has no place in TDB, where the
    Earth's velocity is looked up: refused naming obstime, not with astropy's
    ScaleValueError from inside the solve."""
    from astropy.time import Time

    from skysolve import SolveOptions

    with pytest.raises(InvalidArgumentError, match="obstime.*'local'"):
        SolveOptions(obstime=Time(2019.5, format="jyear", scale="local"))


def _Q(value, unit):
    from astropy import units as u

    return value * u.Unit(unit)


@pytest.mark.parametrize("kw, error, words", [
    (dict(position_radius_deg=2.0), InvalidArgumentError, "position_hint"),
    (dict(position_hint=(10.0, 95.0)), InvalidArgumentError, "position_hint"),
    (dict(position_hint="10 20"), InvalidTypeError, "position_hint"),
    (dict(position_hint=(10.0, 20.0), position_radius_deg=0.0), InvalidArgumentError,
     "position_radius_deg"),
    (dict(fov_range_deg=(12.0, 10.0)), InvalidArgumentError, "low <= high"),
    (dict(fov_range_deg=(10.0, 12.0), fov_estimate_deg=11.0), InvalidArgumentError,
     "one scale hint"),
    (dict(pixel_scale_range_arcsec=(10.0, 12.0), fov_max_error_deg=1.0),
     InvalidArgumentError, "fov_max_error_deg"),
    (dict(parity_flip="pos"), InvalidTypeError, "parity_flip"),
    (dict(obstime="yesterday"), InvalidArgumentError, "obstime"),
    (dict(obstime=datetime.datetime(2020, 1, 1), observer_velocity_km_s=[0, 0, 30]),
     InvalidArgumentError, "not both"),
    (dict(origin="one"), InvalidArgumentError, "origin"),
    (dict(position_hint=(10.0, 20.0), position_radius_deg=_Q(1.0, "deg")), InvalidTypeError,
     "position_radius_deg.*Quantity"),
    (dict(fov_estimate_deg=_Q(12.0, "deg")), InvalidTypeError, "fov_estimate_deg"),
    (dict(position_hint=(_Q(10.0, "m"), _Q(20.0, "deg"))), InvalidTypeError, "position_hint"),
])
def test_bad_hints_are_refused_by_name(small_db, kw, error, words):
    with pytest.raises(error, match=words):
        small_db.solve_from_centroids(np.zeros((5, 2)), image_width=W, image_height=H, **kw)


def test_parity_hint_must_agree_with_the_camera(small_db):
    cam = CameraModel.from_fov(12.0, W, H)
    with pytest.raises(InvalidArgumentError, match="parity_flip"):
        small_db.solve_from_centroids(np.zeros((5, 2)), camera_model=cam, parity_flip=True)


# ------------------------------------------------------------------------------------
# Centroid tables with an explicit pixel origin


def test_a_table_of_centroids_solves_alike_in_every_origin(small_db):
    from skysolve import extract_centroids, read_image
    from skysolve.tests.realframes import ALT40, DATA, FOV_DEG, REFERENCE

    image = read_image(DATA / ALT40)
    ext = extract_centroids(image)
    kw = dict(fov_estimate_deg=FOV_DEG, image_shape=image.shape)
    want = small_db.solve_from_centroids(ext, **kw)
    assert want
    truth = radec_to_vector(*REFERENCE[ALT40])
    assert math.degrees(math.acos(float(truth @ radec_to_vector(want.ra_deg, want.dec_deg)))) \
        < 0.02
    for origin in ("center", "zero", "fits"):
        table = ext.to_table(origin=origin)
        got = small_db.solve_from_centroids(table, origin=origin, **kw)
        assert got and _sep_arcsec(got, want) < 1e-6
        np.testing.assert_array_equal(got.matched_centroids, want.matched_centroids)
        with pytest.raises(InvalidArgumentError, match="origin"):
            small_db.solve_from_centroids(table, **kw)
    # photutils' columns in its own (0-based) convention, rows in position order:
    # the flux column orders them, and matched_centroids count the table's rows
    from astropy.table import Table

    t = ext.to_table(origin="zero")
    rows = np.argsort(t["x"])
    photutils = Table({"id": np.arange(1, len(t) + 1), "xcentroid": t["x"][rows],
                       "ycentroid": t["y"][rows], "flux": t["brightness"][rows]})
    got = small_db.solve_from_centroids(photutils, origin="zero", **kw)
    assert got and _sep_arcsec(got, want) < 1e-6
    np.testing.assert_array_equal(np.sort(rows[got.matched_centroids]), want.matched_centroids)
    # a masked flux is taken as the faintest, with a warning, wherever the row is (a
    # masked first row was kept first, silently, so the solve's brightest star was unknown)
    for row in (0, len(photutils) // 2):
        gaps = Table(photutils, masked=True, copy=True)
        gaps["flux"].mask[np.argsort(-gaps["flux"])[:3]] = True  # the three brightest
        gaps.insert_row(row, {"id": 0, "xcentroid": 1.0, "ycentroid": 2.0, "flux": 0.0})
        gaps["flux"].mask[row] = True
        with pytest.warns(UserWarning, match="flux of 4 of .* masked or not finite"):
            got = small_db.solve_from_centroids(gaps, origin="zero", **kw)
        assert got and _sep_arcsec(got, want) < 60
        with pytest.warns(UserWarning, match="masked"):
            _, order = _positions(gaps, "zero", W, H)
        masked = np.flatnonzero(gaps["flux"].mask)
        np.testing.assert_array_equal(np.sort(order[-4:]), masked)
        kept = gaps["flux"].data[order[:-4]]
        assert np.all(np.diff(kept) <= 0)
    # the same positions as a plain array in 1-based FITS pixels
    fits_xy = ext.as_array()[:, :2] + (W / 2 + 0.5, H / 2 + 0.5)
    got = small_db.solve_from_centroids(fits_xy, origin="fits", **kw)
    assert got and _sep_arcsec(got, want) < 1e-6


def test_the_sparse_note_counts_with_the_solves_own_backend(sparse_db, monkeypatch):
    # counting through the process's 'auto' backend loaded the compiled kernels after a
    # reference solve's time-out had passed (282 ms for a 50 ms limit)
    from skysolve.solver import backends

    chosen = backends.select

    def only_asked(name: str = "auto"):
        assert name != "auto", "the solve asked for the reference backend"
        return chosen(name)

    monkeypatch.setattr(backends, "select", only_asked)
    noise = np.random.default_rng(4).uniform((-512, -384), (512, 384), (40, 2))
    res = sparse_db.solve_from_centroids(noise, image_width=W, image_height=H,
                                         fov_range_deg=(2.0, 2.5), position_hint=(300.0, -40.0),
                                         position_radius_deg=1.0, backend="reference")
    assert not res and "too few to solve it" in res.message


@pytest.mark.parametrize("k1", [-0.05, 0.0, 0.05])
def test_the_cone_of_pattern_stars_reaches_the_corners_the_lens_sees(k1):
    """A position hint keeps as pattern stars those within the cone's radius plus the
    field's reach of its centre (``Cone.min_cos``). Through a barrel lens (``k1 < 0``) the
    image's corners see further out than their raw distance from the centre says, and
    the reach took the raw one: with 5 % barrel on this 12 deg field, a star at a corner
    of a field on the cone's edge lay 0.4 deg beyond the stars kept."""
    from skysolve.camera import RadialDistortion
    from skysolve.geometry import angle_between, radec_roll_to_rotation
    from skysolve.solver.backends import select
    from skysolve.solver.frame import make_frame
    from skysolve.solver.lost_in_space import Cone

    cam = CameraModel.from_fov(12.0, W, H,
                               distortion=RadialDistortion(k1, scale=math.hypot(W / 2, H / 2)))
    frame = make_frame(np.zeros((3, 2)), W, H, cam, cam.projection, select("reference"))
    centre = radec_to_vector(30.0, 40.0)
    cone = Cone(centre, math.radians(1.0))
    limit = math.degrees(math.acos(cone.min_cos(frame, cam.focal_length_px)))
    x = 0.5 * W * np.array([-1.0, 1.0, 1.0, -1.0])
    y = 0.5 * H * np.array([-1.0, -1.0, 1.0, 1.0])
    corners = cam.pixel_to_vectors(x, y)
    farthest = 0.0
    for roll in range(0, 360, 3):  # a boresight on the cone's edge, the field rolled
        R = radec_roll_to_rotation(30.0, 41.0, float(roll))
        farthest = max(farthest, math.degrees(float(np.max(angle_between(corners @ R, centre)))))
    assert farthest <= limit
    if k1 <= 0.0:  # (pincushion: the raw distance, further than the lens sees, is kept)
        assert farthest > limit - 0.15  # (the margin: aberration, proper motion, ...)


def test_every_plain_form_of_a_position_hint_is_the_same_cone():
    """A tuple of two Python numbers (a tracker's hint, checked on every call by a short
    path) gives the position and the cone centre that a list, an array and a SkyCoord
    give, the RA wrapped into [0, 360); its bad values are refused by the same names."""
    from astropy.coordinates import SkyCoord

    from skysolve import SolveOptions

    rng = np.random.default_rng(7)
    for ra, dec in zip(rng.uniform(-400.0, 400.0, 50), rng.uniform(-90.0, 90.0, 50),
                       strict=True):
        want = (float(ra) % 360.0, float(dec))
        forms = [(float(ra), float(dec)), [float(ra), float(dec)], np.array([ra, dec])]
        for hint in forms:
            opts = SolveOptions(position_hint=hint, position_radius_deg=2.0)
            assert opts.position_hint == want
            centre, radius = opts.position_cone
            np.testing.assert_allclose(centre, radec_to_vector(*want), rtol=0, atol=1e-15)
            assert radius == math.radians(2.0)
        sky = SolveOptions(position_hint=SkyCoord(*want, unit="deg")).position_hint
        np.testing.assert_allclose(sky, want, atol=1e-9)
    assert SolveOptions(position_hint=(-30, 10)).position_hint == (330.0, 10.0)
    for bad, error, words in [((10.0, 90.5), InvalidArgumentError, r"position_hint\[1\]"),
                              ((math.nan, 0.0), InvalidArgumentError, r"position_hint\[0\]"),
                              ((math.inf, 0.0), InvalidArgumentError, r"position_hint\[0\]"),
                              ((True, 0.0), InvalidTypeError, r"position_hint\[0\]"),
                              ((10.0, "20"), InvalidTypeError, r"position_hint\[1\]"),
                              ((10.0, 20.0, 1.0), InvalidArgumentError, "position_hint")]:
        with pytest.raises(error, match=words):
            SolveOptions(position_hint=bad)


def test_the_cone_holds_the_boresights_within_its_radius():
    """``Cone.holds`` (the test of every hypothesis of a hinted search and of its
    refinement) against the angle between the boresight and the centre, with and without
    slack, on attitudes about the edge."""
    from skysolve.geometry import radec_roll_to_rotation
    from skysolve.solver.lost_in_space import Cone

    rng = np.random.default_rng(3)
    for _ in range(200):
        centre = radec_to_vector(float(rng.uniform(0, 360)), float(rng.uniform(-90, 90)))
        radius = math.radians(float(rng.uniform(0.1, 10.0)))
        slack = float(rng.choice([0.0, 1e-3]))
        cone = Cone(centre, radius)
        off = radius + slack + math.radians(float(rng.choice([-1e-3, 1e-3])))
        ra, dec = _radec(_offset(centre, math.degrees(off), rng))
        R = radec_roll_to_rotation(ra, dec, float(rng.uniform(0, 360)))
        inside = math.acos(min(1.0, float(R[2] @ centre))) <= radius + slack
        assert cone.holds(R, slack) == inside
