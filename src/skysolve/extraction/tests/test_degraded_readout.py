"""Extraction on frames a degraded readout or calibration left: lost rows or columns,
small integer noise, a sky clipped at zero, low-noise flat-divided floats.

Frames are scattered Gaussian stars on a noisy sky with exact truth
(:mod:`skysolve.tests.frames`).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from skysolve.extraction import extract_centroids
from skysolve.tests.frames import render_stars, scattered_stars

SHAPE = (384, 512)


def stars(seed: int, flux: tuple[float, float], sigma: float = 1.2):
    """Scattered stars without sky or noise: ``(rng, x, y, image)``."""
    rng = np.random.default_rng(seed)
    x, y = scattered_stars(rng, SHAPE)
    f = np.exp(rng.uniform(np.log(flux[0]), np.log(flux[1]), len(x)))
    return rng, x, y, render_stars(SHAPE, x, y, f, sigma)


def matched(res, x, y, radius: float = 1.5):
    """``(true index of every kept centroid or -1, dx, dy)``."""
    xy = res.as_array()[:, :2]
    d, i = cKDTree(np.column_stack([x, y])).query(xy)
    i = np.where(d <= radius, i, -1)
    return i, xy[:, 0] - x[i], xy[:, 1] - y[i]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("axis", [0, 1])
def test_every_second_row_or_column_lost_finds_each_star_once(seed, axis):
    # an interlaced or defective readout: every second row (column) NaN. Each star was
    # cut into one-row pieces, found 1-3 times, 140 of 290 detections no star's
    rng, x, y, light = stars(seed, (3000.0, 60000.0))
    img = light + 1000.0 + rng.normal(0.0, 10.0, SHAPE)
    if axis == 0:
        img[1::2] = np.nan
    else:
        img[:, 1::2] = np.nan
    res = extract_centroids(img)
    idx, dx, dy = matched(res, x, y)
    hit = idx >= 0
    assert np.count_nonzero(~hit) <= 2  # detections on no star
    assert len(np.unique(idx[hit])) == np.count_nonzero(hit)  # each star once
    assert np.count_nonzero(hit) >= 0.97 * len(x)
    across = dy[hit] if axis == 0 else dx[hit]  # the axis the gaps cut
    along = dx[hit] if axis == 0 else dy[hit]
    assert np.sqrt(np.mean(across ** 2)) < 0.1
    assert abs(np.mean(across)) < 0.03
    assert np.sqrt(np.mean(along ** 2)) < 0.03


def test_a_masked_column_beside_a_star_still_joins_its_halves():
    # a one-pixel masked column through stars (a bad column of the mask): the halves
    # either side are one detection, centred on the star
    rng, x, y, light = stars(2, (5000.0, 60000.0))
    img = light + 1000.0 + rng.normal(0.0, 10.0, SHAPE)
    cols = np.round(x[:10] + SHAPE[1] / 2 - 0.5).astype(int)  # through ten stars' peaks
    mask = np.zeros(SHAPE, bool)
    mask[:, cols] = True
    res = extract_centroids(np.ma.MaskedArray(img, mask))
    idx, dx, dy = matched(res, x, y)
    hit = idx >= 0
    assert np.count_nonzero(~hit) <= 1
    assert len(np.unique(idx[hit])) == np.count_nonzero(hit)
    assert set(range(10)) <= set(idx[hit].tolist())
    on = np.isin(idx, np.arange(10))
    assert np.max(np.hypot(dx[on], dy[on])) < 0.15


@pytest.mark.parametrize("noise", [0.8, 1.2, 1.6, 2.2])
@pytest.mark.parametrize("sky", [100.0, 100.3])
def test_integer_sky_under_a_few_counts_of_noise_measures_its_noise(noise, sky):
    # the MAD of integer residuals is a whole number of counts: 1.48 for any noise of
    # 0.8-2.2 counts. The known sigma of the rounded Gaussian noise must be measured
    rng, x, y, light = stars(3, (100.0, 3000.0))
    img = np.round(light + sky + rng.normal(0.0, noise, SHAPE)).astype(np.uint16)
    res = extract_centroids(img)
    assert res.background_sigma == pytest.approx(noise, rel=0.12)
    idx, _, _ = matched(res, x, y)
    assert np.count_nonzero(idx < 0) <= 2


def peaks(light: np.ndarray, x, y) -> np.ndarray:
    """The rendered light in each star's central pixel."""
    return light[np.round(y + SHAPE[0] / 2 - 0.5).astype(int),
                 np.round(x + SHAPE[1] / 2 - 0.5).astype(int)]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("sky", [-1.0, 0.0, 0.5, 1.0])
