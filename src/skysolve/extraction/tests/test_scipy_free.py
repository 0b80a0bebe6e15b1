"""The numpy code that stands in for ``scipy.ndimage`` in extraction, against scipy.

Extraction without a matched filter imports no scipy (a one-shot solve would pay
~0.2 s for it): the numpy labeller of the candidate pixels and the 3x3 filters of
the background grid must give scipy's answers exactly, numbering included, and a
whole extraction the same result with either labeller.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy import ndimage

from skysolve.extraction import extract_centroids
from skysolve.extraction.background import _filter3
from skysolve.extraction.linking import label_pixels
from skysolve.tests.frames import tess_like_frame

EIGHT = np.ones((3, 3), dtype=bool)


def _check_labels(mask: np.ndarray) -> int:
    expected, n = ndimage.label(mask, structure=EIGHT)
    idx = np.flatnonzero(mask)
    lab, count = label_pixels(idx, mask.shape[1])
    assert count == n
    np.testing.assert_array_equal(lab, expected.ravel()[idx])
    return n


@pytest.mark.parametrize("seed", range(60))
def test_labels_of_random_masks_as_scipy(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 80, 2))
    mask = rng.random(shape) < rng.uniform(0.0, 0.9)
    if seed % 2:  # bigger, irregular blobs
        mask = ndimage.binary_dilation(mask)
    _check_labels(mask)


def test_labels_of_long_and_big_blobs_as_scipy():
    """A one-pixel path folded over the whole frame (every row joined to the next at
    alternate ends, so that labels must travel its whole length), a disc, and blobs
    touching only diagonally or across the frame's left and right edges (which must
    not join: no wrap-around between the end of a row and the start of the next)."""
    snake = np.zeros((201, 150), dtype=bool)
    snake[::2] = True
    for r in range(1, 201, 2):
        snake[r, -1 if r % 4 == 1 else 0] = True
    assert _check_labels(snake) == 1
    yy, xx = np.mgrid[:300, :400]
    assert _check_labels((xx - 200) ** 2 + (yy - 150) ** 2 < 120 ** 2) == 1
    diagonal = np.eye(30, dtype=bool) | np.eye(30, dtype=bool)[::-1]
    assert _check_labels(diagonal) == 1
    edges = np.zeros((10, 12), dtype=bool)
    edges[3, -1] = edges[4, 0] = edges[6, 0] = edges[5, -1] = True
    assert _check_labels(edges) == 4
    assert label_pixels(np.zeros(0, np.intp), 7)[1] == 0


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (3, 3), (9, 13), (2, 7), (64, 97)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties", [False, True])
def test_grid_filters_as_scipy(shape, dtype, ties):
    grid = np.random.default_rng(1).normal(100.0, 5.0, shape).astype(dtype)
    grid.flat[0] = grid.flat[-1]  # ties too
    if ties:
        grid = np.round(grid / 3.0)  # many
    for scipy_filter, kind in ((ndimage.minimum_filter, "min"),
                               (ndimage.maximum_filter, "max"),
                               (ndimage.median_filter, "median")):
        expected = scipy_filter(grid, size=3, mode="nearest")
        got = _filter3(grid, kind)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_numpy_extraction_is_the_same_with_either_labeller(monkeypatch):
    """The numpy path labels with scipy when it is loaded already (or the candidates are
    many), else with its own labeller: the same stars, flags and rejections either way."""
    img = tess_like_frame(seed=5, shape=(512, 512), n_stars=600)[0]
    with_scipy = extract_centroids(img, backend="reference")
    monkeypatch.delitem(sys.modules, "scipy.ndimage")  # as in a one-shot process
    with_numpy = extract_centroids(img, backend="reference")
    assert len(with_numpy.centroids) == len(with_scipy.centroids) > 100
    np.testing.assert_array_equal(with_numpy.as_array(), with_scipy.as_array())
    np.testing.assert_array_equal(with_numpy.flags, with_scipy.flags)
    np.testing.assert_array_equal(with_numpy.rejected, with_scipy.rejected)
