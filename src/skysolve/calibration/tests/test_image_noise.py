"""Images of different quality: each is weighted and clipped by its own noise.

One frame with 0.01 px centroids beside seven with 0.1 px (a long exposure beside
short ones, good seeing beside bad): a clipping threshold shared by all images
follows the tight frame, and the noisy frames lost most of their good stars (4-7 of
30 kept) and took almost no part in the fit. Each frame's own noise scale sets its
weight and its clipping now; stars displaced by eight times their own frame's noise
are still found, in the tight frame and in the noisy ones.
"""

from __future__ import annotations

import numpy as np
import pytest

from skysolve.calibration.engine import fit_camera
from skysolve.calibration.inputs import image_pairs, pair_lists
from skysolve.calibration.options import CalibrationOptions
from skysolve.simulate import random_attitudes

from .synthetic import mapping_error_px, synthetic_solves
from .test_uncertainty import W, truth_camera

TIGHT_PX, NOISY_PX = 0.01, 0.1  # centroid noise per axis
N_NOISY, NOISY_STARS, TIGHT_STARS = 7, 30, 150
PLANTED = 2  # displaced stars per frame
DISPLACEMENT_SIGMAS = 8.0  # how far, in its frame's noise (per axis)


@pytest.fixture(scope="module")
def mixed(small_db):
    """The solves, centroids and true attitudes of the frames, frame 0 the tight one,
    and which centroids were displaced in each frame."""
    rots = random_attitudes(1 + N_NOISY, rng=np.random.default_rng(5))
    truth = truth_camera()
    res, cents = synthetic_solves(small_db, [truth], rots[:1], TIGHT_PX, seed=5,
                                  max_stars=TIGHT_STARS)
    more = synthetic_solves(small_db, [truth] * N_NOISY, rots[1:], NOISY_PX, seed=6,
                            max_stars=NOISY_STARS)
    res, cents = res + more[0], cents + more[1]
    rng = np.random.default_rng(7)
    planted = []
    for k, c in enumerate(cents):
        idx = rng.choice(len(c), PLANTED, replace=False)
        angle = rng.uniform(0.0, 2.0 * np.pi, PLANTED)
        sigma = TIGHT_PX if k == 0 else NOISY_PX
        c[idx, 0] += DISPLACEMENT_SIGMAS * sigma * np.cos(angle)
        c[idx, 1] += DISPLACEMENT_SIGMAS * sigma * np.sin(angle)
        planted.append(idx)
    return res, cents, rots, planted


def test_each_image_is_weighted_and_clipped_by_its_own_noise(small_db, mixed):
    res, cents, rots, planted = mixed
    opts = CalibrationOptions(order=3, validation_folds=0)
    images, cameras, _, w, h = image_pairs(small_db, *pair_lists(res, cents), opts)
    fitted = fit_camera(images, cameras, w, h, opts)
    p = fitted.problem
    for k, im in enumerate(p.images):
        kept = fitted.inliers[p.rows(k)]
        bad = np.isin(im.cidx, planted[im.index])  # (re-matching may have dropped some)
        assert not np.any(kept & bad), f"image {im.index} kept a displaced star"
        # every good star kept but perhaps one (a 3-sigma clip of the rms length loses a
        # Gaussian star with probability exp(-9)); a threshold shared with the tight
        # frame kept 4-7 of the noisy frames' 30
        good = len(cents[im.index]) - PLANTED
        assert kept.sum() >= good - 1, f"image {im.index}: {kept.sum()} of {good} kept"
    # each image's noise scale is its rms residual length (sqrt(2) x the per-axis noise),
    # as well as the MAD of its 30-odd stars tells it (~16 %)
    noise = fitted.noise[np.argsort([im.index for im in p.images])]
    assert noise[0] == pytest.approx(np.sqrt(2) * TIGHT_PX, rel=0.25)
    assert np.all(np.abs(np.log(noise[1:] / (np.sqrt(2) * NOISY_PX))) < np.log(1.6))


def test_the_camera_and_its_uncertainty_follow_from_every_image(small_db, mixed):
    """The shared threshold left the noisy frames a few stars each: their attitudes and
    the camera were worse (the tight frame's mapping 0.0081 px off the truth, the noisy
    frames' 0.063 px, mean of eight draws; now 0.0048 and 0.037 px) and the 1-sigma
    maps claimed a third of the error (rms error / sigma 3.2 over the frames; now 1.05)."""
    res, cents, rots, _ = mixed
    cal = small_db.calibrate_camera(res, cents, order=3, validation_folds=0)
    g = np.linspace(-W / 2 + 0.5, W / 2 - 0.5, 9)
    gx, gy = (a.ravel() for a in np.meshgrid(g, g))
    err = np.array([np.sqrt(np.mean(mapping_error_px(
        cal.image_camera(i), cal.rotations[i], truth_camera(), rots[i], gx, gy) ** 2))
        for i in range(len(res))])
    sigma = np.array([np.sqrt(np.mean(cal.mapping_sigma_px(gx, gy, image=i) ** 2))
                      for i in range(len(res))])
    assert err[0] < 0.006  # 0.0045 px (was 0.0075 on this draw)
    assert np.sqrt(np.mean((err / sigma) ** 2)) < 2.0  # 0.90 (was 2.6)
    # each image's noise scale is reported, in the table and the camera file too
    assert cal.per_image_noise_px[0] < 0.3 * min(cal.per_image_noise_px[1:])
    assert min(cal.per_image_inliers[1:]) >= NOISY_STARS - PLANTED - 1
    assert "noise_px" in cal.summary()
    assert cal.calibration_record()["per_image"]["noise_px"] == pytest.approx(
        cal.per_image_noise_px)
