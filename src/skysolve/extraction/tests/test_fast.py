"""The quick extraction (:mod:`skysolve.extraction.fast`) against the truth, its tests of
shape, and its compiled pass against the numpy code it twins."""

from __future__ import annotations

import numpy as np
import pytest

from skysolve import _jit
from skysolve.extraction import extract_centroids, extract_centroids_fast, fast, kernels
from skysolve.extraction.blobs import neighbour_totals
from skysolve.extraction.fast import (
    _block_medians,
    _candidates,
    _edges,
    _layout,
    _levels,
    _quick,
    _weights,
)
from skysolve.extraction.options import ExtractionOptions
from skysolve.tests.frames import gradient_background, isolated, match_to_truth, render_stars

from .test_extraction import synthetic_scene

numba_only = pytest.mark.skipif(not _jit.available(), reason="numba not available")


def _frame(dtype=np.uint16, seed: int = 0, sky: float = 1000.0, gradient: float = 400.0,
           noise: float = 10.0, shape=(300, 420)):
    """Stars on a steep sky gradient: image (of ``dtype``) and the true x, y, flux."""
    rng = np.random.default_rng(seed)
    h, w = shape
    x = rng.uniform(-w / 2 + 12, w / 2 - 12, 60)
    y = rng.uniform(-h / 2 + 12, h / 2 - 12, 60)
    flux = np.exp(rng.uniform(np.log(3000.0), np.log(60000.0), 60))
    img = render_stars(shape, x, y, flux, 1.2) + gradient_background(shape, sky, gradient)
    img += rng.normal(0.0, noise, shape)
    if np.dtype(dtype).kind in "iu":
        img = np.clip(np.round(img), 0, np.iinfo(dtype).max)
    return img.astype(dtype), x, y, flux


def _quick_options(**kw) -> ExtractionOptions:
    base = dict(matched_filter_sigma=None, deblend="off", fit_positions=False,
                reject_cosmic_rays=False, min_pixels=2, saturation_level=None)
    return ExtractionOptions(**{**base, **kw})


@numba_only
@pytest.mark.parametrize(("dtype", "writeable"), [
    (np.uint8, True), (np.uint8, False), (np.uint16, True), (np.uint16, False),
    (np.float32, True), (np.float64, True)])  # (the types and layouts warm_up compiles)
