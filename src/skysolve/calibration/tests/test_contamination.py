"""Calibration with contaminated matches: the clipping must find the bad pairs.

Frames of a TESS-like camera (known distortion) are simulated with 0.05 px
centroid noise; a fraction of the centroids is then pushed a fixed distance in a
random direction (blends, cosmic-ray hits, a bad centroid), small enough that the
solver still matches them. Which pairs are bad is known, so the fit is checked
against the truth: how many pairs it rejects, the residual of the rest, and the
fitted mapping against the true camera. Only the public ``calibrate_camera`` is
used.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from skysolve.simulate import random_attitudes, simulate_centroids, tess_like_camera

NOISE_PX = 0.05
CLEAN_RMS_PX = NOISE_PX * math.sqrt(2)  # rms length of 2-D Gaussian noise, 0.0707 px
SIZE = 2048


@pytest.fixture(scope="module")
def clean_frames(hip_catalog):
    truth = tess_like_camera()
    rots = random_attitudes(6, rng=7)
    sims = [simulate_centroids(hip_catalog, truth, R, epoch_year=2025.0,
                               centroid_noise_px=NOISE_PX, num_stars=300, seed=k)
            for k, R in enumerate(rots)]
    return truth, rots, [s.centroids for s in sims]


def _contaminate(cents, fraction, size_px, rng):
    out, bad = [], []
    for c in cents:
        c = c.copy()
        idx = rng.choice(len(c), int(round(fraction * len(c))), replace=False)
        angle = rng.uniform(0.0, 2.0 * math.pi, len(idx))
        c[idx, 0] += size_px * np.cos(angle)
        c[idx, 1] += size_px * np.sin(angle)
        out.append(c)
        bad.append(idx)
    return out, bad


def _mapping_rms_px(camera, rotation, truth, true_rotation, n=9):
    """RMS pixel distance, over a grid on the frame, between where the fitted camera and
    attitude and the true ones image the same sky direction."""
    g = np.linspace(-SIZE / 2 + 0.5, SIZE / 2 - 0.5, n)
    x, y = (a.ravel() for a in np.meshgrid(g, g))
    sky = camera.pixel_to_vectors(x, y) @ rotation
    px, py = truth.vectors_to_pixel(sky @ true_rotation.T)
    return float(np.sqrt(np.mean((px - x) ** 2 + (py - y) ** 2)))


# (fraction of centroids, offset px): measured with the robust (MAD) clipping, 105 of the
# 112 matched bad pairs rejected and an rms of 0.073 px, and 275 of 275 with 0.071 px; a
# plain-rms clipping rejects 25 and 0 of them, leaving 0.106 and 0.258 px.
@pytest.mark.parametrize("fraction,size_px", [(0.1, 0.3), (0.25, 0.5)])
def test_clipping_rejects_the_contaminated_pairs(small_db, clean_frames, fraction, size_px):
    truth, rots, cents = clean_frames
    cents, bad = _contaminate(cents, fraction, size_px, np.random.default_rng(1))
    results = [small_db.solve_from_centroids(c, camera_model=truth, match_radius=0.002)
               for c in cents]
    assert all(results)
    pairs = sum(r.num_matches for r in results)
    n_bad = sum(np.isin(b, r.matched_centroids).sum() for b, r in zip(bad, results, strict=True))
    assert n_bad >= 0.8 * fraction * pairs  # the solver kept the bad centroids matched
    cal = small_db.calibrate_camera(results, cents, image_shape=(SIZE, SIZE))
    # the bad pairs go, the good stay: the clip is 3 x the robust rms length (0.21 px), which
    # a clean pair exceeds with probability exp(-9) ~ 1e-4 (~0.1 of 1,000 pairs; clipping at
    # 3 x the per-axis scatter instead, 0.15 px, would throw away ~1 % of them)
    assert 0.85 * n_bad <= cal.n_outliers <= n_bad + 0.003 * pairs
    # the rest fit as well as the uncontaminated frames do (their rms sits ~5 % above the
    # 0.0707 px noise: the fit's own parameters and the magnitude weights); a plain-rms
    # clipping leaves 0.106 and 0.258 px
    clean = [small_db.solve_from_centroids(c, camera_model=truth, match_radius=0.002)
             for c in clean_frames[2]]
    clean_rms = small_db.calibrate_camera(clean, clean_frames[2],
                                          image_shape=(SIZE, SIZE)).rmse_after_px
    assert CLEAN_RMS_PX <= clean_rms < 1.08 * CLEAN_RMS_PX
    assert cal.rmse_after_px < 1.05 * clean_rms
    for R, T in zip(cal.rotations, rots, strict=True):
        assert _mapping_rms_px(cal.camera_model, R, truth, T) < 0.05


def test_a_frame_of_another_camera_is_named_and_left_out(small_db):
    """One frame of another camera among six: the fit rejects all its stars. That used
    to happen silently, and its mapping_sigma_px (its attitude taken as exact) looked as
    good as the others'; then it was named in a warning, with a NaN sigma; now it is
    left out of the fit, named with why (``excluded_images``), and has no sigma, as a
    failed solve."""
    from skysolve import CameraModel, InvalidArgumentError, RadialDistortion

    from .synthetic import synthetic_solves

    lens = CameraModel(4000.0, 1024, 1024, distortion=RadialDistortion(-2e-8))
    other = CameraModel(4100.0, 1024, 1024, crpix=(-40.0, 20.0),
                        distortion=RadialDistortion(1e-8))
    res, cents = synthetic_solves(small_db, [lens] * 5 + [other], random_attitudes(6, rng=3),
                                  0.1, seed=3, max_stars=100)
    with pytest.warns(UserWarning, match=r"left out of the calibration.*: 5: \d of its 100 "):
        cal = small_db.calibrate_camera(res, cents, validation_folds=0)
    assert list(cal.excluded_images) == [5]
    assert cal.per_image_inliers[5] is None and cal.num_images == 5
    with pytest.raises(InvalidArgumentError, match="did not take part"):
        cal.mapping_sigma_px([0.0, 300.0], [0.0, -300.0], image=5)
    assert np.all(np.isfinite(cal.mapping_sigma_px([0.0, 300.0], [0.0, -300.0], image=4)))
    # the rms over the images is over those that took part
    assert np.isfinite(cal.mapping_sigma_px(0.0, 0.0))


def test_an_image_whose_stars_are_mostly_displaced_is_named(small_db):
    """90 of one image's 100 matched centroids moved by ~20 px: re-matching under the
    fitted camera drops them before the clipping sees them, so the image kept 6 of 6
    pairs and the warning, counting against those, named nothing; it was counted against
    the stars the solve matched, and the image named; now it is left out, with the
    count of its solve's stars that fit the others' camera."""
    from skysolve import CameraModel, RadialDistortion

    from .synthetic import synthetic_solves

    lens = CameraModel(4000.0, 1024, 1024, distortion=RadialDistortion(-2e-8))
    res, cents = synthetic_solves(small_db, [lens] * 6, random_attitudes(6, rng=3), 0.1,
                                  seed=3, max_stars=100)
    rng = np.random.default_rng(0)
    moved = rng.choice(100, 90, replace=False)
    cents[5][moved, :2] += rng.normal(scale=20.0, size=(90, 2))
    with pytest.warns(UserWarning, match=r"left out of the calibration.*: 5: \d+ of its 100 "):
        cal = small_db.calibrate_camera(res, cents, validation_folds=0)
    assert list(cal.excluded_images) == [5]
    assert min(cal.per_image_inliers[:5]) >= 95
