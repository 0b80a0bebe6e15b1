"""A database's field-of-view range: up to 180 deg, and what happens outside it.

* The wide scales of a multiscale Gaia database hold the patterns of wide
  frames' brightest stars: an 80 deg cap (a 180 deg all-sky frame losing 10 deg
  above the horizon), a 120 deg fisheye and a 62 deg pinhole frame
  (:mod:`widefields`).
* A field outside the database's range fails with a status and a message that
  name the range, and is never solved wrongly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from skysolve.camera.model import CameraModel
from skysolve.database import SolverDatabase
from skysolve.geometry import angle_between
from skysolve.simulate import random_attitudes, simulate_centroids
from skysolve.solver.tests.widefields import FIELDS, frame_patterns, pattern_coverage


@pytest.fixture(scope="module")
def wide_db() -> SolverDatabase:
    """The wide scales of a 2-180 deg database (its scales from 40 deg up), in a second."""
    return SolverDatabase.generate_from_gaia(min_fov_deg=40.0, max_fov_deg=180.0, progress=False)


def test_database_up_to_180_deg(wide_db):
    assert wide_db.max_fov_deg == 180.0
    scales = wide_db.parameters["fov_scales_deg"]
    assert scales[0] == 180.0 and len(scales) == 5
    # patterns span up to the largest scale: stars on opposite sides of an all-sky frame
    v = wide_db.star_vectors[wide_db.pattern_stars.astype(np.intp)]
    longest = np.degrees(np.arccos(np.clip(np.einsum("nij,nkj->nik", v, v).min(axis=(1, 2)),
                                           -1, 1)))
    assert 150.0 < longest.max() <= 180.0


@pytest.mark.parametrize("name", ["allsky_180", "fisheye_120", "pinhole_62"])
def test_wide_frames_brightest_patterns_are_in_the_database(wide_db, name):
    """Of the 70 patterns of a frame's 8 brightest stars, the database holds many, always."""
    counts = pattern_coverage(wide_db, FIELDS[name], random_attitudes(25, 11), count=8)
    assert counts.min() >= 10, counts
    assert np.median(counts) >= 40, counts


def test_small_frames_need_the_small_scales(wide_db):
    """The same check fails where the database has no scale: 2 deg frames, 40-180 deg."""
    counts = pattern_coverage(wide_db, FIELDS["pinhole_2"], random_attitudes(5, 12), count=8)
    assert counts.max() == 0


def test_pattern_rows(wide_db):
    db = wide_db
    rng = np.random.default_rng(3)
    rows = rng.choice(db.num_patterns, 500, replace=False)
    shuffled = np.array([rng.permutation(s) for s in db.pattern_stars[rows]])
    np.testing.assert_array_equal(db.pattern_rows(shuffled), rows)
    # four faint stars far apart are no pattern; nor is a pattern with one star swapped
    absent = np.array([[db.num_stars - 1, db.num_stars - 2, db.num_stars - 3, db.num_stars - 4]])
    swapped = db.pattern_stars[rows[:1]].astype(np.intp)
    swapped[0, 0] = db.num_stars - 5
    assert db.pattern_rows(np.concatenate([absent, swapped])).tolist() == [-1, -1]
    assert db.pattern_rows(np.zeros((0, 4), np.intp)).shape == (0,)
    patterns = frame_patterns(db, random_attitudes(1, 4)[0], FIELDS["fisheye_120"])
    assert patterns.shape == (210, 4)
    with pytest.raises(ValueError, match="stars"):
        db.pattern_rows(np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match="star-table"):
        db.pattern_rows(np.array([[0, 1, 2, db.num_stars]]))


@pytest.mark.parametrize("fov, estimate", [(3.0, None), (3.0, 3.0), (60.0, None), (60.0, 60.0),
                                           (40.0, 40.0)])