def test_candidate_pass_is_its_numpy_twin(dtype, writeable):
    img, *_ = _frame(np.uint16 if dtype == np.uint8 else dtype, seed=1)
    if dtype == np.uint8:
        img = (img // 64).astype(np.uint8)
    img.flags.writeable = writeable
    h, w = img.shape
    rng = np.random.default_rng(3)
    for block in (16, 64, 1000):
        k, rows, cols, wr, wc = _layout(h, w, block)
        grid, _ = _levels(img, rows, cols, k)
        for limit, r0, r1 in ((30.0, 0, h), (5.0, 17, 123), (1e9, 0, h)):
            # limits that differ from block to block, as the noise does
            limits = limit * rng.uniform(0.5, 1.5, grid.shape)
            want = _candidates(img, grid, limits, *wr, *wc, r0, r1)
            got = kernels._compile()["sky_candidates"](img, grid, limits, *wr, *wc, r0, r1)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
            assert limit == 1e9 or len(want[0]) > 50


@numba_only
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
def test_block_medians_are_their_numpy_twin(dtype):
    rng = np.random.default_rng(2)
    for k, ny, nx in ((8, 5, 7), (5, 3, 4), (4, 1, 1), (64, 1, 1)):
        samples = rng.normal(100.0, 20.0, (ny * k, nx * k))
        samples = np.clip(samples, 0, 127).astype(dtype)
        want = _block_medians(samples, k)
        got = kernels._compile()["lattice_levels"](samples.astype(np.float64), k)
        np.testing.assert_array_equal(got, want)
        # against the definition, block by block
        assert want[-1, -1] == np.median(samples[-k:, -k:].astype(np.float64))


@numba_only
@pytest.mark.parametrize(("dtype", "writeable"), kernels.QUICK_PIXEL_TYPES)
def test_peak_neighbours_as_numpy(dtype, writeable):
    # the sharpness test's neighbour sums, compiled for the pixels as the quick path reads
    # them: the same sums (numpy's pairwise order) and counts, at the frame's edges too
    rng = np.random.default_rng(6)
    kernels.warm_up()
    img = rng.uniform(0, 250, (40, 30)).astype(dtype)
    img.flags.writeable = writeable
    pr = np.concatenate([rng.integers(0, 40, 50), [0, 0, 39, 39, 20]])
    pc = np.concatenate([rng.integers(0, 30, 50), [0, 29, 0, 29, 0]])
    sky = rng.uniform(0, 100, len(pr))
    got = fast._neighbours(img, pr, pc, sky)
    want = neighbour_totals(img, None, pr, pc, sky)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert sorted(set(got[1].tolist())) == [3, 5, 8]


@numba_only
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16])
def test_block_levels_of_counts_are_their_medians(dtype):
    # a camera's counts take the full extractor's counted medians: the blocks' medians
    # all the same, even sizes (the mean of the two middle values) and odd alike
    rng = np.random.default_rng(4)
    kernels.warm_up()
    for h, w, block in ((300, 420, 64), (97, 61, 16), (40, 40, 1000)):
        img = rng.normal(100.0, 30.0, (h, w))
        img[rng.random((h, w)) < 0.01] = 250.0  # stars and hot pixels among the samples
        img = np.clip(img, 0, 255).astype(dtype)
        k, rows, cols, _, _ = _layout(h, w, block)
        levels, samples = _levels(img, rows, cols, k)
        np.testing.assert_array_equal(samples, img[np.ix_(rows, cols)])
        want = _block_medians(samples, k)
        np.testing.assert_array_equal(levels, want)
        assert levels[0, 0] == np.median(samples[:k, :k].astype(np.float64))


@numba_only
@pytest.mark.parametrize("threads", [1, 3])
def test_quick_extraction_is_the_same_either_way(threads):
    img, _ = synthetic_scene(1.2, seed=3)
    opts = _quick_options(threads=threads, border_margin=3, max_elongation=4.0,
                          saturation_level=60000.0)
    with kernels.backend("reference", threads):
        want = _quick(img, opts)
    with kernels.backend("compiled", threads):
        got = _quick(img, opts)
    np.testing.assert_array_equal(got.as_array(), want.as_array())
    np.testing.assert_array_equal(got.saturated, want.saturated)
    np.testing.assert_array_equal(got.rejected["reason"], want.rejected["reason"])


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_quick_path_finds_the_stars_on_a_steep_gradient(dtype):
    img, x, y, flux = _frame(dtype, seed=4)
    res = extract_centroids_fast(img)
    xy = res.as_array()
    idx, d = match_to_truth(xy[:, 0], xy[:, 1], x, y, radius=1.0)
    iso = isolated(x, y, flux, radius=6.0, flux_ratio=0.01)
    assert (match_to_truth(xy[:, 0], xy[:, 1], x[iso], y[iso], radius=1.0)[0] >= 0).all()
    assert iso.sum() == 53 and (idx >= 0).sum() >= 54  # (of 60: blends of close pairs)
    assert np.median(d[idx >= 0]) < 0.05
    # nothing but stars and blends: the bilinear sky follows the 400-count ramp
    assert len(res) - (idx >= 0).sum() <= 2
    # brightest first, as every extraction; the noise measured near the truth (10: the
    # median of the blocks' own, each from 64 samples)
    assert np.all(np.diff(xy[:, 2]) <= 0)
    assert 9.0 < res.background_sigma < 11.0
    assert not res.fitted.any()