def test_integer_sky_clipped_at_zero_under_few_counts(seed, sky):
    # a sky of about a count under 3 counts of noise, clipped at 0 (half the pixels or
    # more): its noise read 1.3-1.9 counts, and frames kept 10-120 peaks of noise
    noise = 3.0
    rng, x, y, light = stars(seed, (30.0, 3000.0), sigma=1.1)
    img = np.clip(np.round(light + sky + rng.normal(0.0, noise, SHAPE)), 0, None)
    res = extract_centroids(img.astype(np.uint16))
    assert res.background_sigma == pytest.approx(noise, rel=0.12)
    idx, _, _ = matched(res, x, y)
    assert np.count_nonzero(idx < 0) <= 2
    clear = peaks(light, x, y) > 8.0 * noise  # stars whose peak stands 8 sigmas up
    assert np.isin(np.flatnonzero(clear), idx).mean() >= 0.97


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("sky", [5.0, 10.0])
def test_flat_divided_counts_under_a_fraction_of_a_count_of_noise(seed, sky):
    # counts (read noise 0.3) divided by a vignetting flat and by the sky: a float32
    # frame at ~1.0 on no single lattice. Neighbours sharing a count differ only by the
    # flat's drift, which the MAD measured (a 20th of the noise): 77-98 peaks of noise
    # here at a sky of 5 counts, 180-1,600 a 1024x768 frame at 5-10
    rng, x, y, light = stars(seed, (0.3 * sky, 30.0 * sky))
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    flat = 1.0 - 0.3 * (np.hypot(xx - SHAPE[1] / 2, yy - SHAPE[0] / 2) / 320.0) ** 2
    assert flat.min() >= 0.69
    counts = np.round((light + sky) * flat + rng.normal(0.0, 0.3, SHAPE))
    res = extract_centroids((counts / flat / sky).astype(np.float32))
    idx, dx, dy = matched(res, x, y)
    assert np.count_nonzero(idx < 0) <= 2
    # a star whose peak stands 5 counts up (10 half-counts: the noise of counts under
    # less than a count) is found
    clear = peaks(light, x, y) * flat.min() > 5.0
    assert clear.sum() >= 10
    assert np.isin(np.flatnonzero(clear), idx).mean() >= 0.95
    assert np.median(np.hypot(dx, dy)[idx >= 0]) < 0.25


def test_lost_rows_under_a_sky_gradient_keep_the_noise():
    # the lost rows were filled flat at the frame's median: under a gradient the
    # difference between them and the measured rows passed for noise (a real frame:
    # 220 counts for 142), which raised the threshold on the measured rows
    rng, x, y, light = stars(4, (1500.0, 60000.0))
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    img = light + 1000.0 + 1.5 * xx + 1.0 * yy + rng.normal(0.0, 10.0, SHAPE)
    img[1::2] = np.nan
    res = extract_centroids(img)
    assert res.background_sigma == pytest.approx(10.0, rel=0.1)
    idx, _, _ = matched(res, x, y)
    assert np.count_nonzero(idx < 0) <= 2
    assert len(np.unique(idx[idx >= 0])) >= 0.97 * len(x)
