"""Wide types with a large offset: results in image units."""

from __future__ import annotations

import warnings

import numpy as np

from skysolve.extraction import extract_centroids
from skysolve.tests.frames import render_stars


def _field(shape=(256, 320), n=40, seed=0):
    rng = np.random.default_rng(seed)
    h, w = shape
    x = rng.uniform(20 - w / 2, w / 2 - 20, n)
    y = rng.uniform(20 - h / 2, h / 2 - 20, n)
    f = np.exp(rng.uniform(np.log(3e3), np.log(6e4), n))
    img = render_stars(shape, x, y, f, 1.2) + 1000.0 + rng.normal(0.0, 10.0, shape)
    return img, x, y


def test_a_large_offset_of_a_wide_type_keeps_background_and_saturation_in_image_units():
    img, _, _ = _field()
    clipped = np.minimum(img, 4000.0)
    ref = extract_centroids(clipped, saturation_level=4000.0)
    assert ref.saturated.sum() > 0
    for offset, dtype in ((1e7, np.float64), (2**24, np.int64)):
        res = extract_centroids((clipped + offset).astype(dtype), saturation_level=4000.0 + offset)
        assert abs(res.background_mean - (ref.background_mean + offset)) < 1.0
        np.testing.assert_array_equal(res.saturated, ref.saturated)


def test_float64_values_beyond_float32_range_keep_their_stars_in_image_units():
    # float32 holds up to 3.4e38: the working copy once turned such a frame into inf and
    # lost every star, with only numpy's cast warning
    img, x, y = _field()
    clipped = np.minimum(img, 4000.0)
    for scale in (2.0**140, 1e40, 1e300):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            res = extract_centroids(clipped * scale, saturation_level=4000.0 * scale)
        got = res.as_array()
        assert len(got) >= 35
        d = np.hypot(got[:, 0, None] - x, got[:, 1, None] - y).min(axis=1)
        # (clipped stars keep their intensity centroids, a blend lies between its stars)
        assert np.sum(d[~res.saturated] < 0.1) >= 20
        # background, noise and brightness come back in the image's units
        assert abs(res.background_mean / scale - 1000.0) < 2.0
        assert 8.0 < res.background_sigma / scale < 12.0
        assert res.saturated.any()
        assert np.all(res.threshold > 0) and np.isfinite(res.threshold)


def test_a_few_huge_pixels_are_bad_pixels_not_the_frames_scale():
    # one sentinel or corrupt value far beyond float32's range (1e300) once set the scale
    # that divides the frame into float32's range: every other pixel became 0 and no star
    # was left; a few such pixels are bad pixels, as inf ones are
    img, x, y = _field()
    ref = extract_centroids(img)
    for value in (1e39, 1e300, np.inf):
        hit = img.copy()
        hit[5, 7] = value
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            res = extract_centroids(hit)
        np.testing.assert_allclose(res.as_array(), ref.as_array(), atol=1e-6)
        assert abs(res.background_sigma - ref.background_sigma) < 0.1
    # ... on a frame of a few hundred pixels too (one pixel is more than a 0.1 % share)
    small = render_stars((24, 24), np.array([0.3]), np.array([-0.6]), np.array([5e4]), 1.2) \
        + 1000.0 + np.random.default_rng(2).normal(0.0, 10.0, (24, 24))
    small[0, 0] = 1e300
    got = extract_centroids(small).as_array()
    assert len(got) == 1 and np.hypot(got[0, 0] - 0.3, got[0, 1] + 0.6) < 0.1