def test_quick_path_rejects_hot_pixels_and_flags_saturation():
    img, t = synthetic_scene(1.5, seed=5)
    res = extract_centroids_fast(img, saturation_level=60000.0)
    xy = res.as_array()
    # the single hot pixels (the last is a pair, whose peak's neighbour holds 5/6 of it:
    # sharpness 0.9, not above it -- the full extractor's fits tell it from a star)
    single = t["hot"][:5]
    hot = match_to_truth(xy[:, 0], xy[:, 1], single[:, 0], single[:, 1], radius=1.5)[0]
    assert (hot < 0).all()
    rej = res.rejected
    near = match_to_truth(rej["x"], rej["y"], single[:, 0], single[:, 1], radius=1.5)[0]
    assert (near >= 0).all() and set(rej["reason"][near]) == {"small"}
    one = extract_centroids_fast(img, min_pixels=1).rejected  # (one pixel is a blob now)
    near = match_to_truth(one["x"], one["y"], single[:, 0], single[:, 1], radius=1.5)[0]
    assert (near >= 0).all() and set(one["reason"][near]) == {"sharp"}
    sat = np.flatnonzero(res.saturated)
    assert len(sat) == 1
    assert np.hypot(*(xy[sat[0], :2] - t["sat"])) < 2.0
    # without a level, nothing is saturated; without the test, the hot pixels come back
    assert not extract_centroids_fast(img).saturated.any()
    loose = extract_centroids_fast(img, min_pixels=1, max_sharpness=None).as_array()
    back = match_to_truth(loose[:, 0], loose[:, 1], t["hot"][:, 0], t["hot"][:, 1], 1.5)[0]
    assert (back >= 0).sum() >= 5


def test_quick_path_shape_and_border_tests():
    shape = (200, 240)
    h, w = shape
    rng = np.random.default_rng(6)
    x = np.array([-100.0, 0.0, 40.0, -50.0])
    y = np.array([0.0, 0.0, 50.0, -60.0])
    img = render_stars(shape, x, y, np.full(4, 40000.0), 1.3) + 500.0
    # a streak (an elongated blob) well inside the frame
    img += render_stars(shape, np.linspace(60, 90, 31), np.full(31, -40.0), np.full(31, 3000.0),
                        1.0)
    img += rng.normal(0.0, 5.0, shape)
    found = extract_centroids_fast(img)
    assert len(found) == 5
    # the star 20 px from the left edge goes with a 25 px margin
    near_edge = extract_centroids_fast(img, border_margin=25)
    assert len(near_edge) == 4 and np.all(near_edge.as_array()[:, 0] > -w / 2 + 25)
    assert list(near_edge.rejected["reason"]) == ["border"]
    long = extract_centroids_fast(img, max_elongation=3.0)
    assert len(long) == 4 and np.all(long.as_array()[:, 0] < 55)
    assert list(long.rejected["reason"]) == ["elongated"]
    assert len(extract_centroids_fast(img, max_centroids=2)) == 2
    # the streak's 31 x ~5 pixels are too many for max_pixels=100
    assert len(extract_centroids_fast(img, max_pixels=100)) == 4
    # a global sky level (bg_grid None or 0) on this flat frame: the same stars
    flat = extract_centroids_fast(img, bg_grid=None).as_array()
    np.testing.assert_allclose(flat[np.argsort(flat[:, 0])],
                               found.as_array()[np.argsort(found.as_array()[:, 0])],
                               atol=0.05, rtol=5e-3)


def test_frames_the_quick_path_cannot_judge_go_to_the_full_extractor():
    img, t = synthetic_scene(1.5, seed=7)
    # NaN pixels (a dead region): no star there, the others found as the full path does
    holed = img.copy()
    holed[:, :100] = np.nan
    res = extract_centroids_fast(holed)
    full = extract_centroids(holed, matched_filter_sigma=None, deblend="off",
                             fit_positions=False, reject_cosmic_rays=False, min_pixels=2,
                             max_elongation=None, local_bg_block_size=64, saturation_level=None)
    np.testing.assert_array_equal(res.as_array(), full.as_array())
    assert np.all(res.as_array()[:, 0] > 100 - 256)
    # a mask: honoured, never a star under it
    masked = np.ma.MaskedArray(img, mask=np.zeros(img.shape, bool))
    masked.mask[:, 256:] = True
    assert len(extract_centroids_fast(masked)) > 20
    assert np.all(extract_centroids_fast(masked).as_array()[:, 0] < 0)