def test_fields_outside_the_database_range(small_db, hip_catalog, fov, estimate):
    """10-20 deg database: other fields fail naming the range, or solve right; never wrong."""
    catalog = hip_catalog.propagate(2025.0)
    cam = CameraModel.from_fov(fov, 1024, 768)
    outcomes = []
    for i, R in enumerate(random_attitudes(3, 21)):
        sim = simulate_centroids(catalog, cam, R, num_stars=60, centroid_noise_px=0.3, seed=i)
        res = small_db.solve_from_centroids(sim.centroids, fov_estimate_deg=estimate,
                                            image_width=1024, image_height=768,
                                            solve_timeout_ms=None)
        if res:
            err = math.degrees(angle_between(res.rotation_matrix_icrs_to_camera[2], R[2]))
            assert err < 0.05 and abs(res.fov_deg / fov - 1) < 0.01, (i, res)
        else:
            assert res.status in ("no_match", "invalid_config", "too_few"), res
            if res.status != "too_few":
                assert "10-20 deg" in res.message, res.message
        outcomes.append(res.status)
    if fov == 60:  # its brightest stars make the database's patterns in sub-windows
        assert "invalid_config" not in outcomes


@pytest.mark.parametrize("hint", ["fov_estimate_deg", "fov_estimate_and_error", "fov_range_deg",
                                  "pixel_scale_range_arcsec"])
def test_a_field_twice_the_largest_solves_with_any_scale_hint(small_db, hip_catalog, hint):
    """A 40 deg field against the 10-20 deg database solves whichever way its scale is
    hinted: only an estimate without an error, whose range reached down to 24 deg, was
    searched; a tight range or pixel scale (``skysolve-field -u arcsecperpix``) was
    refused as outside the database's range."""
    cam = CameraModel.from_fov(40.0, 1024, 768)
    scale = 3600.0 * math.degrees(1.0 / cam.focal_length_px)
    kw = {"fov_estimate_deg": dict(fov_estimate_deg=40.0),
          "fov_estimate_and_error": dict(fov_estimate_deg=40.0, fov_max_error_deg=2.0),
          "fov_range_deg": dict(fov_range_deg=(38.0, 42.0)),
          "pixel_scale_range_arcsec": dict(pixel_scale_range_arcsec=(0.95 * scale,
                                                                      1.05 * scale))}[hint]
    for i, R in enumerate(random_attitudes(2, 21)):
        sim = simulate_centroids(hip_catalog.propagate(2025.0), cam, R, num_stars=60,
                                 centroid_noise_px=0.3, seed=i)
        res = small_db.solve_from_centroids(sim.centroids, image_width=1024, image_height=768,
                                            solve_timeout_ms=None, **kw)
        assert res, res
        assert math.degrees(angle_between(res.rotation_matrix_icrs_to_camera[2], R[2])) < 0.05
        assert abs(res.fov_deg / 40.0 - 1) < 0.01


@pytest.mark.parametrize("hint, low_high", [
    ({"fov_range_deg": (5.5, 6.5)}, "5.50-6.50"),
    # over 1024 px: 2 atan(512 x 21.09" / 1 rad) = 5.99 deg, and 25.31" 7.19 deg
    ({"pixel_scale_range_arcsec": (21.09, 25.31)}, "5.99-7.19"),
    ({"fov_range_deg": (24.0, 26.0), "max_patterns_checked": 1}, "24.00-26.00"),
])
def test_search_cut_short_names_a_scale_hint_outside_the_range(small_db, hint, low_high):
    """A scale hint wholly outside the 10-20 deg range says so, however the search ended:
    a 0.5 deg field against a 1-3 deg Gaia database ran out of time with only "no match
    within 5000.0 ms" (searched, as a field down to half the smallest may still solve)."""
    noise = np.random.default_rng(4).uniform((-512, -384), (512, 384), (40, 2))
    res = small_db.solve_from_centroids(noise, image_width=1024, image_height=768,
                                        solve_timeout_ms=1, **hint)
    assert not res and res.status == "timeout", res
    assert f"the field of view range {low_high} deg is outside the database's 10-20 deg" \
        in res.message, res.message


def test_search_cut_short_in_range_says_only_the_time(small_db):
    noise = np.random.default_rng(4).uniform((-512, -384), (512, 384), (40, 2))
    res = small_db.solve_from_centroids(noise, image_width=1024, image_height=768,
                                        fov_range_deg=(14.0, 16.0), solve_timeout_ms=1)
    assert res.message == "no match within 1 ms"
