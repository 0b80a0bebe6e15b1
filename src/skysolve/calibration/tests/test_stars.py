"""More and better stars: re-matching, catalog matches, magnitude bins and weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skysolve.centroids import Centroid, ExtractionResult
from skysolve.simulate import random_attitudes

from .synthetic import mapping_error_px, synthetic_solves
from .test_uncertainty import GX, GY, NOISE_PX, truth_camera


def _extraction(cents: np.ndarray, saturated: np.ndarray) -> ExtractionResult:
    ext = ExtractionResult([Centroid(x, y, b) for x, y, b in cents], 1024, 1024)
    ext.saturated = saturated
    return ext


def _grid_error(cal, truth, rots) -> float:
    err = np.concatenate([mapping_error_px(cal.image_camera(i), cal.rotations[i], truth, R,
                                           GX, GY) for i, R in enumerate(rots)])
    return math.sqrt(np.mean(err ** 2))


def test_saturated_bias_is_reported_and_weighted_down(small_db):
    """Saturated stars, biased along the columns as bleeding makes them, get a bin of
    their own whose bias is reported and whose weight keeps them from pulling the fit."""
    truth = truth_camera()
    rots = random_attitudes(4, rng=21)
    res, cents = synthetic_solves(small_db, [truth] * 4, rots, NOISE_PX, seed=21,
                                  max_stars=300)
    sets = []
    for c in cents:
        sat = np.zeros(len(c), dtype=bool)
        sat[:40] = True  # the brightest 40 (brightest first)
        c = c.copy()
        c[sat, 1] += 0.12 + np.random.default_rng(1).normal(0, 0.08, sat.sum())
        sets.append(_extraction(c, sat))
    cal = small_db.calibrate_camera(res, sets, order=3)
    bins = cal.magnitude_bins
    sat_bin = [b for b in bins if b["saturated"]]
    assert len(sat_bin) == 1 and sat_bin[0]["n"] > 100
    assert sat_bin[0]["bias_y_px"] == pytest.approx(0.12, abs=0.03)
    plain = [b for b in bins if not b["saturated"]]
    assert len(plain) >= 2 and all(abs(b["bias_y_px"]) < 0.02 for b in plain)
    assert sat_bin[0]["weight"] < 0.5 * min(b["weight"] for b in plain)
    unweighted = small_db.calibrate_camera(res, sets, order=3, magnitude_weights=False)
    assert all(b["weight"] == 1.0 for b in unweighted.magnitude_bins)
    assert _grid_error(cal, truth, rots) < _grid_error(unweighted, truth, rots)
    assert "saturated" in cal.summary()


def test_wrong_matches_are_rematched(small_db):
    """A first calibration from uncalibrated solves can have a large part of its pairs
    matched to the wrong centroid: re-matching under the fit recovers the camera."""
    truth = truth_camera()
    rots = random_attitudes(4, rng=31)
    res, cents = synthetic_solves(small_db, [truth] * 4, rots, NOISE_PX, seed=31,
                                  max_stars=200)
    rng = np.random.default_rng(3)
    bad_res = []
    for r, c in zip(res, cents, strict=True):
        # crowd each frame with decoys and point 40 % of the matches at decoys nearby
        decoys = c[:, :2] + rng.normal(0, 3.0, (len(c), 2))
        full = np.vstack([c, np.column_stack([decoys, c[:, 2] * 0.5])])
        idx = np.asarray(r.matched_centroids).copy()
        wrong = rng.random(len(idx)) < 0.4
        idx[wrong] += len(c)
        r2 = type(r)(**{**r.__dict__, "matched_centroids": idx})
        bad_res.append((r2, full))
    results = [b[0] for b in bad_res]
    sets = [b[1] for b in bad_res]
    cal = small_db.calibrate_camera(results, sets, order=3)
    assert _grid_error(cal, truth, rots) < 0.05
    assert cal.rmse_after_px == pytest.approx(NOISE_PX * math.sqrt(2), rel=0.2)
    assert cal.n_inliers > 0.9 * sum(len(c) for c in cents)
    # as the solves gave them (no clipping, hence no re-matching) they spoil the fit
    loose = small_db.calibrate_camera(results, sets, order=3, sigma_clip=math.inf)
    assert loose.rmse_after_px > 10 * cal.rmse_after_px


def test_catalog_stars_are_added(small_db, hip_catalog):
    """Stars of a deeper catalog are matched to the centroids no database star took."""
    truth = truth_camera()
    rots = random_attitudes(3, rng=41)
    res, cents = synthetic_solves(small_db, [truth] * 3, rots, NOISE_PX, seed=41,
                                  max_stars=400)
    # the solves matched only the brightest 60 of each frame
    few = [type(r)(**{**r.__dict__, "matched_centroids": np.arange(60),
                      "matched_catalog_ids": np.asarray(r.matched_catalog_ids)[:60]})
           for r in res]
    base = small_db.calibrate_camera(few, cents, order=3, validation_folds=0)
    more = small_db.calibrate_camera(few, cents, order=3, validation_folds=0,
                                     catalog=hip_catalog)
    assert more.n_inliers > 3 * base.n_inliers
    assert _grid_error(more, truth, rots) < _grid_error(base, truth, rots)
    assert more.rmse_after_px == pytest.approx(NOISE_PX * math.sqrt(2), rel=0.2)


@pytest.mark.parametrize("projection, fov, k1, mag", [("equidistant", 100.0, 0.0, 8.0),
                                                      ("pinhole", 15.0, -0.1, 99.0)])
def test_catalog_stars_are_added_out_to_the_corners(hip_catalog, projection, fov, k1, mag):
    """A deeper catalog's stars are looked for in a cone reaching the image's corners as
    the camera sees them: the cone took a pinhole's ``atan`` of the raw corner distance,
    which left out every star of an equidistant 100 deg lens beyond 50 deg of its axis
    (its corners see 62 deg), and the corners of a 15 deg lens whose distortion moves
    them in by 10 %. Every isolated star in the image is added to its isolated
    centroid (the centroids: where the camera images the catalog's stars)."""
    from skysolve.calibration.lsq import Pairs
    from skysolve.calibration.matching import ISOLATION_PX, _isolated, _one_image
    from skysolve.camera import CameraModel, RadialDistortion

    w, h = 1024, 768
    cam = CameraModel.from_fov(fov, w, h, projection=projection,
                               distortion=RadialDistortion(k1, scale=0.5 * math.hypot(w, h)))
    cat = hip_catalog.select(np.flatnonzero(np.asarray(hip_catalog.mag) < mag))
    R = random_attitudes(1, rng=4)[0]
    v = cat.vectors()
    x, y = cam.vectors_to_pixel(v @ R.T)
    inside = np.isfinite(x) & np.isfinite(y) & (abs(x) < 0.5 * w) & (abs(y) < 0.5 * h)
    # (a barrel polynomial folds back: far stars it maps into the image are not imaged)
    back = cam.pixel_to_vectors(x[inside], y[inside])
    rows = np.flatnonzero(inside)[np.einsum("ij,ij->i", back, v[inside] @ R.T) > 1 - 1e-12]
    xy = np.stack([x[rows], y[rows]], axis=1)
    im = Pairs(0, xy[:0], v[:0], np.zeros(0), np.zeros(0, bool), R, centroids=xy,
               cidx=np.zeros(0, np.intp))
    added = _one_image(cat, im, cam, None, 1.0)
    alone = np.flatnonzero(_isolated(xy, ISOLATION_PX))
    corner = 0.5 * math.hypot(w, h)
    assert np.hypot(*xy[alone].T).max() > 0.95 * corner  # (stars out in the corners)
    assert added == len(alone)
    np.testing.assert_array_equal(np.sort(im.cidx), alone)
    np.testing.assert_allclose(im.stars, v[rows[im.cidx]], atol=1e-12)