def test_quick_path_drops_burned_in_captions():
    from skysolve.simulate.degrade import text_overlay

    img, x, y, flux = _frame(np.float64, seed=8, gradient=0.0)
    # three lines of text at the frame's full scale along the top edge
    res = extract_centroids_fast(text_overlay(img, 0.5, kind="white", place="top", seed=3))
    xy = res.as_array()
    # every centroid kept is a star, none a glyph (53 stars clear of the text)
    idx, _ = match_to_truth(xy[:, 0], xy[:, 1], x, y, radius=1.5)
    assert len(xy) == (idx >= 0).sum() == 53
    glyphs = res.rejected[res.rejected["reason"] == "overlay"]
    assert len(glyphs) >= 50 and np.all(glyphs["y"] < -80)  # (the top rows)
    # grey text (40 % of the way to full scale): most glyphs go, a few strokes stay
    grey = extract_centroids_fast(text_overlay(img, 0.5, kind="grey", place="top", seed=3))
    assert (grey.rejected["reason"] == "overlay").sum() >= 50


@pytest.mark.parametrize(("shape", "bg_grid"), [((65, 65), 64), ((100, 100), 96),
                                                ((130, 130), 64), ((7, 300), 64),
                                                ((300, 7), 16), ((4, 4), 4),
                                                ((480, 640), 64), ((480, 640), None)])
def test_pure_noise_gives_no_stars_whatever_the_blocks(shape, bg_grid):
    # (a thin last block, judged on a pixel's row sampled over and over, once set the
    # sky and the noise of a corner: up to 28 false stars on these frames)
    for seed in range(10):
        img = np.random.default_rng(seed).normal(1000.0, 10.0, shape)
        res = extract_centroids_fast(img, bg_grid=bg_grid)
        assert len(res) == 0
        # (16 pixels say little of the noise: no bound on 4 x 4)
        assert img.size < 1000 or 8.5 < res.background_sigma < 11.5


def test_a_dead_last_row_leaves_the_noise_and_the_stars_alone():
    # (a flat sky: one level for the frame, bg_grid=None, would count a ramp as noise)
    img, x, y, flux = _frame(np.uint16, seed=9, shape=(768, 1024), sky=100.0, gradient=0.0)
    img[-1, :] = 0
    for bg_grid in (None, 64):
        res = extract_centroids_fast(img, bg_grid=bg_grid)
        xy = res.as_array()
        idx, _ = match_to_truth(xy[:, 0], xy[:, 1], x, y, radius=1.0)
        assert 9.0 < res.background_sigma < 11.5
        assert (idx >= 0).sum() >= 58


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_a_flat_integer_sky_is_judged_as_its_float_copy(dtype):
    # a sky of one value (clipped, or dark-subtracted) with stars and hot pixels: the
    # lattice's few bright samples once set a "camera step" of thousands of counts
    rng = np.random.default_rng(4)
    img = np.zeros((480, 640), dtype)
    for r, c in rng.integers(10, 470, (10, 2)):
        img[r - 1:r + 2, c - 1:c + 2] = 120
        img[r, c] = 200
    img.flat[rng.integers(0, img.size, 300)] = 255  # hot pixels
    ints, floats = (extract_centroids_fast(a, min_pixels=3) for a in (img, img.astype(np.float32)))
    assert ints.background_sigma == 0.5  # (half the integers' step)
    assert len(ints) == 10
    np.testing.assert_array_equal(ints.as_array(), floats.as_array())


@numba_only
def test_candidates_at_the_threshold_agree_with_the_numpy_twin():
    # a pixel that rounds to the lower sky plus the limit, yet lies above the exact sky
    # by more than the limit: the compiled pass's shortcut must not skip it
    sky, limit = 636.9616873214543, 13.562357016817128
    img = np.full((1, 16), sky + limit)
    er, ec = _edges(1, 16), _edges(16, 16)
    args = (img, np.full((1, 1), sky), np.full((1, 1), limit), *_weights(1, er),
            *_weights(16, ec), 0, 1)
    want = _candidates(*args)
    got = kernels._compile()["sky_candidates"](*args)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
