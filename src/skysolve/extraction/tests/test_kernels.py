"""The extractor's compiled kernels against the numpy code they twin, and against the truth.

Stamps are pixel-integrated Gaussians (skysolve/tests/frames.py, exact erf integrals)
with noise and missing pixels, so the true centres are known.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from scipy import ndimage

from skysolve import _jit
from skysolve.errors import InvalidArgumentError, InvalidTypeError
from skysolve.extraction import extract_centroids, kernels
from skysolve.extraction.blobs import _blob_sums
from skysolve.extraction.psffit import fit_gaussian_stamps
from skysolve.tests.frames import pixel_integrated_gaussian_1d, tess_like_frame

pytestmark = pytest.mark.skipif(not _jit.available(), reason="numba not available")


def _stamps(k: int, n: int = 300, seed: int = 0):
    """``n`` noisy ``k`` x ``k`` stamps of Gaussians near the centre, 5 % of pixels missing."""
    rng = np.random.default_rng(seed)
    half = (k - 1) // 2
    x0, y0 = rng.uniform(-0.5, 0.5, (2, n))
    sigma = rng.uniform(0.5, 2.0, n)
    flux = rng.uniform(100.0, 5000.0, n)
    lo = np.full(n, -half - 0.5)
    ex = pixel_integrated_gaussian_1d(lo, x0, sigma, k)
    ey = pixel_integrated_gaussian_1d(lo, y0, sigma, k)
    stamps = (flux[:, None, None] * ey[:, :, None] * ex[:, None, :]
              + rng.normal(0.0, 3.0, (n, k, k))).astype(np.float32)
    weights = rng.random((n, k, k)) > 0.05
    p0 = np.column_stack([np.zeros(n), np.zeros(n), 1.1 * flux, 1.2 * sigma, 0.9 * sigma])
    return stamps, weights, p0, x0, y0


@pytest.mark.parametrize("k", [5, 7, 13])
@pytest.mark.parametrize("fix_sigma", [False, True])
@pytest.mark.parametrize("iterations", [2, 4])
def test_compiled_fit_agrees_with_numpy(k, fix_sigma, iterations):
    stamps, weights, p0, x0, y0 = _stamps(k)
    kernels.warm_up()
    fit = kernels.compiled_fit()
    assert fit is not None
    p_ref, ok_ref = fit_gaussian_stamps(stamps, weights, p0, iterations=iterations,
                                        fix_sigma=fix_sigma)
    p, ok = fit(stamps, weights, p0, iterations, fix_sigma)
    np.testing.assert_array_equal(ok, ok_ref)
    # the same arithmetic, summed in another order: rounding only
    np.testing.assert_allclose(p[:, :2], p_ref[:, :2], rtol=0, atol=1e-9)
    np.testing.assert_allclose(p[:, 2:5], p_ref[:, 2:5], rtol=1e-9)
    if not fix_sigma and iterations == 4:  # and both find the true centres
        assert np.median(np.abs(p[ok, 0] - x0[ok])) < 0.05
        assert np.median(np.abs(p[ok, 1] - y0[ok])) < 0.05


def test_extraction_same_with_and_without_kernels():
    """The whole extraction finds the same stars, rejects the same blobs for the same
    reasons and puts them in the same places with the compiled kernels or numpy alone."""
    img = tess_like_frame(seed=5, shape=(512, 512), n_stars=600)[0]
    kernels.warm_up()
    compiled = extract_centroids(img)
    reference = extract_centroids(img, backend="reference")
    assert len(compiled.centroids) == len(reference.centroids) > 100
    np.testing.assert_allclose(compiled.as_array()[:, :2], reference.as_array()[:, :2],
                               rtol=0, atol=1e-9)
    np.testing.assert_array_equal(compiled.fitted, reference.fitted)
    np.testing.assert_array_equal(compiled.flags, reference.flags)
    np.testing.assert_array_equal(compiled.rejected["reason"], reference.rejected["reason"])


@pytest.mark.parametrize("shape, density, grow", [((50, 37), 0.3, False), ((200, 200), 0.5, True),
                                                  ((300, 400), 0.02, True), ((1, 60), 0.5, False),
                                                  ((60, 1), 0.5, False)])
def test_labels_as_ndimage(shape, density, grow):
    """The compiled labeller finds scipy's 8-connected blobs, numbered alike."""
    rng = np.random.default_rng(3)
    mask = rng.random(shape) < density
    if grow:  # bigger, irregular blobs
        mask = ndimage.binary_dilation(mask)
    expected, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    kernels.warm_up()
    idx = np.flatnonzero(mask)
    lab, count = kernels.compiled("label_pixels")(idx, shape[1])
    assert count == n > 0
    np.testing.assert_array_equal(lab, expected.ravel()[idx])


@pytest.mark.parametrize("step", [2, 3])
def test_label_image_as_ndimage(step):
    """The label image the extractor paints is scipy's, in 16-bit labels for fewer than
    65,536 blobs and 32-bit ones beyond (isolated pixels every other row and column of
    a 600 x 600 frame are 90,000 blobs; every third, 40,000), with a blob of many runs."""
    extract = importlib.import_module("skysolve.extraction.extract")
    kernels.warm_up()
    mask = np.zeros((600, 600), dtype=bool)
    mask[::step, ::step] = True
    mask[100:140, 201:260] = True
    expected, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    labels, count = extract._label(np.flatnonzero(mask), *mask.shape)
    assert count == n and labels.dtype == (np.int32 if n >= 65536 else np.uint16)
    np.testing.assert_array_equal(labels, expected)


def test_labels_of_runs_as_ndimage():
    """The compiled labeller joins runs of pixels: runs that touch only at their ends'
    diagonals, a one-pixel path folded over the frame (each row's run joined to the next
    at alternate ends), a disc, blobs on the left and right edges (no wrap-around
    between the end of a row and the start of the next), runs under and over several
    runs of the row above, and random masks of every density."""
    kernels.warm_up()
    label = kernels.compiled("label_pixels")
    snake = np.zeros((201, 150), dtype=bool)
    snake[::2] = True
    for r in range(1, 201, 2):
        snake[r, -1 if r % 4 == 1 else 0] = True
    yy, xx = np.mgrid[:300, :400]
    edges = np.zeros((10, 12), dtype=bool)
    edges[3, -1] = edges[4, 0] = edges[6, 0] = edges[5, -1] = True
    comb = np.zeros((6, 40), dtype=bool)
    comb[0, ::3] = comb[2, 1:39] = comb[4, ::2] = comb[5, 20] = True  # teeth over a bar
    steps = np.zeros((8, 30), dtype=bool)
    for r in range(8):
        steps[r, 3 * r:3 * r + 3] = True  # runs touching only corner to corner
    masks = [snake, (xx - 200) ** 2 + (yy - 150) ** 2 < 120 ** 2,
             np.eye(30, dtype=bool) | np.eye(30, dtype=bool)[::-1], edges, comb, steps]
    rng = np.random.default_rng(5)
    for k in range(60):
        shape = tuple(int(v) for v in rng.integers(1, 80, 2))
        mask = rng.random(shape) < rng.uniform(0.0, 0.9)
        masks.append(ndimage.binary_dilation(mask) if k % 2 else mask)
    for mask in masks:
        expected, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
        idx = np.flatnonzero(mask)
        lab, count = label(idx, mask.shape[1])
        assert count == n
        np.testing.assert_array_equal(lab, expected.ravel()[idx])
    assert [m.any() for m in masks[:6]] == [True] * 6
    assert label(np.zeros(0, np.intp), 7)[1] == 0


