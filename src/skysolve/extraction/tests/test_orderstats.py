"""The small-sample order statistics equal numpy's to the bit."""

from __future__ import annotations

import numpy as np
import pytest

from skysolve.extraction.orderstats import (
    largest_first,
    median,
    percentiles,
    row_medians,
    running_median,
)


def test_percentiles_as_numpy():
    """The noise grid's 10th and 90th percentiles (and the fits' upper quartiles) equal
    numpy's (linear) to the bit, on samples of every size from one up, integer-valued
    ones (ties) included."""
    rng = np.random.default_rng(3)
    for n in list(range(1, 40)) + [192, 399]:
        for scale in (1.0, 1e-6, 1e6):
            grid = rng.normal(10.0, 3.0, (1, n)) * scale
            for g in (grid, np.round(grid)):
                assert percentiles(g, (0.1, 0.9)) == np.percentile(g, [10.0, 90.0]).tolist()
                assert percentiles(g, (0.75, 0.5)) == np.percentile(g, [75.0, 50.0]).tolist()


def test_percentiles_of_nan_and_empty_samples_are_nan():
    assert np.isnan(percentiles(np.array([1.0, np.nan, 3.0]), (0.1, 0.9))).all()
    assert np.isnan(percentiles(np.zeros(0), (0.5,))).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.uint16])
def test_median_as_numpy(dtype):
    """Odd and even counts, ties, float32 (whose mean of the two middle values numpy takes
    in float32) and integers; sorted (small) and partitioned (from 1,024 values) samples,
    2-D ones too."""
    rng = np.random.default_rng(4)
    for n in list(range(1, 50)) + [400, 1001, 1023, 1024, 1025, 6348, 6349]:
        v = (rng.normal(100.0, 30.0, n) * rng.uniform(0.01, 100.0)).astype(dtype)
        assert median(v) == float(np.median(v))
        assert median(np.round(v / 7.0)) == float(np.median(np.round(v / 7.0)))
        if n > 1000:
            grid = v[:n - n % 2].reshape(2, -1).T  # (a strided 2-D view)
            assert median(grid) == float(np.median(grid))
    for n in (4, 2048):  # no wrap-around of the two middle values' sum
        top = np.tile(np.array([65535, 65534, 65533, 65532], dtype=np.uint16), n // 4)
        assert median(top) == float(np.median(top)) == 65533.5
    for n in (4, 2048):  # half floats near their largest: no overflow to inf either
        top = np.tile(np.array([60000, 59968, 59936, 59904], dtype=np.float16), n // 4)
        assert median(top) == float(np.median(top)) and np.isfinite(median(top))


def test_median_of_nan_and_empty_samples_is_nan():
    assert np.isnan(median(np.array([1.0, np.nan, 3.0])))
    assert np.isnan(median(np.zeros(0)))
    rng = np.random.default_rng(5)
    for n in (1024, 1025):  # partitioned: a NaN anywhere, one or many
        for at in (0, n // 2, n - 1):
            v = rng.normal(size=n).astype(np.float32)
            v[at] = np.nan
            assert np.isnan(median(v))
            v[: n // 3] = np.nan
            assert np.isnan(median(v))


def test_largest_first_as_a_stable_argsort():
    """The positions of the k largest values, largest first, are a stable argsort's of
    the negated sample, to the position: small samples and large ones (selected first),
    ties at the k-th value (whole numbers), zeros of both signs, infinities, NaN (last;
    more NaN than room: the whole sample sorted), k of 0, 1, the size and beyond."""
    rng = np.random.default_rng(12)
    for n in (1, 50, 2047, 2048, 7600):
        for kind in ("normal", "ties", "signed zeros", "nan", "mostly nan", "inf"):
            v = rng.normal(0.0, 5.0, n)
            if kind == "ties":
                v = np.round(v)
            elif kind == "signed zeros":
                v = np.where(rng.random(n) < 0.5, 0.0, -0.0) * (rng.random(n) < 0.9)
            elif kind == "nan":
                v[rng.random(n) < 0.2] = np.nan
            elif kind == "mostly nan":
                v[rng.random(n) < 0.99] = np.nan
            elif kind == "inf":
                v[rng.random(n) < 0.1] = np.inf
            for k in (0, 1, 100, 200, n, n + 5):
                np.testing.assert_array_equal(largest_first(v, k),
                                              np.argsort(-v, kind="stable")[:k])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_medians_as_numpy(dtype):
    """Odd and even rows, ties, the two middle values' mean in the array's own type, a
    strided band of a frame's columns, NaN anywhere in a row."""
    rng = np.random.default_rng(6)
    for n in (1, 2, 3, 8, 145, 146, 1024):
        for scale in (1.0, 1e-5, 3e4):
            v = (rng.normal(300.0, 20.0, (40, n)) * scale).astype(dtype)
            for a in (v, np.round(v / (7.0 * scale)), v[::2, ::-1]):
                got = row_medians(a)
                assert got.dtype == a.dtype
                np.testing.assert_array_equal(got, np.median(a, axis=1))
    frame = rng.normal(300.0, 20.0, (64, 512)).astype(dtype)
    band = frame[:, 146:292]  # (as the banding test takes a stretch of every row)
    np.testing.assert_array_equal(row_medians(band), np.median(band, axis=1))
    band = band.copy()
    band[3, 0] = band[7, -1] = band[9, 70] = np.nan
    band[11] = np.nan
    got = row_medians(band)
    np.testing.assert_array_equal(got, np.median(band, axis=1))
    assert np.isnan(got[[3, 7, 9, 11]]).all() and np.isfinite(np.delete(got, [3, 7, 9, 11])).all()


@pytest.mark.parametrize("size", [1, 3, 5, 65])
@pytest.mark.parametrize("rows", [1, 2, 30, 768])
def test_running_median_as_scipy(size, rows):
    """The levels of a frame's stretches of rows smoothed over a window: scipy's median
    filter along the first axis, edges replicated, to the bit (windows longer than the
    column too)."""
    from scipy import ndimage

    rng = np.random.default_rng(rows * 100 + size)
    for level in (rng.normal(300.0, 5.0, (rows, 7)), np.round(rng.normal(300.0, 2.0, (rows, 3))),
                  np.cumsum(rng.normal(0.0, 1.0, (rows, 5)), axis=0)):
        expected = ndimage.median_filter(level, size=(size, 1), mode="nearest")
        np.testing.assert_array_equal(running_median(level, size), expected)