@pytest.mark.parametrize(("dtype", "writeable"), kernels.TILE_CANDIDATE_TYPES)
def test_band_candidates_as_numpy(dtype, writeable):
    """The candidate pixels of a band of tile rows: those above their tile's limit (as
    numpy's comparison and flatnonzero find them) and of those the pixels above the
    bilinear background by the threshold, a fixed one or a noise model's (as the
    background's numpy model gives them); on frames whose last tiles are partial, bands
    that start below the first tile row, limits at, between and beyond the values."""
    from skysolve.extraction import background

    extract_mod = importlib.import_module("skysolve.extraction.extract")
    rng = np.random.default_rng(7)
    kernels.warm_up()
    kernel = kernels.compiled("band_candidates")
    checked = dropped = 0
    for h, w, th, tw, bs in ((37, 45, 8, 16, 8), (64, 1024, 32, 32, 16), (5, 3, 2, 2, 2),
                             (1, 9, 4, 4, 4), (70, 90, 16, 32, 12)):
        top = 250 if dtype == np.uint8 else 4000
        src = rng.integers(0, top, (h, w)).astype(dtype)
        src.flags.writeable = writeable
        det = src.astype(np.float32)
        ny, nx = -(-h // th), -(-w // tw)
        lim = rng.integers(0, top, (ny, nx)).astype(dtype)
        lim[0, 0], lim[-1, -1] = 0, top  # every pixel but zeros above; none above
        bg = background.Background(rng.uniform(0.3, 0.6, (-(-h // bs), -(-w // bs))) * top,
                                   bs, 0.02 * top, (h, w))
        for noise in (None, rng.uniform(0.01, 0.04, bg.grid.shape) * top):
            bg.noise = None if noise is None else background.Background(noise, bs, 1.0,
                                                                        (h, w), bg.nodes)
            scale, thr = 3.0, 3.0 * bg.sigma
            tables = bg.kernel_tables()
            ntables = tables if bg.noise is None else bg.noise.kernel_tables()
            for b0, b1 in ((0, ny), (ny // 2, ny), (0, 1)):
                got = kernel(src, lim, th, tw, b0, b1, det, *tables, *ntables, scale, thr,
                             noise is not None)
                r0, r1 = b0 * th, min(b1 * th, h)
                above = np.flatnonzero(extract_mod._above(src[r0:r1], lim[b0:b1], th, tw))
                above += r0 * w
                rows, cols = np.divmod(above, w)
                level = bg.at(rows, cols)
                cut = thr if noise is None else scale * bg.noise.at(rows, cols)
                keep = det.ravel()[above] > level + cut
                np.testing.assert_array_equal(got[0], above[keep])
                np.testing.assert_array_equal(got[1], level[keep])
                checked += int(keep.sum())
                dropped += int((~keep).sum())
    assert checked > 1000 and dropped > 1000


def test_blob_sums_as_numpy():
    """Per-blob sums, peaks and moments: the same sums in the same order as bincount."""
    rng = np.random.default_rng(4)
    mask = ndimage.binary_dilation(rng.random((120, 90)) < 0.05)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    idx = np.flatnonzero(mask)
    val = np.round(rng.normal(50.0, 30.0, len(idx)))  # ties among peaks too
    lab = labels.ravel()[idx].astype(np.uint16)
    kernels.warm_up()
    rows, cols = np.divmod(idx, 90)
    got = kernels.compiled("blob_sums")(lab, rows, cols, val, n + 1)
    want = _blob_sums(lab, idx, val, n + 1, 90)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    # the labels shared out (as threads share them), in either order, and none to one side
    for cut in (1, n // 3, n + 1):
        out = (np.zeros(n + 1, np.intp), np.zeros(n + 1), np.full(n + 1, -np.inf),
               np.zeros(n + 1, np.intp), np.zeros(n + 1, np.intp), np.zeros(n + 1),
               *(np.empty(n + 1) for _ in range(5)))
        for lo, hi in ((cut, n + 1), (0, cut)):
            kernels.compiled("blob_sums_of")(lab, rows, cols, val, lo, hi, *out)
        for a, b in zip(out, want, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("with_bad", [False, True])
def test_blob_measurements_as_numpy(with_bad):
    """Every per-blob measurement (the pixel gather, the sums, the peaks' neighbour means
    behind the sharpness) is numpy's to the bit, blobs at the frame's edges and beside
    bad pixels included."""
    blobs = importlib.import_module("skysolve.extraction.blobs")
    extract = importlib.import_module("skysolve.extraction.extract")
    rng = np.random.default_rng(3)
    img = tess_like_frame(seed=2, shape=(300, 411), n_stars=600)[0]
    bad = rng.random(img.shape) < 0.02 if with_bad else None
    opts = extract.ExtractionOptions(sigma_threshold=5.0, matched_filter_sigma=None)
    out = {}
    for name in ("reference", "compiled"):
        with kernels.backend(name, 1):
            bg = extract._noise(img, img, 16)
            _, labels, nblobs, idx, idx_bg = extract._blobs(img, bad, bg, opts)
            out[name] = blobs._measure_blobs(img, bg, labels, idx, idx_bg, nblobs, bad, 1e5)
    assert nblobs > 300
    edge = (out["reference"]["pr"] == 0) | (out["reference"]["pc"] == img.shape[1] - 1)
    assert edge.any()
    for key, ref in out["reference"].items():
        if ref is not None:
            np.testing.assert_array_equal(out["compiled"][key], ref, err_msg=key)


def test_background_kernels_as_numpy(monkeypatch):
    """The background's compiled pieces (half-cell sums of the residual, the model at
    flat pixel indices) give numpy's numbers: the same sums in the same order."""
    background = importlib.import_module("skysolve.extraction.background")
    rng = np.random.default_rng(6)
    h, w, bs = 300, 410, 64
    grid = rng.normal(100.0, 5.0, (5, 7))
    bg = background.Background(grid, bs, 2.0, (h, w))
    rows, cols = np.arange(2, h, 5), np.arange(2, w, 5)
    resid = rng.normal(0.0, 2.0, (len(rows), len(cols)))
    flat = np.sort(rng.choice(h * w, 5000, replace=False))
    kernels.warm_up()
    clips = (6.0, rng.uniform(3.0, 9.0, grid.shape))
    compiled = [background._half_cell_sums(resid, rows, cols, bs // 2, grid.shape, c)
                for c in clips] + [bg.at_flat(flat)]
    monkeypatch.setattr(background, "compiled", lambda name: None)
    reference = [background._half_cell_sums(resid, rows, cols, bs // 2, grid.shape, c)
                 for c in clips] + [bg.at_flat(flat)]
    for a, b in zip(compiled, reference, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(reference[-1], bg.at(*np.divmod(flat, w)))


def test_robust_location_as_numpy(monkeypatch):
    """The compiled clipped median and MAD sigma are the numpy code's to the bit (the same
    order statistics): Gaussian samples with stars, NaN, ties on an integer lattice, a
    constant sample (no spread), fewer than 10 values, clipped values among the smallest
    deviations (a lopsided sample: the kept values' own MAD), and 0-3 iterations."""
    background = importlib.import_module("skysolve.extraction.background")
    kernels.warm_up()
    rng = np.random.default_rng(23)
    base = rng.normal(100.0, 5.0, 4001)
    stars = base.copy()
    stars[rng.random(base.size) < 0.05] += rng.uniform(50.0, 5000.0, 1)
    nan = stars.copy()
    nan[::97] = np.nan
    lopsided = np.r_[rng.normal(0.0, 1.0, 3000), rng.normal(40.0, 1.0, 2000)]
    samples = [base, stars, nan, np.round(stars), np.full(500, 7.0), base[:7], lopsided,
               rng.standard_cauchy(3000)]
    readonly = stars.copy()
    readonly.flags.writeable = False
    samples.append(readonly)
    calls = []
    kernel = kernels.compiled("robust_location")
    assert kernel is not None
    for values in samples:
        for iterations in (0, 1, 2, 3):
            got = background.robust_location(values, iterations)
            with monkeypatch.context() as m:
                m.setattr(background, "compiled",
                          lambda name: None if name == "robust_location"
                          else kernels.compiled(name))
                want = background.robust_location(values, iterations)
            np.testing.assert_array_equal(got, want)
            calls.append(want)
    assert np.isfinite(calls[4]).all() and abs(calls[4][1] - 5.0) < 0.5  # (premise)


@pytest.mark.parametrize("grid_shape", [(6, 8), (2, 5), (6, 1), (1, 1)])
@pytest.mark.parametrize("sky", ["flat", "noisier_half", "bump", "sparse"])
def test_local_checks_as_numpy(grid_shape, sky):
    """The compiled noise grid and structure test (:func:`.kernels.local_checks`) are
    numpy's to the bit: a uniform sky (neither), noise three times as large over half
    the frame (a noise grid, 3x3-median filtered on grids of 3x3 blocks and more), a
    bump the model missed (structure), and a sample too sparse for some blocks (their
    noise the global sigma); grids one block wide or tall included."""
    background = importlib.import_module("skysolve.extraction.background")
    kernels.warm_up()
    rng = np.random.default_rng([*grid_shape, ord(sky[0])])  # (the same draws every run)
    bs = 32
    ny, nx = grid_shape
    shape = (ny * bs - 5, nx * bs - 3)  # (the last blocks partial)
    step = 11 if sky == "sparse" else 5
    rows, cols = np.arange(2, shape[0], step), np.arange(1, shape[1], step)
    sigma = 2.0
    resid = rng.normal(0.0, sigma, (len(rows), len(cols)))
    if sky == "noisier_half":
        resid[:, cols >= shape[1] // 2] *= 3.0
    elif sky == "bump":
        resid += 4.0 * sigma * np.exp(-((rows[:, None] - 40.0) ** 2
                                        + (cols[None, :] - 30.0) ** 2) / 200.0)
    resid[rng.random(resid.shape) < 0.01] += 50.0 * sigma  # stars
    bg = background.Background(rng.normal(100.0, 1.0, grid_shape), bs, sigma, shape)
    assert background._noise_group(bs, rows, cols) == 1
    assert kernels.compiled("local_checks") is not None
    out = {}
    for name in ("compiled", "reference"):
        with kernels.backend(name):
            noise, structured = background._local_checks(resid, rows, cols, bg)
        out[name] = (None if noise is None else noise.grid, structured)
    (got, got_s), (want, want_s) = out["compiled"], out["reference"]
    assert got_s == want_s
    assert (got is None) == (want is None)
    if want is not None:
        np.testing.assert_array_equal(got, want)
    if sky == "noisier_half" and nx > 1:
        assert want is not None  # (the test's premise: a noise grid)
    if sky == "bump" and grid_shape == (6, 8):
        assert want_s


@pytest.mark.parametrize("grid_shape", [(5, 7), (1, 7), (5, 1)])
def test_background_model_as_numpy(grid_shape):
    """The compiled model (interpolated per pixel, no tables) is the tables' to the bit,
    at flat indices and on broadcast rows x columns, one-node axes included."""
    background = importlib.import_module("skysolve.extraction.background")
    rng = np.random.default_rng(7)
    h, w, bs = 300, 410, 64
    grid = rng.normal(100.0, 5.0, grid_shape)
    shape = (h if grid_shape[0] > 1 else 40, w if grid_shape[1] > 1 else 50)
    rows, cols = rng.integers(0, shape[0], 3000), rng.integers(0, shape[1], 3000)
    flat = rows * shape[1] + cols
    out = {}
    for name in ("compiled", "reference"):
        with kernels.backend(name):
            bg = background.Background(grid, bs, 2.0, shape)
            out[name] = (bg.at_flat(flat), bg.at(rows, cols), bg.at(rows[:30, None], cols[None]))
    for a, b in zip(out["compiled"], out["reference"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_dot_bands_as_numpy():
    """The compiled bands of the lines through pairs of bright dots are numpy's: a strobe's
    line of equal dots among random stars (its count the dots on it), ties at the band's
    edge, no lines at all."""
    kernels.warm_up()
    rng = np.random.default_rng(19)
    x = np.r_[np.arange(10) * 12.0 + 5.0, rng.uniform(0, 500, 40)]
    y = np.r_[np.arange(10) * 5.0 + 100.0, rng.uniform(0, 400, 40)]
    lf = np.r_[np.full(10, 7.0), rng.normal(7.0, 1.0, 40)]
    i, j = np.triu_indices(20, 1)
    dx, dy = x[j] - x[i], y[j] - y[i]
    length = np.hypot(dx, dy)
    ux, uy = dx / length, dy / length
    for tol in (2.5, 0.0):
        for a, b in ((i, j), (i[:0], j[:0])):
            got = kernels.compiled("dot_bands")(x, y, lf, a, b, ux[:len(a)], uy[:len(a)], tol,
                                                float(np.log(1.25)))
            d = np.abs((x[None, :] - x[a, None]) * uy[:len(a), None]
                       - (y[None, :] - y[a, None]) * ux[:len(a), None])
            alike = np.abs(lf[None, :] - 0.5 * (lf[a] + lf[b])[:, None]) <= np.log(1.25)
            band = d <= tol
            for g, w in zip(got, (band, alike, (band & alike).sum(axis=1)), strict=True):
                np.testing.assert_array_equal(g, w)
    assert got[2].size == 0
    strobe = kernels.compiled("dot_bands")(x, y, lf, i[:1], j[:1], ux[:1], uy[:1], 2.5,
                                           float(np.log(1.25)))
    assert strobe[2][0] >= 10  # (the line through the first two flashes holds all ten)


def test_piece_lines_as_numpy():
    """The compiled lines of trail pieces are numpy's pairs to the bit: a broken trail's
    collinear pieces among random ones (each of its pieces counts them all), pieces at
    the offset's and the gap's very edges, a NaN half-length (passed on to the spans
    that take it, as numpy's minimum does), one piece."""
    filters = importlib.import_module("skysolve.extraction.filters")
    kernels.warm_up()
    rng = np.random.default_rng(23)
    angle = np.r_[np.full(6, 0.3), rng.uniform(-np.pi, np.pi, 60)]
    px = np.r_[np.arange(6) * 40.0 * np.cos(0.3), rng.uniform(0, 900, 60)]
    py = np.r_[np.arange(6) * 40.0 * np.sin(0.3), rng.uniform(0, 700, 60)]
    px[6:9], py[6:9], angle[6:9] = (500.0, 650.0, 520.0), (600.0, 600.0, 603.5), 0.0
    # (from piece 6: 7 lies 150 px along, on the gap's edge; 8 3.5 px off, the offset's)
    ux, uy = np.cos(angle), np.sin(angle)
    half = rng.uniform(2.0, 30.0, len(px))
    args = (3.5, 150.0, float(np.sin(np.radians(6.0))))
    cases = [(px, py, ux, uy, half)]
    with_nan = half.copy()
    with_nan[2] = np.nan
    cases += [(px, py, ux, uy, with_nan), tuple(a[:1] for a in cases[0])]
    for case in cases:
        got = kernels.compiled("piece_lines")(*case, *args)
        for g, w in zip(got, filters._piece_lines(*case, *args), strict=True):
            np.testing.assert_array_equal(g, w)
    count = kernels.compiled("piece_lines")(*cases[0], *args)[0]
    # (the trail's pieces 40 px apart: those within 150 px along; the edge cases counted)
    assert count[:6].tolist() == [4, 5, 6, 6, 5, 4] and count[6] >= 3
    assert np.isnan(kernels.compiled("piece_lines")(*cases[1], *args)[1][:6]).all()


def test_tile_bound_as_numpy():
    """The compiled least per tile of the model's lattice values, less the rounding
    margin, is numpy's to the bit: tiles of one line and of several, a NaN (which
    numpy's minimum passes on), the real lattices of a 300x410 frame."""
    background = importlib.import_module("skysolve.extraction.background")
    kernels.warm_up()
    rng = np.random.default_rng(18)
    ry, sy, ey = background._lattice(300, 16, background._block_nodes((300, 410), 64)[0])
    cx, sx, ex = background._lattice(410, 32, background._block_nodes((300, 410), 64)[1])
    for nan in (False, True):
        vals = rng.normal(100.0, 30.0, (len(ry), len(cx)))
        if nan:
            vals[5, 7] = np.nan
        want = background._tile_min(background._tile_min(vals, sy, ey, 0), sx, ex, 1)
        want = want - 1e-9 * (np.abs(want) + 12.5 + 1e-30)
        got = kernels.compiled("tile_bound")(vals, sy, ey, sx, ex, 12.5)
        np.testing.assert_array_equal(got, want)
        assert np.isnan(got).any() == nan


def test_count_step_as_numpy():
    """The compiled differences of neighbouring counts give numpy's step: a 12-bit
    camera's counts shifted up by 4 bits (step 16) with a pedestal, with saturated
    pixels off the lattice, 8-bit and signed counts (step 1), a thresholded frame, a
    frame too small for strided samples; and the histogram is ``np.bincount``'s."""
    extract = importlib.import_module("skysolve.extraction.extract")
    kernels.warm_up()
    rng = np.random.default_rng(17)
    sky = rng.normal(300.0, 6.0, (200, 300))
    shifted = (np.round(sky) * 16 + 7).astype(np.uint16)
    clipped = shifted.copy()
    clipped[50:60, 50:60] = 65535
    frames = [(shifted, 16.0), (clipped, 16.0), (np.round(sky).astype(np.uint16), 1.0),
              (np.clip(np.round(sky - 200), 0, 255).astype(np.uint8), 1.0),
              ((np.round(sky) - 300).astype(np.int16) * 4, 4.0),
              (np.where(sky > 300, 255, 0).astype(np.uint8), 1.0),
              ((np.round(sky[:20, :30]) * 16).astype(np.uint16), 16.0)]
    for frame, step in frames:
        with kernels.backend("compiled"):
            got = extract._count_step(frame)
        with kernels.backend("reference"):
            want = extract._count_step(frame)
        assert got == want == step
    left, right = extract._neighbour_pairs(clipped, extract._COUNT_SAMPLES)
    d, counts, moved, lo, hi = kernels.compiled("step_counts")(left, right, 4096)
    want = np.abs(right.astype(np.int64) - left).ravel()
    np.testing.assert_array_equal(d, want)
    np.testing.assert_array_equal(counts, np.bincount(want[want < 4096], minlength=2))
    assert (moved, lo, hi) == (np.count_nonzero(want), left.min(), left.max())


def test_median9_as_numpy():
    """The compiled 3x3 median of a block grid is the numpy network's to the bit (signed
    zeros and NaN included) and every cell's median of its 9 neighbours (edges
    replicated): grids of one cell, one row, one column, ties."""
    background = importlib.import_module("skysolve.extraction.background")
    kernels.warm_up()
    rng = np.random.default_rng(16)
    grids = [rng.normal(100.0, 5.0, shape) for shape in ((1, 1), (1, 6), (5, 1), (7, 9))]
    grids.append(np.round(rng.normal(0.0, 1.0, (6, 8))) * 0.0)  # +0 and -0 only
    grids.append(np.round(rng.normal(3.0, 1.0, (6, 8))))  # ties
    nan = rng.normal(100.0, 5.0, (6, 8))
    nan[2, 3] = np.nan
    grids.append(nan)
    for grid in grids:
        got = kernels.compiled("median9")(grid, background._MEDIAN_NETWORK)
        with kernels.backend("reference"):
            want = background._filter3(grid, "median")
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
        if not np.isnan(grid).any():
            pad = np.pad(grid, 1, mode="edge")
            hoods = np.stack([pad[i:i + grid.shape[0], j:j + grid.shape[1]]
                              for i in range(3) for j in range(3)])
            np.testing.assert_array_equal(got, np.median(hoods, axis=0))


def test_axis_wings_as_numpy():
    """The compiled light beside each peak gives numpy's wings: peaks on the frame's edges
    and corners (neighbours off the image hold no light), stars, hot pixels and a
    cosmic-ray track along a row."""
    blobs = importlib.import_module("skysolve.extraction.blobs")
    kernels.warm_up()
    rng = np.random.default_rng(15)
    work = rng.normal(10.0, 1.0, (40, 50)).astype(np.float32)
    work[20, 20:23] = 60.0  # a track along its row: light left and right only
    work[10, 10] = 80.0  # a hot pixel
    yy, xx = np.mgrid[:40, :50]
    work += (70.0 * np.exp(-0.5 * ((yy - 30) ** 2 + (xx - 35) ** 2) / 1.2)).astype(np.float32)
    pr = np.r_[0, 39, 0, 39, 20, 10, 30, rng.integers(0, 40, 30)]
    pc = np.r_[0, 49, 49, 0, 21, 10, 35, rng.integers(0, 50, 30)]
    m = {"pr": pr, "pc": pc, "bg_peak": rng.normal(10.0, 0.5, len(pr)),
         "sigma": np.full(len(pr), 1.0)}
    ids = np.arange(len(pr))
    out = {}
    for name in ("compiled", "reference"):
        with kernels.backend(name):
            out[name] = [blobs._axis_wings(work, m, ids, snr) for snr in (0.0, 3.0, 10.0)]
    for a, b in zip(out["compiled"], out["reference"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not out["compiled"][1][4] and not out["compiled"][1][5] and out["compiled"][1][6]
    across, along = kernels.compiled("axis_light")(work, pr, pc, m["bg_peak"])
    b = m["bg_peak"]
    assert across[4] == (60.0 - b[4]) + (60.0 - b[4])  # the track's neighbours
    assert across[0] == work[0, 1] - b[0] and along[0] == work[1, 0] - b[0]  # a corner


def test_background_gradient_as_numpy():
    """The model's local slope (its four neighbours evaluated at once) is the numpy
    tables' to the bit, at the frame's edges and corners too, for 1-D and broadcast
    pixel arrays; on a plane sky it is the plane's slope (half a step at the edges, one
    step over one pixel there)."""
    background = importlib.import_module("skysolve.extraction.background")
    rng = np.random.default_rng(14)
    shape = (300, 410)
    ny, nx = (len(n) for n in background._block_nodes(shape, 64))
    grid = rng.normal(100.0, 5.0, (ny, nx))
    rows = np.r_[0, 299, rng.integers(0, 300, 200)]
    cols = np.r_[409, 0, rng.integers(0, 410, 200)]
    out = {}
    for name in ("compiled", "reference"):
        with kernels.backend(name):
            bg = background.Background(grid, 64, 2.0, shape)
            out[name] = (*bg.gradient_at(rows, cols),
                         *bg.gradient_at(rows[:20, None], cols[None, :30]))
    for a, b in zip(out["compiled"], out["reference"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert out["compiled"][2].shape == (20, 30)
    nodes = background._block_nodes(shape, 64)
    plane = background.Background(0.25 * nodes[1][None, :] - 0.5 * nodes[0][:, None] + 7.0,
                                  64, 2.0, shape)
    with kernels.backend("compiled"):
        gx, gy = plane.gradient_at(rows, cols)
    np.testing.assert_allclose(gx, 0.25, atol=1e-12)
    np.testing.assert_allclose(gy, -0.5, atol=1e-12)


@pytest.mark.parametrize("shape", [(300, 410), (40, 410), (300, 50), (130, 100)])
def test_grid_model_as_numpy(shape):
    """The compiled model on a grid of rows x columns is numpy's to the bit: on the
    noise sample's grid (:meth:`~.background.Background.at_grid`), on the lattice of tile
    edges (fractional positions) behind :meth:`~.background.Background.tile_lower_bound`,
    and called directly; one-node axes included, steep skies; and the whole frame's
    model in float32 (:meth:`~.background.Background.full`: numpy's float64 values as
    ``astype`` rounds them, though the kernel rounds them as it stores them)."""
    background = importlib.import_module("skysolve.extraction.background")
    rng = np.random.default_rng(8)
    kernels.warm_up()
    grid_shape = tuple(len(n) for n in background._block_nodes(shape, 64))
    grid = rng.normal(100.0, 5.0, grid_shape) + 40.0 * np.arange(grid_shape[1])
    rows = np.arange(int(rng.integers(0, 5)), shape[0], int(rng.integers(2, 9)))
    cols = np.arange(int(rng.integers(0, 5)), shape[1], int(rng.integers(2, 9)))
    out = {}
    for name in ("compiled", "reference"):
        with kernels.backend(name):
            bg = background.Background(grid, 64, 2.0, shape)
            out[name] = (bg.at_grid(rows, cols), bg.tile_lower_bound(16, 32),
                         bg.at_grid(rows + 0.25, cols + 0.5), bg.full(np.float32),
                         bg.full(np.float64))
    for a, b in zip(out["compiled"], out["reference"], strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    full64 = out["reference"][4]
    assert out["compiled"][3].dtype == np.float32
    np.testing.assert_array_equal(out["compiled"][3], full64.astype(np.float32))
    assert not np.array_equal(out["compiled"][3], full64)  # (the rounding is taken)
    bg = background.Background(grid, 64, 2.0, shape)
    coarse, step, r0, fr = bg._columns(rows, cols)
    c0, c1, fc = bg._weights(cols, bg.nodes[1])
    out = np.full((len(rows), len(cols)), np.nan)
    got = kernels.compiled("grid_model")(grid, c0, c1, fc, r0, fr, out)
    assert got is out
    np.testing.assert_array_equal(got, coarse[r0] + fr[:, None] * step[r0])


def test_constant_area_as_numpy(monkeypatch):
    """The compiled constant-area test gives numpy's pixels: a black surround (a lens
    circle's), constant runs reaching the frame's edges, runs one pixel short of the
    reach, 8x8 blocks of one value (a flattened JPEG sky), noise, and a frame smaller
    than the reach."""
    background = importlib.import_module("skysolve.extraction.background")
    kernels.warm_up()
    rng = np.random.default_rng(12)
    frames = []
    noisy = rng.normal(100.0, 3.0, (120, 150)).astype(np.float32)
    yy, xx = np.mgrid[:120, :150]
    frames.append(np.where((yy - 60) ** 2 + (xx - 75) ** 2 > 50 ** 2, 0.0, noisy))
    short = noisy.copy()
    short[20:53, 30:62] = 7.0  # 33 x 32: along its rows one pixel short of 2 x 16 + 1
    frames.append(short)
    blocks = np.repeat(np.repeat(np.round(rng.normal(100.0, 0.4, (15, 19))), 8, 0), 8, 1)
    frames.append(blocks[:120, :150])
    tiny = np.full((9, 12), 10.0)
    tiny[4, 5] = 11.0  # (every pixel in its row or column sees it)
    frames.append(tiny)
    frames = [np.ascontiguousarray(f, dtype=np.float32) for f in frames]
    for f, some in zip(frames, (True, False, True, True), strict=True):
        rows = np.arange(int(rng.integers(0, 3)), f.shape[0], int(rng.integers(1, 5)))
        cols = np.arange(int(rng.integers(0, 3)), f.shape[1], int(rng.integers(1, 5)))
        got = kernels.compiled("constant_area")(f, rows, cols, background._CONSTANT_REACH)
        with kernels.backend("reference"):
            want = background._constant_area(f, rows, cols)
        assert want.any() == some
        np.testing.assert_array_equal(got, want)


def test_levelled_rows_as_numpy():
    """A banded frame less its rows' or columns' offsets, spread between stretches: the
    compiled pass gives numpy's frame to the bit, with offsets in whole steps (halves of
    a step round to even, as ``np.round`` rounds them) or not, one stretch or several,
    frames wider and narrower than tall."""
    banding = importlib.import_module("skysolve.extraction.banding")
    kernels.warm_up()
    rng = np.random.default_rng(21)
    for h, w in ((96, 128), (37, 50), (5, 300)):
        work = rng.normal(300.0, 10.0, (h, w)).astype(np.float32)
        for axis in (0, 1):
            lines = (h, w)[axis]
            for k in (1, 2, 7):
                offsets = rng.normal(0.0, 3.0, (lines, k))
                offsets[::3] = rng.integers(-6, 6, (len(offsets[::3]), k)) + 0.5  # (ties)
                for quantum in (None, 1.0, 0.25, 3.0):
                    got = banding._levelled(work, offsets, quantum, axis)
                    with kernels.backend("reference"):
                        want = banding._levelled(work, offsets, quantum, axis)
                    assert got.dtype == np.float32 and got.flags.c_contiguous
                    np.testing.assert_array_equal(got, want)
                    assert not np.array_equal(got, work)


def test_running_medians_as_scipy():
    """The banding test's smoothed levels: the compiled sliding window gives scipy's
    median filter (and the numpy path's) to the bit, over windows longer than the
    column, ties, steps and ramps."""
    orderstats = importlib.import_module("skysolve.extraction.orderstats")
    kernels.warm_up()
    rng = np.random.default_rng(22)
    for rows, cols, size in ((768, 7, 65), (30, 3, 65), (1, 2, 1), (200, 5, 3), (64, 1, 33)):
        for level in (rng.normal(300.0, 5.0, (rows, cols)),
                      np.round(rng.normal(300.0, 1.0, (rows, cols))),
                      np.cumsum(rng.normal(0.0, 1.0, (rows, cols)), axis=0),
                      np.repeat(rng.normal(0.0, 9.0, (rows // 8 + 1, cols)), 8, 0)[:rows]):
            want = ndimage.median_filter(level, size=(size, 1), mode="nearest")
            np.testing.assert_array_equal(orderstats.running_median(level, size), want)
            with kernels.backend("reference"):
                np.testing.assert_array_equal(orderstats.running_median(level, size), want)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int8, np.int16])
def test_counts_to_float32_as_numpy(dtype):
    """The compiled working copy of a camera's integers is numpy's float32 conversion, and
    its rows' maxima numpy's, the type's extremes included, in bands of any rows; the
    extractor's copy (:func:`.extract._counts_work`) is the same."""
    extract = importlib.import_module("skysolve.extraction.extract")
    kernels.warm_up()
    rng = np.random.default_rng(13)
    info = np.iinfo(dtype)
    arr = rng.integers(info.min, info.max, (37, 53), endpoint=True).astype(dtype)
    arr[3] = info.min
    arr[5, 7] = info.max
    work, row_max = np.full(arr.shape, np.nan, np.float32), np.zeros(len(arr), dtype)
    for a, b in ((0, 1), (1, 20), (20, 37)):
        kernels.compiled("counts_to_float32")(arr, work, row_max, a, b)
    np.testing.assert_array_equal(work, arr.astype(np.float32))
    np.testing.assert_array_equal(row_max, arr.max(axis=1))
    assert row_max.dtype == arr.max(axis=1).dtype
    with kernels.backend("compiled", 2):
        made, top = extract._counts_work(arr)
    np.testing.assert_array_equal(made, arr.astype(np.float32))
    np.testing.assert_array_equal(top, arr.max(axis=1))
    arr.flags.writeable = False  # (np.asarray of a PIL image)
    with kernels.backend("compiled", 1):
        made, top = extract._counts_work(arr)
    np.testing.assert_array_equal(made, arr.astype(np.float32))
    np.testing.assert_array_equal(top, arr.max(axis=1))


@pytest.mark.parametrize("threads", [1, 3])
def test_smooth_as_numpy(monkeypatch, threads):
    """The compiled matched filter gives the numpy code's numbers to the bit: frames
    narrower and shorter than the kernel, odd sizes, filters of 3 to 25 taps, split into
    bands for several threads."""
    extract = importlib.import_module("skysolve.extraction.extract")
    kernels.warm_up()
    rng = np.random.default_rng(9)
    cases = [(rng.normal(100.0, 5.0, shape) * scale).astype(np.float32)
             for shape in ((3, 4), (9, 200), (200, 7), (301, 257)) for scale in (1.0, 1e4)]
    filters = [extract._gaussian_kernel(s) for s in (0.3, 1.0, 1.5, 4.0)]
    # several bands on small frames (the filter cuts its own: _SMOOTH_THREAD_PIXELS)
    monkeypatch.setattr(extract, "_SMOOTH_THREAD_PIXELS", 100)
    with kernels.backend("compiled", threads):
        compiled = [extract._smooth(img, k) for img in cases for k in filters]
    with kernels.backend("reference"):
        reference = [extract._smooth(img, k) for img in cases for k in filters]
    for a, b in zip(compiled, reference, strict=True):
        np.testing.assert_array_equal(a, b)


def test_smooth_in_any_bands_as_numpy():
    """The compiled filter's one pass (its first pass's rows made into a ring as the
    second needs them) gives the numpy code's two passes to the bit in bands cut at any
    rows: one-row bands, bands ending within a kernel's reach of the frame's edges, a
    frame shorter than the kernel, 3 to 25 taps."""
    extract = importlib.import_module("skysolve.extraction.extract")
    kernels.warm_up()
    smooth = kernels.compiled("smooth")
    rng = np.random.default_rng(11)
    for shape in ((2, 30), (5, 1), (40, 33), (97, 64)):
        img = rng.normal(100.0, 5.0, shape).astype(np.float32)
        for sigma in (0.3, 1.5, 4.0):
            k = extract._gaussian_kernel(sigma)
            with kernels.backend("reference"):
                want = extract._smooth(img, k)
            cuts = np.unique(np.r_[0, rng.integers(0, shape[0], 6), 1, shape[0] - 1,
                                   shape[0]].clip(0, shape[0]))
            got = np.full_like(img, np.nan)
            for a, b in zip(cuts[:-1], cuts[1:], strict=True):
                smooth(img, k, got, int(a), int(b))
            np.testing.assert_array_equal(got, want)


def _samples(rng, n):
    """Samples of ``n`` values laid out as selections stumble on: random, tied (a few
    levels, all equal), sorted, reversed, organ pipe, sawtooth, image rows."""
    v = rng.normal(100.0, 30.0, n)
    yield v
    yield np.round(v / 20.0)  # ~10 levels
    yield np.full(n, 7.0)
    yield np.sort(v)
    yield np.sort(v)[::-1].copy()
    yield np.r_[np.arange(n // 2), np.arange(n - n // 2)[::-1]].astype(float)
    yield (np.arange(n) % 17).astype(float)
    yield np.round(rng.poisson(100.0, n) - 100.3 + np.sin(np.arange(n) / 40.0) * 30.0, 2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.uint16, np.int16])
def test_select_value_as_numpy(dtype):
    """The compiled selection gives numpy's order statistic for every rank tried and
    leaves the sample as it was, on samples from 1 to 31,570 values of every layout in
    _samples."""
    kernels.warm_up()
    select_value = kernels.compiled("select_value")
    rng = np.random.default_rng(12)
    for n in (1, 2, 3, 47, 48, 49, 50, 1000, 6348, 31570):
        for v in _samples(rng, n):
            v = v.astype(dtype)
            for k in {0, n - 1, (n - 1) // 2, int(rng.integers(n)), min(3, n - 1)}:
                a = v.copy()
                assert select_value(a, k) == np.partition(v, k)[k]
                np.testing.assert_array_equal(a, v)


def test_select_puts_nan_last_as_numpy():
    """NaN sorts last, as in numpy: a rank among the others gives their order statistic
    (the NaNs after it), a rank among the NaNs gives NaN."""
    kernels.warm_up()
    select_value = kernels.compiled("select_value")
    rng = np.random.default_rng(13)
    for n in (5, 100, 3000):
        for dtype in (np.float64, np.float32):
            v = rng.normal(size=n).astype(dtype)
            v[rng.random(n) < 0.2] = np.nan
            m = int(np.count_nonzero(~np.isnan(v)))
            for k in (0, m // 2, max(m - 1, 0), min(m, n - 1), n - 1):
                want = np.partition(v, k)[k]
                value = select_value(v, k)
                assert (np.isnan(value) and np.isnan(want)) or value == want


def test_selection_kernels_stay_inside_their_arrays():
    """The selection and the block medians compiled with bounds checks (numba checks
    none otherwise: a write past an array corrupts memory silently) on samples with NaN
    anywhere, ties, few values and the edges' ranks: no index out of range, numpy's
    values. (A sample whose values all lay between the pivots wrote one past the
    scratch space for each NaN after the last of them.)"""
    import inspect
    import math

    import numba

    background = importlib.import_module("skysolve.extraction.background")
    kernels._compile()
    names = ("_pivots", "select_into", "select_value", "_rank_in_bin", "integer_medians")
    namespace = {"np": np, "math": math}
    for name in names:
        exec(inspect.getsource(getattr(kernels, name).py_func), namespace)
    for name in names:
        namespace[name] = numba.njit(boundscheck=True)(namespace[name])
    rng = np.random.default_rng(15)
    for trial in range(3000):
        n = int(rng.integers(1, 200 if trial % 10 else 3000))
        v = rng.choice([rng.normal(size=n), np.round(rng.normal(size=n)),
                        rng.integers(0, 3, n).astype(float)])
        v[rng.random(n) < rng.choice([0.0, 0.1, 0.5])] = np.nan
        if trial % 7 == 0:
            v[-1] = np.nan
        k = int(rng.integers(n))
        want = np.partition(v, k)[k]
        got = namespace["select_value"](v, k)
        assert (np.isnan(got) and np.isnan(want)) or got == want
    for _ in range(300):
        m, n = int(rng.integers(1, 6)), int(rng.integers(1, 1100))
        tiles = rng.integers(0, int(rng.choice([3, 300, 60000])), (1, m, n)).astype(np.uint16)
        np.testing.assert_array_equal(namespace["integer_medians"](tiles[0]),
                                      background._kth(tiles.copy())[0].astype(np.float64))


def test_orderstats_compiled_as_numpy():
    """The medians, lower medians, order statistics and clipped location and sigma of
    the extraction's large samples are the same numbers through the compiled selections
    as through numpy's partition."""
    background = importlib.import_module("skysolve.extraction.background")
    orderstats = importlib.import_module("skysolve.extraction.orderstats")
    kernels.warm_up()
    rng = np.random.default_rng(14)
    for n in (1024, 1025, 6348, 31570):
        for v in _samples(rng, n):
            for dtype in (np.float64, np.float32):
                w = v.astype(dtype)
                k = int(rng.integers(n))
                with kernels.backend("reference"):
                    want = (orderstats.median(w), orderstats.lower_median(w),
                            orderstats.order_statistic(w, k), background.robust_location(w))
                with kernels.backend("compiled"):
                    got = (orderstats.median(w), orderstats.lower_median(w),
                           orderstats.order_statistic(w, k), background.robust_location(w))
                assert got == want


def test_next_order_statistic_as_sorted():
    """The order statistic after a known one, by one compiled pass, is the sorted sample's
    next value: ties across it (integers on a few levels), the last two values, every
    type the selection takes; and an even sample's median is np.median's."""
    orderstats = importlib.import_module("skysolve.extraction.orderstats")
    kernels.warm_up()
    kernel = kernels.compiled("next_order_statistic")
    rng = np.random.default_rng(41)
    for trial in range(300):
        n = int(rng.integers(2, 3000))
        dtype = rng.choice([np.float64, np.float32, np.uint16, np.int16])
        levels = int(rng.choice([3, 50, 30000]))
        v = (rng.integers(0, levels, n) if trial % 2 else rng.normal(0, levels, n))
        v = np.clip(v, -30000, 30000).astype(dtype)
        srt = np.sort(v)
        for k in {0, n // 2 - 1, n - 2, int(rng.integers(n - 1))}:
            assert kernel(v, k, srt[k]) == float(srt[k + 1])
        if n >= 1024 and n % 2 == 0:
            assert orderstats.median(v) == float(np.median(v))


def test_median_network_sorts():
    """The pruned odd-even merge networks put the middle order statistics in place: every
    0/1 input of up to 12 values (the 0-1 principle, all inputs at once), and random
    ones of up to 300 values (blocks of 16x16 samples and their partial edge blocks)."""
    import itertools

    background = importlib.import_module("skysolve.extraction.background")
    rng = np.random.default_rng(31)
    for n in [*range(1, 80), 100, 127, 128, 129, 255, 256, 257, 300]:
        pairs, size = background.median_network(n)
        assert size >= n and size & (size - 1) == 0
        values = (np.array(list(itertools.product((0.0, 1.0), repeat=n))) if n <= 12
                  else rng.normal(size=(20, n)))
        v = np.hstack([values, np.full((len(values), size - n), np.inf)])
        for a, b in pairs:  # (every input at once)
            v[:, a], v[:, b] = np.minimum(v[:, a], v[:, b]), np.maximum(v[:, a], v[:, b])
        want = np.sort(values, axis=1)
        for k in {(n - 1) // 2, n // 2}:
            np.testing.assert_array_equal(v[:, k], want[:, k])
    assert len(background.median_network(64)[0]) == 445


@pytest.mark.parametrize("block", [(16, 16), (32, 32), (64, 64), (8, 8), (7, 16), (16, 5),
                                   (1, 1), (3, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.uint8])
def test_network_medians_as_numpy(block, dtype):
    """The compiled block medians (a sorting network across a row of blocks) are the
    numpy code's to the bit (its partition, or its counting for a dark integer sky):
    skies with stars, ties (values on a lattice; 8-bit counts of a few values), odd and
    even sample counts, the type's largest value among the samples, whole-width frames
    and part of one, read-only counts (a PIL image's)."""
    background = importlib.import_module("skysolve.extraction.background")
    kernels.warm_up()
    rng = np.random.default_rng(block[0] * 100 + block[1])
    bh, bw = block
    top = np.inf if np.dtype(dtype).kind == "f" else np.iinfo(dtype).max
    for trial in range(6):
        ny, nx = int(rng.integers(1, 9)), int(rng.integers(1, 12))
        sky, noise = (300.0, 5.0) if dtype != np.uint8 else (20.0, 1.5 + 3 * (trial % 3))
        image = rng.normal(sky, noise, (ny * bh, nx * bw + 3))
        image[rng.random(image.shape) < 0.02] += 1e4
        if trial % 2:
            image = np.round(image / 4.0) * 4.0  # (ties)
        image = np.clip(image, 0, None if np.isinf(top) else top).astype(dtype)
        if trial == 5 and not np.isinf(top):
            image[::3] = top
        if trial == 4:
            image.flags.writeable = False
        sy, sx = background._sample_step(bh), background._sample_step(bw)
        pairs, size = background.median_network(len(range(0, bh, sy)) * len(range(0, bw, sx)))
        for region in (image[:, :nx * bw], np.ascontiguousarray(image[:, :nx * bw])):
            got = kernels.compiled("network_medians")(region, bh, bw, sy, sx, pairs, size,
                                                      image.dtype.type(top))
            with kernels.backend("reference"):
                want = background._band_medians(region, bh, bw)
            np.testing.assert_array_equal(got, want)
            # (and the extraction takes it where it is faster)
            np.testing.assert_array_equal(background._band_medians(region, bh, bw), want)


def test_integer_medians_as_numpy():
    """The compiled block medians of 16-bit integer tiles give numpy's numbers to the
    bit: dark skies of a few values, ordinary ones of hundreds, tiles of a range wider
    than the histogram's bins (values spread over 20,000 counts, or a hot pixel), odd
    and even sample counts."""
    background = importlib.import_module("skysolve.extraction.background")
    kernels.warm_up()
    medians = kernels.compiled("integer_medians")
    rng = np.random.default_rng(10)
    for trial in range(300):
        m, n = int(rng.integers(1, 20)), int(rng.integers(1, 1100))
        dtype = rng.choice([np.uint16, np.int16])
        top = 32000 if dtype == np.int16 else 65535
        spread = int(rng.choice([1, 4, 20, 300, 3000, 20000]))
        tiles = (int(rng.integers(0, 100)) + rng.integers(0, spread, (1, m, n))).astype(dtype)
        if trial % 3 == 0:
            tiles[0, rng.integers(m), rng.integers(n)] = top  # a hot pixel
        if trial % 5 == 0 and dtype == np.int16:
            tiles[0, 0, 0] = -32000
        want = background._kth(tiles.copy())[0].astype(np.float64)
        np.testing.assert_array_equal(medians(tiles[0]), want)
        lo = int(tiles.min())
        levels = int(tiles.max()) - lo + 1
        if levels * m <= background._COUNTING_BINS:
            np.testing.assert_array_equal(
                medians(tiles[0]), background._counted_medians(tiles, lo, levels)[0])


def test_sky_circle_medians_of_counts_as_numpy():
    """The sky circle's medians of a camera's 8- and 16-bit counts (corner patches, the
    lit samples: strided views of the frame, odd and even counts, a star's peak among
    dark sky) are ``np.median``'s to the bit through the compiled counting too."""
    skycircle = importlib.import_module("skysolve.extraction.skycircle")
    kernels.warm_up()
    rng = np.random.default_rng(16)
    for trial in range(400):
        dtype = rng.choice([np.uint8, np.int8, np.uint16, np.int16])
        info = np.iinfo(dtype)
        base = int(rng.integers(max(info.min, -100), min(info.max, 200)))
        spread = int(rng.choice([1, 3, 40, 3000, 60000]))
        frame = np.clip(base + rng.integers(0, spread, (int(rng.integers(1, 90)),
                                                        int(rng.integers(1, 90)))),
                        info.min, info.max).astype(dtype)
        if trial % 3 == 0:
            frame[rng.integers(frame.shape[0]), rng.integers(frame.shape[1])] = info.max
        step = int(rng.integers(1, 4))
        sample = frame[::step, int(rng.integers(0, 2))::step]
        if trial % 4 == 0 and sample.size:
            sample = sample.ravel()[sample.ravel() > np.median(sample)]
        want = float(np.median(sample)) if sample.size else float("nan")
        for name in ("compiled", "reference"):
            with kernels.backend(name):
                got = skycircle._finite_median(sample)
            assert got == want or (np.isnan(got) and np.isnan(want)), (name, trial)


def test_warm_up_leaves_nothing_to_compile_inside_an_extraction():
    """After warm_up(), no extraction compiles a kernel for new argument types: 16- and
    8-bit frames (a dark 8-bit sky counts its block medians), signed and big-endian
    integers, float32 with NaN, read-only, Fortran-ordered and strided arrays, a matched
    filter, the automatic filter's second pass, one thread and several."""
    kernels.warm_up()
    compiled = kernels._compile()
    before = {name: len(k.signatures) for name, k in compiled.items()}
    rng = np.random.default_rng(11)
    img = tess_like_frame(seed=4, shape=(300, 400), n_stars=120)[0]
    u16 = np.clip(np.round(img * 20.0), 0, 65535).astype(np.uint16)
    faint = (20.0 + rng.poisson(0.5, (300, 400))).astype(np.uint8)
    faint[100:103, 200:203] = 90
    nan = img.astype(np.float32)
    nan[10:40, 10:40] = np.nan
    frozen = [img.astype(dtype) for dtype in (np.float32, np.uint16, np.float64)]
    for frame in frozen:  # read-only arrays (np.asarray of a PIL image) retype kernels
        frame.flags.writeable = False
    # Fortran order (a transpose) and strided views retyped them too (2.5 s on a DSLR frame)
    laid_out = [np.asfortranarray(u16), np.asfortranarray(img), u16[:, 5:395],
                np.ma.MaskedArray(np.asfortranarray(img), mask=np.asfortranarray(img > 1e9))]
    frames = [u16, u16.astype(">u2"), u16.astype(np.int16) // 2, (u16 >> 8).astype(np.uint8),
              faint, faint.astype(np.int16) - 30, nan, img.astype(np.float64), *frozen,
              *laid_out]
    for frame in frames:
        for kw in ({}, {"matched_filter_sigma": 1.5}, {"threads": 2}):
            extract_centroids(frame, backend="compiled", **kw)
    after = {name: len(k.signatures) for name, k in compiled.items()}
    assert after == before
    # ... and the layout changes nothing
    for frame, same in ((laid_out[0], u16), (laid_out[1], img)):
        np.testing.assert_array_equal(extract_centroids(frame).as_array(),
                                      extract_centroids(same).as_array())


def test_backend_option(monkeypatch):
    """``backend`` is checked like the solver's; 'compiled' without numba is refused."""
    img = tess_like_frame(seed=2, shape=(128, 128), n_stars=40)[0]
    with pytest.raises(InvalidArgumentError, match="backend"):
        extract_centroids(img, backend="fast")
    with pytest.raises(InvalidTypeError, match="backend"):
        extract_centroids(img, backend=1)
    monkeypatch.setattr(_jit, "_AVAILABLE", False)
    with pytest.raises(InvalidArgumentError, match="needs numba"):
        extract_centroids(img, backend="compiled")
    assert len(extract_centroids(img, backend="auto").centroids) > 10  # numpy, quietly


def test_after_warm_up_a_new_process_compiles_nothing():
    """Once warm_up() has filled numba's cache, a new process's extraction of a frame
    (the fits among them, whose helpers are compiled into their callers) loads every
    kernel it runs from the cache."""
    import os
    import subprocess
    import sys

    assert kernels.warm_up()
    code = ("from skysolve.extraction import kernels\n"
            "from skysolve.tests.frames import tess_like_frame\n"
            "from skysolve import extract_centroids\n"
            "img = tess_like_frame(seed=2, shape=(256, 320), n_stars=200)[0]\n"
            "res = extract_centroids(img, backend='auto')\n"
            "ks = [k for k in kernels._COMPILED.values() if k.signatures]\n"
            "fits = kernels._COMPILED['fit_windows'].signatures\n"
            "print(len(res.centroids) > 5, len(fits) > 0, "
            "sum(sum(k.stats.cache_misses.values()) for k in ks))")
    env = dict(os.environ, SKYSOLVE_NO_BACKGROUND_COMPILE="1")
    env.pop("SKYSOLVE_DISABLE_NUMBA", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "True True 0"


def test_fill_gaps_as_numpy():
    """The compiled gap fill gives numpy's filled frame and fill gains to the bit, along
    both axes: frames missing every second row or column, and lone unusable pixels
    (gaps at the frame's edges, and beside other unusable pixels, which a cubic's far
    neighbours must skip)."""
    ex = importlib.import_module("skysolve.extraction.extract")
    rng = np.random.default_rng(21)
    filled = 0
    for trial in range(60):
        h, w = (int(v) for v in rng.integers(3, 48, 2))
        work = (rng.normal(100.0, 10.0, (h, w)) * rng.choice([1.0, 1e-3, 1e4])).astype(
            np.float32)
        bad = rng.random((h, w)) < rng.choice([0.05, 0.2, 0.4])
        if trial % 3 == 0:
            bad[1::2] = True
        elif trial % 3 == 1:
            bad[:, int(rng.integers(2))::2] = True
        good = ~bad
        rows = np.zeros_like(bad)
        rows[1:-1] = bad[1:-1] & good[:-2] & good[2:]
        cols = np.zeros_like(bad)
        cols[:, 1:-1] = bad[:, 1:-1] & good[:, :-2] & good[:, 2:] & ~rows[:, 1:-1]
        for axis, gap in ((0, rows), (1, cols)):
            out = {}
            for name in ("compiled", "reference"):
                with kernels.backend(name):
                    frame, gain = work.copy(), np.zeros((h, w), np.float32)
                    ex._fill_gaps(frame, good, gap, axis, gain)
                    out[name] = (frame, gain)
            np.testing.assert_array_equal(out["compiled"][0], out["reference"][0])
            np.testing.assert_array_equal(out["compiled"][1], out["reference"][1])
            filled += int(gap.sum())
            assert not np.array_equal(out["compiled"][0], work) or not gap.any()
    assert filled > 1000


def test_gap_bridging_as_numpy():
    """The compiled gap fill and gap noise give numpy's filled frame and sky to the bit
    (the noise's factor in float32, as numpy keeps a float32 array times a Python float),
    on frames missing every second row or column and with lone unusable pixels, at sky
    levels and scales from 1e-3 to 1e4."""
    ex = importlib.import_module("skysolve.extraction.extract")
    rng = np.random.default_rng(22)
    noisy = 0
    for trial in range(30):
        h, w = (int(v) for v in rng.integers(8, 64, 2))
        scale = float(rng.choice([1e-3, 1.0, 1e4]))
        work = (rng.normal(100.0, 10.0, (h, w)) * scale).astype(np.float32)
        bad = rng.random((h, w)) < rng.choice([0.05, 0.2])
        if trial % 3 == 0:
            bad[1::2] = True
        elif trial % 3 == 1:
            bad[:, 1::2] = True
        out = {}
        for name in ("compiled", "reference"):
            with kernels.backend(name):
                frame = work.copy()
                gaps, sky = ex._bridge_gaps(frame, bad)
                out[name] = (frame, None if gaps is None else gaps.copy(), sky.copy())
        got, want = out["compiled"], out["reference"]
        np.testing.assert_array_equal(got[0], want[0])
        assert (got[1] is None) == (want[1] is None)
        if want[1] is not None:
            np.testing.assert_array_equal(got[1], want[1])
            np.testing.assert_array_equal(got[2], want[2])
            noisy += int(np.count_nonzero(want[2] != want[0]))
    assert noisy > 1000


def test_jpeg_block_counts_as_numpy():
    """The compiled counts of each JPEG block's dark pixels (below the model and the sky
    level by the depth) and lit ones (above the model by it) are numpy's float32
    comparisons' to the bit: frames of any size and block phase, pixels exactly at each
    bound and one float32 step either side of it, a model that varies across the frame,
    depths and sky levels that float32 rounds."""
    ex = importlib.import_module("skysolve.extraction.extract")
    rng = np.random.default_rng(31)
    hits = np.zeros(2, int)
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(1, 70, 2))
        pr, pc = (int(v) for v in rng.integers(0, 8, 2))
        model = (100.0 + rng.normal(0.0, 3.0) * np.linspace(-1, 1, w)[None, :]
                 + rng.normal(0.0, 3.0) * np.linspace(-1, 1, h)[:, None]).astype(np.float32)
        depth = float(rng.uniform(1.0, 30.0)) * (1.0 + 1e-9)
        sky = float(100.0 + rng.normal(0.0, 2.0)) + 1e-7
        work = (model + rng.normal(0.0, 10.0, (h, w))).astype(np.float32)
        # pixels at the bounds (as numpy rounds them) and a step either side
        at = rng.random((h, w))
        lower = model - np.float32(depth)
        upper = model + np.float32(depth)
        for lo, hi, bound in ((0.0, 0.1, lower), (0.1, 0.2, upper)):
            pick = (at >= lo) & (at < hi)
            step = rng.integers(-1, 2, (h, w)).astype(np.float32)
            work[pick] = np.nextafter(bound, bound + step)[pick]
        work[at >= 0.95] = np.float32(sky - depth)
        blocks = ex._JpegBlocks((h, w), pr, pc)
        got = {}
        for name in ("compiled", "reference"):
            with kernels.backend(name):
                got[name] = ex._dark_and_lit(work, model, depth, sky, blocks)
        # (and the kernel itself, whichever way _dark_and_lit chooses)
        got["kernel"] = kernels.compiled("jpeg_block_counts")(
            work, model, np.float32(depth), np.float32(sky - depth), blocks.top, blocks.left,
            8, blocks.rows, blocks.cols)
        for name in ("compiled", "kernel"):
            for a, b in zip(got[name], got["reference"], strict=True):
                assert a.shape == b.shape == (blocks.rows, blocks.cols)
                np.testing.assert_array_equal(a, b)
        hits += [int(got["reference"][0].sum()), int(got["reference"][1].sum())]
    assert (hits > 500).all()


def test_dilate_as_numpy():
    """The compiled square dilation of a mask is numpy's doubling spans' to the bit:
    sparse and dense masks, reaches of 0 to beyond the frame's size, frames of one row
    or column, masks set along the frame's edges, views that are not C-ordered."""
    background = importlib.import_module("skysolve.extraction.background")
    rng = np.random.default_rng(41)
    grown = 0
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        mask = rng.random((h, w)) < rng.choice([0.002, 0.02, 0.3])
        if rng.random() < 0.3:
            mask[:, 0] = mask[-1] = True
        if rng.random() < 0.3:
            mask = np.asfortranarray(mask)
        r = int(rng.choice([0, 1, 3, 7, 16, 80]))
        got = {}
        for name in ("compiled", "reference"):
            with kernels.backend(name):
                got[name] = background._dilate(mask, r)
        np.testing.assert_array_equal(got["compiled"], got["reference"])
        rows, cols = np.nonzero(mask)
        want = np.zeros((h, w), bool)
        for i, j in zip(rows, cols, strict=True):
            want[max(0, i - r):i + r + 1, max(0, j - r):j + r + 1] = True
        np.testing.assert_array_equal(got["compiled"], want)
        grown += int(got["compiled"].sum() - mask.sum())
    assert grown > 1000


def test_floor_band_counts_as_numpy():
    """The compiled histogram above a clipped floor is numpy's to the bit: a JPEG'd
    gamma stretch (the floor spread over the values above it), with unusable pixels,
    NaN, dead pixels below the floor, values half a step apart (rounded half to even)
    at a step of 0.5, and odd and even sizes."""
    background = importlib.import_module("skysolve.extraction.background")
    from skysolve.extraction.tests.test_background import corner_distance2
    from skysolve.extraction.tests.test_hard_frames import jpeg_of

    kernels.warm_up()
    rng = np.random.default_rng(31)
    h, w = 121, 163
    r2 = corner_distance2(h, w)
    linear = 120.0 * (1.0 - 1.7 * r2) + rng.normal(0.0, 6.0, (h, w))
    picture = np.round(255.0 * np.clip(linear / 160.0, 0.0, 1.0) ** 0.25)
    spread = jpeg_of(picture, 75).astype(np.float32)
    dead = spread + 10.0
    dead[::6, ::4] = 0.0  # (below the floor of 10)
    halves = np.round(rng.normal(40.0, 8.0, (h, w + 1)) * 4.0).astype(np.float32) / 4.0
    holes = spread.copy()
    holes[rng.random((h, w)) < 0.02] = np.nan
    bad = rng.random((h, w)) < 0.1
    cases = [(spread, 0.0, 1.0, None), (spread, 0.0, 1.0, bad), (dead, 10.0, 1.0, None),
             (dead[:-1, :-1], 10.0, 1.0, bad[:-1, :-1]), (holes, 0.0, 1.0, None),
             (halves, 20.0, 0.5, None), (halves[:, :-1], 20.25, 0.5, bad)]
    for image, floor, quantum, mask in cases:
        image = np.ascontiguousarray(image)
        sky = float(np.nanmedian(image))
        n = int(round((sky - floor) / quantum))
        got = background._band_counts(image, image.dtype.type(floor), sky, quantum, n, mask)
        with kernels.backend("reference"):
            want = background._band_counts(image, image.dtype.type(floor), sky, quantum, n,
                                           mask)
        assert want.sum() > 100  # (premise: a band to count)
        np.testing.assert_array_equal(got, want)
