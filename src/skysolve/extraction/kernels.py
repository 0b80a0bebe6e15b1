"""The extractor's compiled kernels (numba), and when to use them.

On a camera frame with a few hundred candidate blobs, extraction's time was
numpy's per-call overhead, not arithmetic: the position fit was a chain of a
few hundred calls on arrays of a few stars each (one group per window size, a
second pass for the fits that need more steps), the per-blob sums a dozen
``bincount`` and ``ufunc.at`` passes, and labelling a scan of the whole frame
for a few thousand candidate pixels. The kernels here do the same arithmetic in
compiled loops, each the twin of a numpy function that stays the readable
definition:

* :func:`label_pixels` and :func:`paint_labels`: union-find over the runs of candidate
  pixels only, numbered as ``scipy.ndimage.label`` numbers them, and the labels painted
  on the label image (:func:`.extract._label`);
* :func:`blob_pixels`, :func:`blob_sums` (:func:`blob_sums_of`: a thread's share of
  the blobs), :func:`neighbour_sums` and :func:`axis_light`: the blob pixels gathered,
  per-blob counts, flux, peaks and moments, and the peaks' neighbour sums behind the
  sharpness and the wings, the same sums in the same order as
  :func:`.blobs._measure_blobs`, :func:`.blobs._blob_sums`,
  :func:`.blobs.neighbour_totals` and :func:`.blobs.axis_light`;
* :func:`fit_windows` (and :func:`fit_stamps`): each star's window cut out and
  fitted as :func:`.blobs._fit_group` and :func:`.psffit.fit_gaussian_stamps` do
  (to rounding: the sums run in another order);
* :func:`model_at`, :func:`grid_model`, :func:`tile_bound` and :func:`cell_sums`: the
  background model at flat pixel indices (:meth:`.background.Background.at`, per pixel
  rather than from its tables), on a grid of rows x columns
  (:meth:`.background.Background.at_grid`) and its least per tile
  (:meth:`.background.Background.tile_lower_bound`), and the residual's half-cell sums
  (:func:`.background._half_cell_sums`);
* :func:`step_counts`: the histogram of neighbouring counts' differences behind the
  data's step (:func:`.extract._count_step`);
* :func:`floor_band_counts`: the histogram above a clipped floor in which a lossy
  encoder spread it (:func:`.background._band_counts`);
* :func:`dot_bands`: the dots near each line of pairs of bright dots, and of its flux
  (:func:`.filters._dotted_lines`);
* :func:`piece_lines`: the trail pieces on each piece's line, and the span they reach
  along it (:func:`.filters._piece_lines`);
* :func:`median9`: the 3x3 median of a block grid (:func:`.background._filter3`);
* :func:`local_checks`: the background's noise grid and structure test, from the
  residual's half-cell sums (:func:`.background._local_checks`);
* :func:`select_value`: an order statistic of a sample, as ``np.partition`` selects it
  (:func:`select_into` in the caller's scratch space: :func:`.orderstats.order_statistic`),
  :func:`next_order_statistic`: the one after it
  (an even sample's median, :func:`.orderstats.median`), and :func:`robust_location`: a
  sample's clipped median and MAD sigma by them (:func:`.background.robust_location`);
* :func:`constant_area`: the sample pixels in constant areas
  (:func:`.background._constant_area`);
* :func:`level_rows`: a banded frame less its rows' or columns' offsets
  (:func:`.banding._levelled`), and :func:`running_medians`: the smoothed levels they
  are measured against (:func:`.orderstats.running_median`);
* :func:`counts_to_float32`: a camera's integers as the float32 working copy, with the
  rows' maxima (:func:`.extract._counts_work`), :func:`fill_gaps`: its one-pixel gaps
  filled from their neighbours (:func:`.extract._fill_gaps`), and :func:`add_gap_noise`:
  the noise the fill averaged away (:func:`.extract._bridge_gaps`);
* :func:`integer_medians`: block medians of 16-bit integer samples by one histogram per
  block (:func:`.background._kth`, :func:`.background._counted_medians`), and
  :func:`network_medians`: those of the float32 working copy or a camera's counts through
  a sorting network, a row of blocks side by side (:func:`.background._band_medians`;
  also a float64 frame's, :func:`.skycircle._block_medians`);
* :func:`band_candidates`: the pixels above their tile's limit, the extractor's first
  selection of candidates (:func:`.extract._above_indices`), and of those the pixels
  above the background model by the threshold (:func:`.extract._candidate_pixels`);
* :func:`lattice_levels` and :func:`sky_candidates`: the quick extraction's block
  medians of a pixel lattice, and its pass over the frame for the pixels above a
  bilinear sky by more than a bilinear limit (:func:`.fast._block_medians`,
  :func:`.fast._candidates`);
* :func:`dilate`: a mask grown by a square (:func:`.background._dilate`: the dark constant
  areas of :func:`.background.dark_constant_areas`);
* :func:`jpeg_block_counts`: the dark and the lit pixels of each JPEG block of a frame
  (:func:`.extract._unringed_dark_fraction`);
* :func:`on_circles`: how many rim points lie on each trial circle of an all-sky frame's
  image circle (:func:`.skycircle._on_circles`);
* :func:`smooth`: the matched filter's two passes (:func:`.extract._smooth`:
  shifted-slice sums along rows, then columns) in one pass over the frame, the same
  arithmetic to the bit.

The agreement tests (``tests/test_kernels.py``) check each pair, and that a whole
extraction keeps and rejects the same detections either way.

The kernels release the GIL: an extraction cuts a frame's independent work (the
fits, the blob pixels' gather, a large frame's block medians and candidate pixels)
into chunks for its threads (:attr:`.ExtractionOptions.threads`,
:mod:`skysolve._threads`; :func:`backend` sets the count for the extraction running
in a thread).

Like the solver's kernels, these are used only once a process has compiled
them into numba's disk cache and left a warm marker (:func:`skysolve._jit.is_warm`):
until then extraction runs the numpy code and ``python -m skysolve.extraction.kernels``
compiles them in the background, so that no extraction waits for the compiler.
``SKYSOLVE_DISABLE_NUMBA=1`` keeps the numpy code.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import _jit, _threads
from ..errors import InvalidArgumentError

__all__ = ["compiled", "compiled_fit", "backend", "warm_up", "SOURCES"]

#: What the warm marker of these kernels depends on (this file: numba caches per file).
SOURCES = [Path(__file__).resolve()]

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)
# Abramowitz & Stegun 7.1.26, as in psffit
_AS_P = 0.3275911
_AS_A1, _AS_A2, _AS_A3, _AS_A4, _AS_A5 = (0.254829592, -0.284496736, 1.421413741,
                                          -1.453152027, 1.061405429)


def _profile(k, half, centre, s, e, de_dc, de_ds):
    """Pixel-integrated unit Gaussian over ``k`` pixels and its derivatives (in place)."""
    inv_s = 1.0 / s
    cdf_prev = 0.0
    pdf_prev = 0.0
    pdft_prev = 0.0
    for q in range(k + 1):
        t = (q - half - 0.5 - centre) * inv_s
        g = math.exp(-0.5 * t * t)
        u = t * _SQRT1_2
        tt = 1.0 / (1.0 + _AS_P * abs(u))
        poly = tt * (_AS_A1 + tt * (_AS_A2 + tt * (_AS_A3 + tt * (_AS_A4 + tt * _AS_A5))))
        cdf = math.copysign(1.0 - poly * g, u)
        pdf = g * (_INV_SQRT2PI * inv_s)
        pdft = pdf * t
        if q > 0:
            e[q - 1] = 0.5 * (cdf - cdf_prev)
            de_dc[q - 1] = pdf_prev - pdf
            de_ds[q - 1] = pdft_prev - pdft
        cdf_prev, pdf_prev, pdft_prev = cdf, pdf, pdft


def _solve_sym4(m, g, damping, x, low, z):
    """Solve one 4x4 symmetric system (upper triangle of ``m``) by Cholesky into ``x``;
    a system that is not positive definite gets a zero step (as
    :func:`.psffit._solve_sym4`). ``low`` and ``z`` are scratch."""
    good = True
    for j in range(4):
        d = m[j, j] * (1.0 + damping) + 1e-300
        for q in range(j):
            d -= low[j, q] * low[j, q]
        if not d > 0:
            good = False
        ljj = math.sqrt(d) if d > 0 else 1.0
        low[j, j] = ljj
        for i in range(j + 1, 4):
            acc = m[j, i]
            for q in range(j):
                acc -= low[i, q] * low[j, q]
            low[i, j] = acc / ljj
    for i in range(4):
        acc = g[i]
        for q in range(i):
            acc -= low[i, q] * z[q]
        z[i] = acc / low[i, i]
    for i in range(3, -1, -1):
        acc = z[i]
        for q in range(i + 1, 4):
            acc -= low[q, i] * x[q]
        x[i] = acc / low[i, i]
    for i in range(4):
        if not (good and math.isfinite(x[i])):
            x[i] = 0.0


def _axis_step(k, proj, other, e, de_dc, de_ds, amp, bkg, fix_sigma, m, g, x, low):
    """One Gauss-Newton step of a 1-D fit (centre, A, sigma, b) into ``x``."""
    c = 0.0
    sb = 0.0
    for q in range(k):
        c += other[q] * other[q]
        sb += other[q]
    ac = amp * c
    m[:, :] = 0.0
    g[:] = 0.0
    s0 = s1 = s2 = rs = 0.0
    for q in range(k):
        res = proj[q] - ac * e[q] - bkg * sb
        j0 = ac * de_dc[q]
        j1 = c * e[q]
        j2 = ac * de_ds[q]
        m[0, 0] += j0 * j0
        m[0, 1] += j0 * j1
        m[0, 2] += j0 * j2
        m[1, 1] += j1 * j1
        m[1, 2] += j1 * j2
        m[2, 2] += j2 * j2
        g[0] += j0 * res
        g[1] += j1 * res
        g[2] += j2 * res
        s0 += j0
        s1 += j1
        s2 += j2
        rs += res
    m[0, 3] = sb * s0
    m[1, 3] = sb * s1
    m[2, 3] = sb * s2
    m[3, 3] = k * sb * sb
    g[3] = sb * rs
    if fix_sigma:  # decouple sigma: unit diagonal, zero gradient
        m[0, 2] = m[1, 2] = m[2, 3] = g[2] = 0.0
        m[2, 2] = 1.0
    _solve_sym4(m, g, 1e-3, x, low[:4], low[4])


def _fit_one(stamp, weight, p0, iterations, fix_sigma, out, st, data, m, low):
    """Fit one stamp (see :func:`fit_stamps`); ``st`` (8, k), ``data`` (k, k), ``m``
    (4, 4) and ``low`` (12, 4) are scratch."""
    k = stamp.shape[0]
    half = (k - 1) // 2
    holes = False
    for i in range(k):
        for j in range(k):
            if weight[i, j]:
                data[i, j] = stamp[i, j]
            else:
                data[i, j] = 0.0
                holes = True
    # the state per axis (x, y) and the 4x4 step's right side and solution, in scratch
    # rows (no allocation per star)
    centre, sig, amp, bkg, last, g, x = (low[5], low[6], low[7], low[8], low[9], low[10],
                                         low[11])
    centre[0], centre[1] = p0[0], p0[1]
    sig[0], sig[1] = p0[3], p0[4]
    amp[0] = amp[1] = p0[2]
    bkg[0] = bkg[1] = 0.0
    last[0] = last[1] = np.inf
    ex, dxc, dxs, ey, dyc, dys, px, py = st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7]
    for it in range(iterations):
        _profile(k, half, centre[0], sig[0], ex, dxc, dxs)
        _profile(k, half, centre[1], sig[1], ey, dyc, dys)
        if holes and it > 0:  # missing pixels imputed with the current model
            a_m = 0.5 * (amp[0] + amp[1])
            b_m = 0.5 * (bkg[0] + bkg[1])
            for i in range(k):
                for j in range(k):
                    if not weight[i, j]:
                        data[i, j] = np.float32(a_m * ey[i] * ex[j] + b_m)
        px[:] = 0.0
        py[:] = 0.0
        for i in range(k):
            for j in range(k):
                v = data[i, j]
                px[j] += ey[i] * v
                py[i] += v * ex[j]
        for axis in range(2):
            if axis == 0:
                _axis_step(k, px, ey, ex, dxc, dxs, amp[0], bkg[0], fix_sigma, m, g, x, low)
            else:
                _axis_step(k, py, ex, ey, dyc, dys, amp[1], bkg[1], fix_sigma, m, g, x, low)
            dc = min(max(x[0], -0.5), 0.5)
            centre[axis] += dc
            amp[axis] += x[1]
            s = sig[axis]
            s = s + min(max(x[2], -0.5 * s), 0.5 * s)
            sig[axis] = min(max(s, 0.2), 20.0)
            bkg[axis] += x[3]
            last[axis] = abs(dc)
    out[0] = centre[0]
    out[1] = centre[1]
    out[2] = 0.5 * (amp[0] + amp[1])
    out[3] = sig[0]
    out[4] = sig[1]
    out[5] = 0.5 * (bkg[0] + bkg[1])
    finite = True
    for q in range(6):
        finite = finite and math.isfinite(out[q])
    return (finite and amp[0] > 0 and amp[1] > 0 and 0.2 < out[3] < 20.0
            and 0.2 < out[4] < 20.0 and abs(out[0]) <= half and abs(out[1]) <= half
            and max(last[0], last[1]) < 0.05)


def fit_stamps(stamps, weights, p0, iterations, fix_sigma):
    """:func:`.psffit.fit_gaussian_stamps`, star by star: ``(params (N, 6), ok (N,))``."""
    n, k = stamps.shape[0], stamps.shape[1]
    p = np.empty((n, 6))
    ok = np.zeros(n, dtype=np.bool_)
    st = np.empty((8, k))
    data = np.empty((k, k))
    m = np.empty((4, 4))
    low = np.zeros((12, 4))
    for s in range(n):
        ok[s] = _fit_one(stamps[s], weights[s], p0[s], iterations, fix_sigma, p[s], st, data,
                         m, low)
    return p, ok


def _root(parent, i):
    """The root of ``i`` in a union-find forest, halving the path on the way."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def label_pixels(idx, w):
    """8-connected components of the pixels at sorted flat indices ``idx`` of a frame
    ``w`` pixels wide: ``(label of each pixel (1..n), n)``, numbered in raster order
    of each component's first pixel as ``scipy.ndimage.label`` numbers them.

    The pixels are first cut into runs (consecutive pixels of a row), and the runs
    joined: one pass in raster order joins each run to the runs of the row above that
    touch it (reaching one column beyond its ends), found by a pointer that walks that
    row's runs, so the cost grows with the number of pixels, not the frame's size. A
    component's root is its first run, whose first pixel is its first in raster order.
    (Joined pixel by pixel, each to its left neighbour and the three above, the 399,129
    candidate pixels of a 2048 x 2048 TESS-like frame at 5 sigma took 4.9 ms; as their
    64,664 runs, 2.1 ms.)
    """
    n = len(idx)
    first = np.empty(n + 1, np.intp)  # each run's first position in idx
    run_row = np.empty(n, np.intp)
    run_lo = np.empty(n, np.intp)  # its first and last columns
    run_hi = np.empty(n, np.intp)
    m = 0
    r = 0
    row_start = 0
    for i in range(n):
        p = idx[i]
        if p >= row_start + w:  # (the indices are sorted: no division per pixel)
            r = p // w
            row_start = r * w
        c = p - row_start
        if i == 0 or c == 0 or idx[i - 1] != p - 1:
            first[m] = i
            run_row[m] = r
            run_lo[m] = c
            m += 1
        run_hi[m - 1] = c
    first[m] = n
    parent = np.arange(m)
    j = 0  # the first run of the row above that may touch the current one
    for s in range(m):
        r = run_row[s]
        if r == 0:
            continue
        lo = run_lo[s] - 1
        hi = run_hi[s] + 1
        while j < s and (run_row[j] < r - 1 or (run_row[j] == r - 1 and run_hi[j] < lo)):
            j += 1
        # ``root``: the run's root, kept at hand (runs of one row never touch, so it is
        # still alone here, and every earlier run's index is smaller)
        root = s
        q = j
        while q < s and run_row[q] == r - 1 and run_lo[q] <= hi:
            other = _root(parent, q)
            if other < root:
                parent[root] = other
                root = other
            elif root < other:
                parent[other] = root
            q += 1
    lab = np.empty(n, dtype=np.int32)
    run_lab = np.empty(m, dtype=np.int32)
    count = 0
    for s in range(m):
        root = _root(parent, s)
        if root == s:
            count += 1
            run_lab[s] = count
        else:
            run_lab[s] = run_lab[root]
        for i in range(first[s], first[s + 1]):
            lab[i] = run_lab[s]
    return lab, count


def paint_labels(out, idx, lab):
    """``out[idx] = lab``: the labels of the pixels at flat indices ``idx`` painted on the
    label image ``out`` (flat), as :func:`.extract._label` paints them with numpy (whose
    scatter took four times as long: 1.1 against 0.28 ms on the 376,000 candidate pixels
    of a TESS-like frame)."""
    for i in range(len(idx)):
        out[idx[i]] = lab[i]


def cell_sums(resid, rows, cols, half, clip):
    """Count, sum and sum of squares of a residual sample (at pixel ``rows`` x ``cols``,
    clipped at +-``clip`` of its block of ``2 half`` px) in cells of ``half`` px, as
    :func:`.background._half_cell_sums` adds them up (the same order): three
    ``(2 ny, 2 nx)`` grids for the ``(ny, nx)`` blocks of ``clip``."""
    ny, nx = clip.shape
    out = np.zeros((3, 2 * ny, 2 * nx))
    m = len(cols)
    ccell = cols // half
    cblock = cols // (2 * half)
    for i in range(len(rows)):
        rcell = rows[i] // half
        cr = rows[i] // (2 * half)
        j = 0
        while j < m:
            # the samples of one cell in this row: its sums held in registers, in the
            # same order of additions as one sample at a time into the grid
            q = ccell[j]
            lim = clip[cr, cblock[j]]
            n = out[0, rcell, q]
            s1 = out[1, rcell, q]
            s2 = out[2, rcell, q]
            while j < m and ccell[j] == q:
                v = min(max(resid[i, j], -lim), lim)
                n += 1.0
                s1 += v
                s2 += v * v
                j += 1
            out[0, rcell, q] = n
            out[1, rcell, q] = s1
            out[2, rcell, q] = s2
    return out


def _sweep(out, o, first, base, b, f, src, a0, z0, k0, a1, z1, k1, a2, z2, k2, m, n):
    """With ``first``, ``out[o:o + n] = base[b:b + n] * f`` plus the first ``m`` (0-3)
    symmetric tap pairs ``(src[a:a + n] + src[z:z + n]) * k``, added in that order, in
    float32 (``f``: the centre tap); else those pairs added to ``out`` as it is.

    Up to three pairs in one pass over the pixels: the sum stays in a register between
    them, where a pass per pair loads and stores each pixel again. The rows are read at
    offsets, not through slices: a slice counts its array's references (atomically) when
    made and dropped, and a dozen a row cost more than the arithmetic. The pairs added to
    ``out`` in place have loops of their own: read through another name, ``out`` looks
    to the compiler as if it might overlap what it reads at some other offset, and the
    loop ran a pixel at a time."""
    # (unsigned indices: numba wraps a negative signed index around, a test per load
    # that kept the loop from reading the rows as vectors)
    o, b, n = np.uint64(o), np.uint64(b), np.uint64(n)
    a0, z0, a1, z1 = np.uint64(a0), np.uint64(z0), np.uint64(a1), np.uint64(z1)
    a2, z2 = np.uint64(a2), np.uint64(z2)
    if not first:
        if m >= 3:
            for c in range(n):
                out[o + c] = ((out[o + c] + (src[a0 + c] + src[z0 + c]) * k0)
                              + (src[a1 + c] + src[z1 + c]) * k1) \
                    + (src[a2 + c] + src[z2 + c]) * k2
        elif m == 2:
            for c in range(n):
                out[o + c] = (out[o + c] + (src[a0 + c] + src[z0 + c]) * k0) \
                    + (src[a1 + c] + src[z1 + c]) * k1
        elif m == 1:
            for c in range(n):
                out[o + c] = out[o + c] + (src[a0 + c] + src[z0 + c]) * k0
    elif m >= 3:
        for c in range(n):
            out[o + c] = ((base[b + c] * f + (src[a0 + c] + src[z0 + c]) * k0)
                          + (src[a1 + c] + src[z1 + c]) * k1) + (src[a2 + c] + src[z2 + c]) * k2
    elif m == 2:
        for c in range(n):
            out[o + c] = (base[b + c] * f + (src[a0 + c] + src[z0 + c]) * k0) \
                + (src[a1 + c] + src[z1 + c]) * k1
    elif m == 1:
        for c in range(n):
            out[o + c] = base[b + c] * f + (src[a0 + c] + src[z0 + c]) * k0
    else:
        for c in range(n):
            out[o + c] = base[b + c] * f


def _tapped(src, kernel, c):
    """Pixel ``c`` of :func:`_smooth_row`'s output, its partners past the row's ends read
    at the end pixels: the centre tap, then each pair from the outermost in."""
    w = src.shape[0]
    half = kernel.shape[0] // 2
    acc = src[c] * kernel[half]
    for i in range(half):
        d = half - i
        acc += (src[max(c - d, 0)] + src[min(c + d, w - 1)]) * kernel[i]
    return acc


def _smooth_row(src, kernel, dst):
    """One row of :func:`.extract._smooth`'s first pass (along the row, its end pixels
    replicated), to the bit: in float32, the centre tap first, then each symmetric pair
    from the outermost in, as the numpy code adds them. The pixels whose pairs all lie in
    the row take up to three pairs a pass over them (:func:`_sweep`: the compiler
    vectorises over pixels, float32 twice the pixels a vector of float64 holds); the
    ``len(kernel) // 2`` at each end read the end pixels for the partners past them, one
    pixel at a time."""
    w = src.shape[0]
    half = kernel.shape[0] // 2
    lo = min(half, w)  # pixels lo:hi have all their partners inside the row
    hi = max(w - half, lo)
    for c in range(lo):
        dst[c] = _tapped(src, kernel, c)
    for c in range(hi, w):
        dst[c] = _tapped(src, kernel, c)
    if hi == lo:
        return
    n = hi - lo
    i = 0
    while True:
        m = min(half - i, 3)
        d0, d1, d2 = half - i, half - i - 1, half - i - 2
        _sweep(dst, lo, i == 0, src, lo, kernel[half], src, lo - d0, lo + d0, kernel[i],
               lo - d1, lo + d1, kernel[min(i + 1, half)], lo - d2, lo + d2,
               kernel[min(i + 2, half)], m, n)
        i += m  # (the pairs left: added to dst in place)
        if i >= half:
            return


def smooth(img, kernel, out, r0, r1):
    """Rows ``r0:r1`` of :func:`.extract._smooth` (along rows, then along columns, edge
    pixels and rows replicated), to the bit: each pass in float32, the centre tap
    first, then each symmetric pair from the outermost in, as the numpy code adds them.

    The first pass's rows are made as the second needs them, into a ring of the
    ``len(kernel)`` latest (a few kB, in a core's cache), rather than into a frame
    between the passes that is written out and read back. A band of rows recomputes
    the first pass of the ``len(kernel) // 2`` rows beyond each of its ends. Each pass
    takes up to three tap pairs at a time (:func:`_sweep`): a 1024x768 frame on one
    thread took 0.80 ms with 7 taps (1.39 with 11, 2.66 with 25) at a pass per pair, 0.45
    (0.86, 1.9) so."""
    h, w = img.shape
    half = kernel.shape[0] // 2
    k = 2 * half + 1
    ring = np.empty(k * w, np.float32)  # first-pass row s at ring[(s % k) * w:][:w]
    made = max(r0 - half, 0)  # the next first-pass row to make
    for r in range(r0, r1):
        while made <= min(r + half, h - 1):
            _smooth_row(img[made], kernel, ring[(made % k) * w:(made % k + 1) * w])
            made += 1
        dst = out[r]
        i = 0
        while True:
            m = min(half - i, 3)
            i1, i2 = min(i + 1, half), min(i + 2, half)
            _sweep(dst, 0, i == 0, ring, (r % k) * w, kernel[half], ring,
                   (max(r - half + i, 0) % k) * w, (min(r + half - i, h - 1) % k) * w,
                   kernel[i],
                   (max(r - half + i1, 0) % k) * w, (min(r + half - i1, h - 1) % k) * w,
                   kernel[i1],
                   (max(r - half + i2, 0) % k) * w, (min(r + half - i2, h - 1) % k) * w,
                   kernel[i2], m, w)
            i += m  # (the pairs left: added to dst in place)
            if i >= half:
                break


def fill_gaps(work, good, gap, axis, gain):
    """:func:`.extract._fill_gaps` to the bit, pixel by pixel: each gap of ``gap`` in
    ``work`` from its usable neighbours along ``axis`` (0: above and below), the cubic
    through the two either side where all four are usable (and inside the frame), else
    the mean of the two, in float64 and stored in float32; ``gain`` takes the fill's
    noise variance over a pixel's. The gaps' values are independent: a gap's nearest
    neighbours are usable, never gaps, and a farther one is read only when usable, so
    filling in place reads what numpy's whole-array form reads (which made a dozen
    temporaries the size of the gaps: 38 ms for a 1024x768 frame missing every second
    row)."""
    h, w = work.shape
    size = h if axis == 0 else w
    cubic_gain = (2 * 9.0 ** 2 + 2) / 16.0 ** 2
    for i in range(h):
        for j in range(w):
            if not gap[i, j]:
                continue
            pos = i if axis == 0 else j
            lo1 = max(pos - 1, 0)
            hi1 = min(pos + 1, size - 1)
            lo3 = max(pos - 3, 0)
            hi3 = min(pos + 3, size - 1)
            if axis == 0:
                near = np.float64(work[lo1, j]) + work[hi1, j]
                far_ok = pos >= 3 and pos < size - 3 and good[lo3, j] and good[hi3, j]
                far = np.float64(work[lo3, j]) + work[hi3, j]
            else:
                near = np.float64(work[i, lo1]) + work[i, hi1]
                far_ok = pos >= 3 and pos < size - 3 and good[i, lo3] and good[i, hi3]
                far = np.float64(work[i, lo3]) + work[i, hi3]
            if far_ok:
                work[i, j] = (9.0 * near - far) / 16.0
                gain[i, j] = cubic_gain
            else:
                work[i, j] = 0.5 * near
                gain[i, j] = 0.5


def add_gap_noise(sky, at, gain, scatter, noise):
    """:func:`.extract._bridge_gaps`'s noise on the filled gaps, to the bit: at each flat
    index of ``at`` (distinct), ``sky`` (float32) gains ``noise`` times the noise the
    fill averaged away, ``sqrt(1 - gain) * scatter``, in numpy's types (that factor in
    float32, as numpy keeps a float32 array times a Python float; the product with the
    float64 noise in float64, stored in float32). numpy's form made half a dozen
    temporaries the size of the gaps."""
    flat = sky.reshape(-1)
    g = gain.reshape(-1)
    s = np.float32(scatter)
    for t in range(at.shape[0]):
        q = at[t]
        extra = np.float32(np.sqrt(np.float32(1.0) - g[q])) * s
        flat[q] = flat[q] + np.float32(np.float64(extra) * noise[t])


def counts_to_float32(arr, out, row_max, r0, r1):
    """Rows ``r0:r1`` of a camera's integers (8 or 16 bits) as float32 into ``out``
    (exact), and each row's maximum into ``row_max``: the working copy and the rows'
    maxima that :func:`.extract._auto_saturation` reads, in one pass over the frame
    instead of two."""
    w = arr.shape[1]
    for r in range(r0, r1):
        src = arr[r]
        dst = out[r]
        top = src[0]
        for c in range(w):
            v = src[c]
            dst[c] = np.float32(v)
            top = max(top, v)
        row_max[r] = top


def _rank_in_bin(row, base, shift, c, r, fine):
    """The value less ``base`` of rank ``r`` among the values ``v`` of ``row`` whose
    ``(v - base) >> shift`` is ``c``, from their histogram (``fine``: scratch space of
    ``1 << shift`` counts)."""
    width = 1 << shift
    fine[:width] = 0
    for i in range(row.size):
        d = np.int64(row[i]) - base
        if (d >> shift) == c:
            fine[d - (c << shift)] += 1
    below = 0
    for v in range(width):
        below += fine[v]
        if below > r:
            return (c << shift) + v
    return -1  # (not reached: bin c holds rank r)


def integer_medians(tiles):
    """:func:`.background._kth` of 16-bit integer tiles ``(m, n)``: each tile's median
    (the mean of its two middle values for an even ``n``) from a histogram of the tile's
    own range of values walked up to the middle. A range wider than 4,096 values (a
    star's peak among dark sky) is counted in 4,096 bins of ``2**shift`` values, and
    the bin holding the middle then value by value.

    numpy partitions 16-bit integers with vectorised code, yet it took 650 us for the
    192 tiles of 1024 samples of a 1024x768 frame on the development machine, this
    190 us; a dark sky of a few values (numpy's selection slows ~9x on so many ties)
    counts as fast."""
    m, n = tiles.shape
    k = (n - 1) // 2
    out = np.empty(m)
    bins = 4096
    hist = np.empty(bins, np.int64)
    fine = np.empty(16, np.int64)  # (16-bit values: at most 16 per bin)
    for t in range(m):
        row = tiles[t]
        lo = row[0]
        hi = lo
        for i in range(n):
            v = row[i]
            lo = min(lo, v)
            hi = max(hi, v)
        base = np.int64(lo)
        top = np.int64(hi) - base
        shift = 0
        while (top >> shift) >= bins:
            shift += 1
        used = (top >> shift) + 1
        hist[:used] = 0
        for i in range(n):
            hist[(np.int64(row[i]) - base) >> shift] += 1
        below = 0
        a = -1
        b = -1
        below_a = 0
        below_b = 0
        for c in range(used):
            if a < 0 and below + hist[c] > k:
                a = c
                below_a = below
            if below + hist[c] > k + 1:
                b = c
                below_b = below
                break
            below += hist[c]
        if shift:
            if fine.size < (1 << shift):
                fine = np.empty(1 << shift, np.int64)
            a = _rank_in_bin(row, base, shift, a, k - below_a, fine)
            if n % 2 == 0:
                b = _rank_in_bin(row, base, shift, b, k + 1 - below_b, fine)
        if n % 2:
            out[t] = np.float64(a + base)
        else:
            out[t] = 0.5 * (np.float64(a + base) + (b + base))
    return out


def _exchange(p, pairs, n, nan):
    """The compare-exchanges ``pairs`` (rows ``(a, b)``) of a sorting network, applied to
    the first ``n`` lanes of the rows of ``p`` (one value of each item a row): the
    smaller value into row ``a``, the larger into row ``b``; with ``nan``, each as
    ``np.minimum``/``np.maximum`` take it (the second of equal values, NaN from either),
    which values without NaN need not pay for (a TESS-like frame's block medians: 1.3
    against 1.9 ms). Each exchange a pass along the two rows, a loop the compiler
    vectorises."""
    for q in range(pairs.shape[0]):
        pa = p[pairs[q, 0]]
        pb = p[pairs[q, 1]]
        if nan:
            for j in range(n):
                x = pa[j]
                y = pb[j]
                pa[j] = x if x < y or x != x else y
                pb[j] = x if x > y or x != x else y
        else:
            for j in range(n):
                x = pa[j]
                y = pb[j]
                pa[j] = min(x, y)
                pb[j] = max(x, y)


def network_medians(region, bh, bw, sy, sx, pairs, size, top):
    """:func:`.background._kth` of the samples every ``sy`` rows and ``sx`` columns of
    every ``bh`` x ``bw`` block of ``region`` (tiled exactly by them; float32, float64 or
    a camera's 8- or 16-bit counts), shape ``(ny, nx)``: the same order statistics,
    through the compare-exchanges ``pairs`` of :func:`.background.median_network`
    (``size`` values, those beyond a block's own ``top``, the type's largest), a row of
    blocks at a time: each block's samples gathered into a column of a ``(size, nx)``
    array of their type, each exchange a pass along two of its rows (a loop the
    compiler vectorises). A 2048x2048 float32 frame's 16,384 blocks of 64 samples:
    1.2 ms against 3.3 for numpy's gather and partition. Floats must be finite (the
    working copy's: no NaN)."""
    ny, nx = region.shape[0] // bh, region.shape[1] // bw
    rs = (bh + sy - 1) // sy
    cs = (bw + sx - 1) // sx
    n = rs * cs
    k = (n - 1) // 2
    d = np.empty((size, nx), region.dtype)
    d[n:] = top
    out = np.empty((ny, nx))
    for by in range(ny):
        for ii in range(rs):
            r = by * bh + ii * sy
            for jj in range(cs):
                dst = d[ii * cs + jj]
                for bx in range(nx):
                    dst[bx] = region[r, bx * bw + jj * sx]
        _exchange(d, pairs, nx, False)
        for t in range(nx):
            if n % 2 == 0:  # (the two middle values' mean, in float64, as _kth takes it)
                out[by, t] = 0.5 * (np.float64(d[k, t]) + d[k + 1, t])
            else:
                out[by, t] = d[k, t]
    return out


def _lerp2(a0, a1, b0, b1, f, t, between):
    """``a + t (b - a)``, ``a`` and ``b`` interpolated between ``a0, a1`` and ``b0, b1`` by
    ``f``; ``b - a`` taken as 0 unless ``between``: a background model's value
    (:func:`model_at`). (It takes numbers, not the arrays: a compiled call that takes
    arrays counts their references, 80 ns a pixel.)"""
    a = a0 * (1.0 - f) + a1 * f
    step = 0.0
    if between:
        step = (b0 * (1.0 - f) + b1 * f) - a
    return a + t * step


def model_at(flat, w, grid, c0, c1, fc, r0, fr):
    """A :class:`.background.Background` model at flat pixel indices, with the arithmetic
    of its tables (the grid interpolated along the row nodes ``r0`` and ``r0 + 1`` to the
    pixel's column, then between them) done per pixel instead of tabulated for every
    column of the frame first; ``c0``, ``c1``, ``fc`` per column, ``r0``, ``fr`` per row."""
    out = np.empty(len(flat))
    last = grid.shape[0] - 1
    r = 0
    start = 0  # the first flat index of row r
    for i in range(len(flat)):
        # (the extractor's indices come sorted: the row moves on by steps, no division)
        if flat[i] < start or flat[i] >= start + w:
            r = flat[i] // w
            start = r * w
        c = flat[i] - start
        g = r0[r]
        nxt = min(g + 1, last)
        out[i] = _lerp2(grid[g, c0[c]], grid[g, c1[c]], grid[nxt, c0[c]], grid[nxt, c1[c]],
                        fc[c], fr[r], g < last)
    return out


def grid_model(grid, c0, c1, fc, r0, fr, out):
    """A :class:`.background.Background` model on the grid of pixel rows x columns whose
    node indices and fractions are ``r0``, ``fr`` (rows) and ``c0``, ``c1``, ``fc``
    (columns), as :meth:`.background.Background.at_grid` computes it with numpy (the
    same operations in the same order): the grid interpolated to the columns at every
    row node, the differences between consecutive row nodes (0 after the last), then
    ``coarse[r0] + fr x step[r0]``, in one call rather than a dozen small ones; into
    ``out`` (``(len(r0), len(c0))``, float64, or float32: the values rounded as they are
    stored, as ``astype`` rounds them), which it returns."""
    ny = grid.shape[0]
    m = len(c0)
    coarse = np.empty((ny, m))
    for g in range(ny):
        for j in range(m):
            coarse[g, j] = grid[g, c0[j]] * (1.0 - fc[j]) + grid[g, c1[j]] * fc[j]
    step = np.zeros((ny, m))
    for g in range(ny - 1):
        for j in range(m):
            step[g, j] = coarse[g + 1, j] - coarse[g, j]
    for i in range(len(r0)):
        g = r0[i]
        for j in range(m):
            out[i, j] = coarse[g, j] + fr[i] * step[g, j]
    return out


def step_counts(left, right, bins):
    """:func:`.extract._count_step`'s differences of integer neighbours in one pass:
    ``|right - left|`` (flattened, int64), the histogram of those below ``bins`` (as
    ``np.bincount`` with ``minlength=2`` makes it: up to the largest), how many are not
    zero, and the least and largest of ``left``."""
    m, n = left.shape
    d = np.empty(m * n, np.int64)
    counts = np.zeros(max(bins, 2), np.int64)
    moved = 0
    top = 1
    lo = np.int64(left[0, 0]) if m * n else np.int64(0)
    hi = lo
    k = 0
    for i in range(m):
        for j in range(n):
            a = np.int64(left[i, j])
            x = abs(np.int64(right[i, j]) - a)
            d[k] = x
            k += 1
            if x != 0:
                moved += 1
            if x < bins:
                counts[x] += 1
                top = max(top, x)
            lo = min(lo, a)
            hi = max(hi, a)
    return d, counts[:top + 1].copy(), moved, lo, hi


def floor_band_counts(image, bad, use_bad, floor, sky, quantum, n):
    """:func:`.background._band_counts` (:func:`.background._floor_top`'s histogram) in
    one pass: every other pixel of ``image`` both ways (but the ``bad`` ones, when
    ``use_bad``) from ``floor`` up to below ``sky``, counted by its steps of ``quantum``
    above ``floor`` (rounded half to even), steps 1 to ``n - 1`` (float64). ``floor``,
    ``sky`` and ``quantum`` come in the frame's type, as numpy takes a Python float
    against it: the same arithmetic, in float32 for a float32 frame (numpy's mask,
    gather and five passes over the sample took 0.5 ms of a 1024x768 frame's 1.8 ms
    clipped-floor test; this, 0.2)."""
    h, w = image.shape
    m = (w + 1) // 2
    steps = np.empty(m, np.int64)
    top = float(n)  # the bin of the pixels out of the band, and of those beyond it
    even = np.zeros(n + 1, np.int64)
    odd = np.zeros(n + 1, np.int64)
    for i in range(0, h, 2):
        row = image[i]
        # (a row's steps first, in a loop the compiler vectorises: the division's latency
        # was most of a pixel's time; then two histograms in turn: an increment waits
        # for the one before it in the same bin)
        for t in range(m):
            v = row[2 * t]
            d = (v - floor) / quantum
            d = min(d, top) if (v >= floor) & (v < sky) else top
            steps[t] = int(np.rint(d))
        if use_bad:
            for t in range(m):
                if bad[i, 2 * t]:
                    steps[t] = n
        for t in range(0, m - 1, 2):
            even[steps[t]] += 1
            odd[steps[t + 1]] += 1
        if m % 2:
            even[steps[m - 1]] += 1
    out = np.empty(max(n - 1, 0))
    for k in range(1, n):
        out[k - 1] = even[k] + odd[k]
    return out


def _pivots(src, n, m, k, single, r):
    """Two values of ``src[:n]`` (``m`` of them not NaN) bracketing its order statistic
    ``k``, ``(low, high, r)``: of a random sample of ``s`` values (a power of two,
    ``s**2 >= 2 m`` up to 512, drawn by the linear congruential sequence from ``r``, a
    fixed one so that a sample always takes the same steps; NaN passed over), those
    ``sqrt(s) + 1`` sample ranks either side of ``k``'s; with ``single``, ``k``'s
    sample value twice."""
    s = 32
    while s * s < 2 * m and s < 512:
        s *= 2
    sample = np.empty(s, src.dtype)
    q = 0
    while q < s:
        r = (r * 1103515245 + 12345) & 0x7FFFFFFF
        v = src[r % n]
        if v == v:
            sample[q] = v
            q += 1
    sample.sort()
    t = k * s // m
    if single:
        return sample[t], sample[t], r
    d = int(math.sqrt(s)) + 1
    return sample[max(t - d, 0)], sample[min(t + d, s - 1)], r


def select_value(a, k):
    """The order statistic ``k`` of the contiguous 1-D sample ``a`` (NaN last, as numpy
    orders them; ``0 <= k < a.size``, unchecked), ``a`` left as it is: numpy's value
    (but for the sign of a zero among zeros of both signs, which compare equal);
    :func:`select_into` with scratch space of its own."""
    return select_into(a, k, np.empty(a.size, a.dtype))


def select_into(a, k, buf):
    """:func:`select_value` with the scratch space ``buf`` (contiguous, ``a``'s type, at
    least ``a.size`` long, not ``a``): a caller's reused array, where a new one of a
    frame-sized sample came fresh from the system on a small frame and paid a page fault
    per 4 kB page (see :mod:`.scratch`).

    Floyd and Rivest's selection: each round takes two values of a small random sample
    bracketing ``k`` (:func:`_pivots`), counts the values below and above them (a pass
    without stores) and gathers only the part that holds ``k`` into scratch space, where
    the next round works (it keeps ~10 % of the values); a part no smaller than its
    range is split about one sampled value instead, and what is left below 48 values is
    sorted. Neither pass branches on the values, so the time does not depend on how
    they are ordered: numpy's introselect took 260-390 us for the 31,570 float64
    background residuals of a 1024x768 frame on the development machine (a 2-core AMD
    EPYC without the AVX-512 its vectorised selection needs), a Hoare selection 40 to
    320 us depending on how often the processor mispredicted which side a value went,
    this 33-38 us."""
    n = a.size
    m = 0
    for q in range(n):
        m += 0 if a[q] != a[q] else 1
    if k >= m:
        return a[k] if m == n else np.nan * a[0]  # (NaN in a's type; a holds one)
    # (room for every value: the first gather writes each one, NaN too, before it
    # advances past the kept ones only)
    src = a
    n = a.size
    r = 0x2545F491
    single = False
    first = True
    while True:
        if not first and n <= 48:
            part = np.sort(buf[:n])
            return part[k]
        p1, p2, r = _pivots(src, n, m, k, single, r)
        nl = 0
        ng = 0
        for q in range(n):
            v = src[q]
            nl += 1 if v < p1 else 0
            ng += 1 if v > p2 else 0
        nm = m - nl - ng  # (m: the part's values other than NaN)
        c = 0
        if k < nl:
            for q in range(n):
                v = src[q]
                buf[c] = v
                c += 1 if v < p1 else 0
        elif k >= nl + nm:
            k -= nl + nm
            for q in range(n):
                v = src[q]
                buf[c] = v
                c += 1 if v > p2 else 0
        else:
            if p1 == p2:
                return p1
            k -= nl
            for q in range(n):
                v = src[q]
                buf[c] = v
                c += 1 if v >= p1 and v <= p2 else 0
        single = c == m
        src = buf
        n = m = c
        first = False


def next_order_statistic(a, k, x):
    """The order statistic ``k + 1`` of the sample ``a`` (no NaN) whose order statistic
    ``k`` is ``x``: ``x`` when more than ``k + 1`` values are at most ``x``, else the
    least value above it; one pass without stores (a loop the compiler vectorises), where
    a second selection reads and gathers (an even sample's median: 5 against 30 us for
    25,000 values)."""
    at_most = 0
    least = np.inf
    for q in range(a.size):
        v = a[q]
        at_most += 1 if v <= x else 0
        least = v if v > x and v < least else least
    return np.float64(x) if at_most >= k + 2 else least


def robust_location(v, iterations, clip, mad_to_sigma, dev, keep, kept, buf):
    """:func:`.background.robust_location` of a contiguous float64 sample ``v`` (not
    empty): its clipped median and MAD sigma by the same order statistics
    (:func:`select_into`), the deviations and the kept values' mask made in loops of
    their own rather than by numpy's temporaries (a dozen whole-sample passes).
    ``dev``, ``kept``, ``buf`` (float64) and ``keep`` (bool), each ``v.size`` long, are
    the scratch space (the caller's reused arrays, see :func:`select_into`)."""
    n = v.size
    med = select_into(v, (n - 1) // 2, buf)
    for q in range(n):
        dev[q] = abs(v[q] - med)
    sig = mad_to_sigma * select_into(dev, (n - 1) // 2, buf)
    keep[:] = True
    n_kept = n
    for _ in range(iterations):
        if sig <= 0:
            break
        lim = clip * sig
        n_keep = 0
        for q in range(n):
            k = keep[q] and dev[q] < lim
            keep[q] = k
            n_keep += 1 if k else 0
        if n_keep == n_kept or n_keep < 10:
            break
        n_kept = n_keep
        below = 0
        for q in range(n):
            below += 1 if not keep[q] and v[q] < med else 0
        med = select_into(v, below + (n_keep - 1) // 2, buf)
        for q in range(n):
            dev[q] = abs(v[q] - med)
        mad = select_into(dev, (n_keep - 1) // 2, buf)
        clipped_small = False
        for q in range(n):
            if not keep[q] and dev[q] <= mad:
                clipped_small = True
                break
        if clipped_small:
            c = 0
            for q in range(n):
                if keep[q]:
                    kept[c] = dev[q]
                    c += 1
            mad = select_into(kept[:n_keep], (n_keep - 1) // 2, buf)
        sig = mad_to_sigma * mad
    return med, sig


def median9(grid, network):
    """:func:`.background._filter3`'s median: every cell's 3x3 neighbourhood (the edges
    replicated) through the compare-exchange ``network`` (pairs of positions), each
    exchange as ``np.minimum``/``np.maximum`` take it (the second of equal values, NaN
    from either), the median ending in position 4: numpy's 38 calls on whole grids in
    one. A row of cells at a time, each exchange a pass over the row's nine neighbour
    rows (a loop the compiler vectorises: 25 against 137 us for a 48x64 grid, 109
    against 726 for 128x128, where each cell's nine values went through the network
    on their own)."""
    ny, nx = grid.shape
    out = np.empty((ny, nx))
    p = np.empty((9, nx))  # the neighbours of a row of cells, position by position
    for i in range(ny):
        for a in range(3):
            src = grid[min(max(i + a - 1, 0), ny - 1)]
            for b in range(3):
                row = p[3 * a + b]
                shift = b - 1
                for j in range(nx):
                    row[j] = src[min(max(j + shift, 0), nx - 1)]
        _exchange(p, network, nx, True)
        mid = p[4]
        dst = out[i]
        for j in range(nx):
            dst[j] = mid[j]
    return out


def local_checks(resid, rows, cols, half, sigma, floor, var3, ratio, network, ny, nx):
    """:func:`.background._local_checks` for blocks that each hold their own noise sample
    (a noise group of one block), the same arithmetic in the same order: two rounds of
    the residual's clipped half-cell sums (:func:`cell_sums`; at 3 ``sigma``, then at 3 of
    each block's noise), the blocks' 2x2 cells added as :func:`.background._block_sums`
    adds them, each block's clipped rms (``var3``: a clipped unit Gaussian's variance;
    ``sigma`` for blocks of fewer than 8 samples; never below ``floor``), the grid's
    10th and 90th percentiles (:func:`.orderstats.percentiles`), its 3x3 median
    (:func:`median9` through ``network``) when they differ by more than ``ratio``, and
    the structure test on the last round's cells. Returns ``(grid, whether the noise
    varies, whether the sky has structure)``: numpy's two dozen calls on whole grids in
    one."""
    clip = np.full((ny, nx), 3.0 * sigma)
    grid = np.empty((ny, nx))
    nb = np.empty((ny, nx))
    b1 = np.empty((ny, nx))
    b2 = np.empty((ny, nx))
    cells = cell_sums(resid, rows, cols, half, clip)
    for again in (True, False):  # (the second round's sums at the first round's clip)
        for a, out in ((0, nb), (1, b1), (2, b2)):
            c = cells[a]
            for i in range(ny):
                top = c[2 * i]
                bottom = c[2 * i + 1]
                row = out[i]
                for j in range(nx):
                    row[j] = (top[2 * j] + top[2 * j + 1]) + (bottom[2 * j] + bottom[2 * j + 1])
        fg = grid.ravel()
        fc = clip.ravel()
        fn = nb.ravel()
        f1 = b1.ravel()
        f2 = b2.ravel()
        for k in range(ny * nx):
            n = fn[k]
            d = n if n >= 1.0 else 1.0
            m1 = f1[k] / d
            m2 = f2[k] / d
            v = m2 - m1 * m1
            v = 0.0 if v < 0.0 else v  # (NaN kept, as np.maximum keeps it)
            r = math.sqrt(v / var3)
            g = r if n >= 8 else sigma
            g = floor if g < floor else g
            fg[k] = g
            fc[k] = 3.0 * g
        if again:
            cells = cell_sums(resid, rows, cols, half, clip)
    srt = np.sort(grid.ravel())
    m = srt.shape[0]
    lo_hi = np.full(2, np.nan)
    if srt[m - 1] == srt[m - 1]:  # (a sort puts NaN last)
        for k in range(2):
            pos = (m - 1) * (0.1 if k == 0 else 0.9)
            lo = math.floor(pos)
            a = srt[lo]
            b = srt[min(lo + 1, m - 1)]
            t = pos - lo
            d = b - a
            lo_hi[k] = b - d * (1.0 - t) if t >= 0.5 else a + d * t
    noisy = lo_hi[1] > ratio * lo_hi[0]
    if noisy and ny >= 3 and nx >= 3:
        grid = median9(grid, network)
    hits = 0
    for ci in range(2 * ny):
        cn = cells[0, ci]
        c1 = cells[1, ci]
        gr = grid[ci // 2]
        for cj in range(2 * nx):
            n = cn[cj]
            d = n if n >= 1.0 else 1.0
            x = 6.0 / math.sqrt(d)
            limit = (1.0 if 1.0 >= x else x) * (gr[cj // 2] if noisy else sigma)
            hits += 1 if (abs(c1[cj] / d) > limit) and n > 0 else 0
        if hits:
            break
    return grid, noisy, hits > 0


def tile_bound(vals, start_y, end_y, start_x, end_x, spread):
    """:meth:`.background.Background.tile_lower_bound` from the model's values ``vals`` on
    the lattice of tile edges and nodes: each tile's least value over its lines
    ``start:end + 1`` along both axes (as ``np.minimum`` takes it: NaN from either),
    less the rounding margin ``1e-9 (|value| + spread + 1e-30)``; numpy's dozen calls
    in one."""
    ny, nx = len(start_y), len(start_x)
    out = np.empty((ny, nx))
    for i in range(ny):
        for j in range(nx):
            m = vals[start_y[i], start_x[j]]
            for r in range(start_y[i], end_y[i] + 1):
                for c in range(start_x[j], end_x[j] + 1):
                    v = vals[r, c]
                    m = m if m < v or m != m else v
            out[i, j] = m - 1e-9 * (abs(m) + spread + 1e-30)
    return out


def constant_area(image, rows, cols, reach):
    """:func:`.background._constant_area`: which pixels of the grid ``rows`` x ``cols``
    have ``reach`` pixels of exactly their value on each side along both axes (clipped
    at the frame's edges). A grid row at a time: each pixel's own row read first, its
    neighbours until one differs (the farthest first: a noisy sky stops there), then
    the column neighbours of the pixels left, a neighbouring row at a time for all of
    them (a JPEG whose stretch clipped a third of its sky to one value: 0.76 against
    1.2 ms with each pixel's column read in turn), rather than numpy's gather of every
    remaining candidate's neighbour 64 times over."""
    h, w = image.shape
    m = len(cols)
    out = np.zeros((len(rows), m), np.bool_)
    left = np.empty(m, np.intp)  # the grid columns still in, and their values
    value = np.empty(m, image.dtype)
    for i in range(len(rows)):
        r = rows[i]
        row = image[r]
        n = 0
        for j in range(m):
            c = cols[j]
            v = row[c]
            same = True
            for d in range(reach, 0, -1):
                if row[min(c + d, w - 1)] != v or row[max(c - d, 0)] != v:
                    same = False
                    break
            if same:
                left[n] = j
                value[n] = v
                n += 1
        for d in range(reach, 0, -1):
            if n == 0:
                break
            below = image[min(r + d, h - 1)]
            above = image[max(r - d, 0)]
            kept = 0
            for q in range(n):
                c = cols[left[q]]
                if below[c] == value[q] and above[c] == value[q]:
                    left[kept] = left[q]
                    value[kept] = value[q]
                    kept += 1
            n = kept
        for q in range(n):
            out[i, left[q]] = True
    return out


def running_medians(padded, size, out):
    """:func:`.orderstats.running_median`: each column's median over every ``size``
    (odd) consecutive values of ``padded`` (the column with its ends repeated ``size //
    2`` times) into ``out``: one sorted window a column, slid a value at a time (out
    goes the value leaving, by a binary search, in goes the one entering), instead of a
    partition of every window (a banded 1024x768 frame's 768 x 7 levels, 65 a window:
    1.5 ms). The window's middle value, so the same value as any selection's; the
    values must be finite."""
    half = size // 2
    buf = np.empty(size, padded.dtype)
    for j in range(padded.shape[1]):
        for i in range(size):  # (insertion sort of the first window)
            v = padded[i, j]
            q = i
            while q > 0 and buf[q - 1] > v:
                buf[q] = buf[q - 1]
                q -= 1
            buf[q] = v
        out[0, j] = buf[half]
        for i in range(1, out.shape[0]):
            old = padded[i - 1, j]
            new = padded[i + size - 1, j]
            lo, hi = 0, size - 1  # the leaving value's place: the first not below it
            while lo < hi:
                mid = (lo + hi) // 2
                if buf[mid] < old:
                    lo = mid + 1
                else:
                    hi = mid
            q = lo  # (moved into its place from there, keeping the window sorted)
            while q > 0 and buf[q - 1] > new:
                buf[q] = buf[q - 1]
                q -= 1
            while q < size - 1 and buf[q + 1] < new:
                buf[q] = buf[q + 1]
                q += 1
            buf[q] = new
            out[i, j] = buf[half]


def level_rows(work, offsets, lo, t, rest, quantum, axis, out):
    """:func:`.banding._levelled`: ``work`` less its rows' (``axis`` 0) or columns' (1)
    offsets ``offsets`` (``(n, k)``: one a stretch) spread along them (between the
    stretches' middles: each pixel's stretch to the left ``lo`` and the fractions ``t``
    and ``rest = 1 - t``; the one stretch's offset when ``k`` is 1), in whole steps of
    ``quantum`` unless it is 0, into ``out``: the same float64 arithmetic per pixel, in
    one pass in the frame's own order (numpy's bands of frame-sized temporaries took
    4.4 ms of a 1024x768 frame's levelling)."""
    h, w = work.shape
    k = offsets.shape[1]
    for r in range(h):
        src = work[r]
        dst = out[r]
        for c in range(w):
            # (the line along which the offsets spread, and the place along it)
            n, p = (r, c) if axis == 0 else (c, r)
            if k == 1:
                s = offsets[n, 0]
            else:
                s = offsets[n, lo[p]] * rest[p] + offsets[n, lo[p] + 1] * t[p]
            if quantum != 0.0:
                s = np.rint(s / quantum) * quantum
            dst[c] = src[c] - np.float32(s)


def blob_pixels(labels, work, idx, idx_bg, lab, rows, cols, raw, val):
    """The label, row, column, value and value above background (float64) of the blob
    pixels at flat indices ``idx``, as :func:`.blobs._measure_blobs` gathers them with
    numpy, in one pass, written to ``lab``, ``rows``, ``cols``, ``raw`` and ``val`` (a
    thread's chunk of each: the chunks need no joining)."""
    w = labels.shape[1]
    lab_flat = labels.ravel()
    work_flat = work.ravel()
    r = 0
    start = 0  # the first flat index of row r
    for i in range(len(idx)):
        q = idx[i]
        lab[i] = lab_flat[q]
        if q < start or q >= start + w:  # (sorted indices: a division per row, not pixel)
            r = q // w
            start = r * w
        rows[i] = r
        cols[i] = q - start
        raw[i] = work_flat[q]
        val[i] = np.float64(raw[i]) - idx_bg[i]


def neighbour_sums(work, bad, use_bad, pr, pc, level):
    """Per peak pixel ``(pr, pc)``: the sum of its valid (in-image, not ``bad`` when
    ``use_bad``) 8 neighbours' values above ``level`` and their count, as
    :func:`.blobs._measure_blobs` adds them up with numpy (eight terms, invalid ones
    zero, summed pairwise as numpy sums a row of eight)."""
    h, w = work.shape
    n = len(pr)
    total = np.empty(n)
    count = np.empty(n, np.intp)
    t = np.empty(8)
    for s in range(n):
        q = 0
        c = 0
        for dr in range(-1, 2):
            for dc in range(-1, 2):
                if dr == 0 and dc == 0:
                    continue
                r = pr[s] + dr
                cc = pc[s] + dc
                ok = 0 <= r < h and 0 <= cc < w
                rc = min(max(r, 0), h - 1)
                ccc = min(max(cc, 0), w - 1)
                if ok and use_bad and bad[rc, ccc]:
                    ok = False
                t[q] = np.float64(work[rc, ccc]) - level[s] if ok else 0.0
                c += ok
                q += 1
        total[s] = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]))
        count[s] = c
    return total, count


def axis_light(work, pr, pc, bgp):
    """The light above the background ``bgp`` of each peak's two neighbours left and right,
    and of the two above and below (neighbours off the image hold none), as
    :func:`.blobs.axis_light` adds them up: ``(along rows, along columns)``."""
    h, w = work.shape
    n = len(pr)
    across = np.empty(n)
    along = np.empty(n)
    for i in range(n):
        r, c = pr[i], pc[i]
        left = np.float64(work[r, c - 1]) - bgp[i] if c - 1 >= 0 else 0.0
        right = np.float64(work[r, c + 1]) - bgp[i] if c + 1 < w else 0.0
        up = np.float64(work[r - 1, c]) - bgp[i] if r - 1 >= 0 else 0.0
        down = np.float64(work[r + 1, c]) - bgp[i] if r + 1 < h else 0.0
        across[i] = left + right
        along[i] = up + down
    return across, along


def dot_bands(x, y, lf, i, j, ux, uy, tol, flux_log):
    """For each line through dots ``i`` and ``j`` (unit direction ``ux``, ``uy``), which of
    the dots at ``x``, ``y`` (log flux ``lf``) lie within ``tol`` of it, which have about
    the pair's flux (within ``flux_log`` of its mean log), and how many do both: the
    same arithmetic as :func:`.filters._dotted_lines`' arrays, in one pass over them."""
    n_lines, n = len(i), len(x)
    band = np.empty((n_lines, n), np.bool_)
    alike = np.empty((n_lines, n), np.bool_)
    count = np.zeros(n_lines, np.int64)
    for q in range(n_lines):
        a = i[q]
        mid = 0.5 * (lf[a] + lf[j[q]])
        for p in range(n):
            near = abs((x[p] - x[a]) * uy[q] - (y[p] - y[a]) * ux[q]) <= tol
            same = abs(lf[p] - mid) <= flux_log
            band[q, p] = near
            alike[q, p] = same
            if near and same:
                count[q] += 1
    return band, alike, count


def piece_lines(px, py, ux, uy, half, off_tol, gap, sin_angle):
    """The pieces on each trail piece's line, how many, and the span their ends reach
    along it, as :func:`.filters._piece_lines` takes them from its arrays of every pair
    (the same arithmetic; a NaN in a span passed on, as numpy's minimum and maximum
    do): ``(count, lo, hi)``."""
    n = len(px)
    count = np.zeros(n, np.intp)
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    for i in range(n):
        for j in range(n):
            dx = px[j] - px[i]
            dy = py[j] - py[i]
            along = dx * ux[i] + dy * uy[i]
            if not (abs(dx * uy[i] - dy * ux[i]) <= off_tol and abs(along) <= gap
                    and abs(uy[j] * ux[i] - ux[j] * uy[i]) < sin_angle):
                continue
            count[i] += 1
            a = along - half[j]
            b = along + half[j]
            if not (lo[i] != lo[i]) and (a != a or a < lo[i]):
                lo[i] = a
            if not (hi[i] != hi[i]) and (b != b or b > hi[i]):
                hi[i] = b
    return count, lo, hi


def blob_sums(lab, rows, cols, val, n):
    """Per-blob pixel count, flux, peak (value and pixel) and intensity-weighted
    moments about the peak pixel, as :func:`.blobs._measure_blobs` computes them with
    ``bincount`` (the same sums in the same order): ``(npix, flux, peak, peak_pixel,
    sumw, mx, my, cxx, cyy, cxy)``; index 0 is the background label."""
    npix = np.zeros(n, dtype=np.intp)
    flux = np.zeros(n)
    peak = np.full(n, -np.inf)
    pr = np.zeros(n, dtype=np.intp)
    pc = np.zeros(n, dtype=np.intp)
    sw = np.zeros(n)
    mx = np.empty(n)
    my = np.empty(n)
    cxx = np.empty(n)
    cyy = np.empty(n)
    cxy = np.empty(n)
    blob_sums_of(lab, rows, cols, val, 0, n, npix, flux, peak, pr, pc, sw, mx, my, cxx, cyy,
                 cxy)
    return npix, flux, peak, pr, pc, sw, mx, my, cxx, cyy, cxy


def blob_sums_of(lab, rows, cols, val, lo, hi, npix, flux, peak, pr, pc, sw, mx, my, cxx,
                 cyy, cxy):
    """:func:`blob_sums` of the blobs labelled ``lo`` to ``hi - 1``, written to the arrays
    given (of every label: ``npix``, ``flux``, ``sw`` zero, ``peak`` -inf): a thread's
    share of the labels. Each blob's pixels are summed in their order whatever the
    share, so the sums are the same however the labels are shared out."""
    at = np.zeros(hi - lo, dtype=np.intp)
    for i in range(len(lab)):
        b = lab[i]
        if b < lo or b >= hi:
            continue
        v = val[i]
        npix[b] += 1
        flux[b] += v
        if v >= peak[b]:  # ties: the last pixel, as numpy's fancy assignment
            peak[b] = v
            at[b - lo] = i
    for b in range(lo, hi):
        if npix[b]:
            pr[b] = rows[at[b - lo]]
            pc[b] = cols[at[b - lo]]
    k = hi - lo
    sx = np.zeros(k)
    sy = np.zeros(k)
    sxx = np.zeros(k)
    syy = np.zeros(k)
    sxy = np.zeros(k)
    for i in range(len(lab)):
        b = lab[i]
        if b < lo or b >= hi:
            continue
        wt = max(val[i], 0.0)
        dx = float(cols[i] - pc[b])
        dy = float(rows[i] - pr[b])
        q = b - lo
        sw[b] += wt
        sx[q] += wt * dx
        sy[q] += wt * dy
        sxx[q] += wt * dx * dx
        syy[q] += wt * dy * dy
        sxy[q] += wt * dx * dy
    for b in range(lo, hi):
        q = b - lo
        safe = sw[b] if sw[b] > 0 else 1.0
        mx[b] = sx[q] / safe
        my[b] = sy[q] / safe
        cxx[b] = sxx[q] / safe - mx[b] * mx[b]
        cyy[b] = syy[q] / safe - my[b] * my[b]
        cxy[b] = sxy[q] / safe - mx[b] * my[b]


def lattice_levels(samples, k):
    """The median of each ``k x k`` block of ``samples`` (a float64 lattice of ``(ny k,
    nx k)`` pixels), as :func:`.fast._block_medians` takes them: ``(ny, nx)``."""
    ny, nx = samples.shape[0] // k, samples.shape[1] // k
    out = np.empty((ny, nx))
    buf = np.empty(k * k)
    for i in range(ny):
        for j in range(nx):
            q = 0
            for a in range(k):
                for b in range(k):
                    buf[q] = samples[i * k + a, j * k + b]
                    q += 1
            out[i, j] = np.median(buf)
    return out


def _grown(a, k, cap):
    """The first ``k`` items of ``a`` in a new array of ``cap`` items (an output that
    outgrew its room)."""
    out = np.empty(cap, a.dtype)
    out[:k] = a[:k]
    return out


#: Times the lowest set bit of a word of 0/1 bytes, ``2 ** (8 i)``, this puts ``i`` in
#: the top byte: byte ``7 - i`` of the constant holds ``i``.
_BYTE_INDEX = 0x0001020304050607


def _columns_above(row, bound, above, cols):
    """The columns ``c`` of ``row`` with ``row[c] > bound[c]``, written to ``cols`` in
    increasing order; how many. The row is compared whole first, into a byte per pixel
    (``above``, of a length a multiple of 8, zero beyond the row: a loop the compiler
    vectorises), and the bytes are then read eight at a time as a little-endian word,
    whose set bytes are taken lowest first by their lowest bit (:data:`_BYTE_INDEX`):
    a step per column above, and no branch per byte for the processor to guess
    (:func:`band_candidates` over ALT40: 0.095 ms against 0.12 with a test per byte;
    over a TESS-like frame, 6.0 against 6.9)."""
    w = row.shape[0]
    for c in range(w):
        above[c] = row[c] > bound[c]
    words = above.view(np.uint64)
    m = 0
    for q in range(words.shape[0]):
        v = words[q]
        while v != 0:
            low = v & (~v + np.uint64(1))
            cols[m] = 8 * q + np.intp((low * np.uint64(_BYTE_INDEX)) >> np.uint64(56))
            m += 1
            v ^= low
    return m


def sky_candidates(img, grid, limits, ri0, ri1, rt0, rt1, cj0, cj1, cu0, cu1, r0, r1):
    """The pixels of rows ``r0:r1`` of ``img`` (finite) more above the sky than the limit
    there, both bilinear in the blocks' ``grid`` and ``limits`` with the rows' and
    columns' block indices and weights (``ri0``, ``ri1``, ``rt0``, ``rt1`` per row;
    ``cj0``... per column), as :func:`.fast._candidates` computes them (the same
    arithmetic in the same order): ``(flat indices, value less the sky)``.

    Between two block centres a row's sky and limit lie between their values there, so a
    pixel at or below the lower sky plus the lower limit is no candidate. Each row is
    first compared whole with that bound, column by column (a loop the compiler
    vectorises, into a byte per pixel), and only the pixels above it, found eight bytes
    at a time, are judged against the exact sky and limit. (A maximum per run of
    columns, to pass over runs without a star, cost more than the comparison: the
    reductions of 64 pixels each were as many horizontal steps; 0.62 against 0.28 ms on
    bench_extraction's 1024 x 768 frame of 600 stars.)
    """
    h, w = img.shape
    nx = grid.shape[1]
    cap = (r1 - r0) * w // 64 + w
    idx = np.empty(cap, np.intp)
    val = np.empty(cap)
    level = np.empty(nx)
    bound = np.empty(nx)
    # the columns' runs between the same two block centres
    run = np.empty(w + 1, np.intp)
    nrun = 0
    for c in range(w):
        if c == 0 or cj0[c] != cj0[c - 1] or cj1[c] != cj1[c - 1]:
            run[nrun] = c
            nrun += 1
    run[nrun] = w
    low = np.empty(w)
    above = np.zeros(w + 7 - (w + 7) % 8, np.uint8)
    cols = np.empty(w, np.intp)
    k = 0
    for r in range(r0, r1):
        a, b, ta, tb = ri0[r], ri1[r], rt0[r], rt1[r]
        for j in range(nx):
            level[j] = grid[a, j] * ta + grid[b, j] * tb
            bound[j] = limits[a, j] * ta + limits[b, j] * tb
        if k + w > cap:  # (room for a whole row: no check, and no new array, per pixel)
            cap = 2 * cap + w
            idx, val = _grown(idx, k, cap), _grown(val, k, cap)
        for s in range(nrun):
            c0 = run[s]
            left, right = level[cj0[c0]], level[cj1[c0]]
            lim0, lim1 = bound[cj0[c0]], bound[cj1[c0]]
            # (less a margin for the rounding of the exact sky and limit: a rounded
            # convex combination may fall an ulp below both ends)
            low[c0:run[s + 1]] = (min(left, right) + min(lim0, lim1)
                                  - 1e-12 * (abs(left) + abs(right) + abs(lim0) + abs(lim1)))
        row = img[r]
        base = r * w
        for t in range(_columns_above(row, low, above, cols)):
            c = cols[t]
            d = float(row[c]) - (level[cj0[c]] * cu0[c] + level[cj1[c]] * cu1[c])
            if d > bound[cj0[c]] * cu0[c] + bound[cj1[c]] * cu1[c]:
                idx[k] = base + c
                val[k] = d
                k += 1
    return idx[:k], val[:k]


def dilate(mask, r):
    """:func:`.background._dilate`: ``mask`` (2-D bool) grown by ``r`` pixels along both
    axes (a square), the frame's edges bounding it: each row's running count of the set
    pixels within ``r`` of every pixel, then each column's of those, one pass each
    (numpy's doubling spans made ~2 log2(r) passes and two transposed copies: 1.25
    against 0.64 ms on 1024x768 with ``r`` 16, most of it the serial row pass)."""
    h, w = mask.shape
    wide = np.zeros((h, w), np.bool_)
    for i in range(h):
        row = mask[i]
        dst = wide[i]
        n = 0
        for c in range(min(r, w)):
            n += row[c]
        for c in range(w):
            if c + r < w:
                n += row[c + r]
            dst[c] = n > 0
            if c >= r:
                n -= row[c - r]
    out = np.zeros((h, w), np.bool_)
    count = np.zeros(w, np.int32)
    for i in range(min(r, h)):
        count += wide[i]
    for i in range(h):
        if i + r < h:
            count += wide[i + r]
        dst = out[i]
        for c in range(w):
            dst[c] = count[c] > 0
        if i >= r:
            count -= wide[i - r]
    return out


def jpeg_block_counts(work, model, depth, sky_below, top, left, size, nrows, ncols):
    """:func:`.extract._unringed_dark_fraction`'s counts per JPEG block: of the pixels of
    ``work`` below ``model - depth`` and below ``sky_below``, and of those above ``model +
    depth`` (float32 frames and float32 bounds, as numpy compares them), each in the block
    ``((row + top) // size, (column + left) // size)`` of an ``(nrows, ncols)`` grid. One
    pass over the two frames, where numpy's masks and padded block sums made seven (5.3
    against 0.9-1.2 ms on a 1024x1024 all-sky JPEG)."""
    h, w = work.shape
    dark = np.zeros((nrows, ncols), np.intp)
    lit = np.zeros((nrows, ncols), np.intp)
    for r in range(h):
        wr = work[r]
        mr = model[r]
        drow = dark[(r + top) // size]
        lrow = lit[(r + top) // size]
        for b in range(ncols):
            nd = 0
            nl = 0
            for c in range(max(0, b * size - left), min(w, (b + 1) * size - left)):
                v = wr[c]
                m = mr[c]
                nd += (v < m - depth) & (v < sky_below)
                nl += v > m + depth
            drow[b] += nd
            lrow[b] += nl
    return dark, lit


def on_circles(x, y, ux, uy, ur, tol, margin):
    """:func:`.skycircle._on_circles`: how many points ``(x, y)`` lie within ``tol`` of each
    circle ``(ux, uy, ur)`` (float64, contiguous), by the same arithmetic: the distance
    from the centre as ``sqrt(dx^2 + dy^2)``, and where the verdict is within ``margin``
    (relative to the radius and ``tol``) of changing, as ``hypot`` (the C library's, as
    ``np.hypot`` takes it). One pass per circle, no temporaries: 300 circles of 450 rim
    points in ~0.1 ms, where numpy's blocks of circles took ~0.4 ms."""
    out = np.empty(ux.size, np.intp)
    for i in range(ux.size):
        cx = ux[i]
        cy = uy[i]
        r = ur[i]
        band = margin * (abs(r) + tol)
        c = 0
        for j in range(x.size):
            dx = cx - x[j]
            dy = cy - y[j]
            res = abs(math.sqrt(dx * dx + dy * dy) - r)
            if abs(res - tol) <= band:
                res = abs(math.hypot(dx, dy) - r)
            c += 1 if res <= tol else 0
        out[i] = c
    return out


def band_candidates(src, lim, th, tw, b0, b1, det, grid, c0, c1, fc, r0, fr, ngrid, nc0,
                    nc1, nfc, nr0, nfr, scale, thr, use_noise):
    """The candidate pixels of tile rows ``b0:b1``, as ``band`` in
    :func:`.extract._candidate_pixels` selects them with numpy: ``(flat indices in
    raster order, the background there)``.

    First the pixels above their tile's limit, ``src[r, c] > lim[r // th, c // tw]``
    (both in the pixels' own type, :func:`.extract._above_indices`): each tile row's
    limits are spread over a row of the frame's width once, and each pixel row is
    compared whole with it (:func:`_columns_above`). Then those whose value in ``det``
    (float32, the same frame) exceeds the background model (``grid`` and its tables, as
    :func:`model_at` takes them) plus the threshold: ``thr``, or with ``use_noise``
    ``scale`` times the noise model (``ngrid`` and its tables). The second test runs on
    the row just read, with the row's interpolation weights looked up once, and writes
    no array between the steps (a 2048 x 2048 TESS-like frame's 384,000 candidates: 9.2
    ms on one thread as the first selection, then numpy's model, gathers and
    comparison; 8.0 ms fused; 6.3-7.0 with :func:`_columns_above`'s scan by bits)."""
    h, w = src.shape
    ra, rb = b0 * th, min(b1 * th, h)
    cap = (rb - ra) * w // 64 + w
    idx = np.empty(cap, np.intp)
    level = np.empty(cap)
    row_lim = np.empty(w, src.dtype)
    above = np.zeros(w + 7 - (w + 7) % 8, np.uint8)
    cols = np.empty(w, np.intp)
    last = grid.shape[0] - 1
    nlast = ngrid.shape[0] - 1
    k = 0
    for b in range(b0, b1):
        for j in range(lim.shape[1]):
            row_lim[min(j * tw, w):min((j + 1) * tw, w)] = lim[b, j]
        for r in range(b * th, min((b + 1) * th, rb)):
            if k + w > cap:  # (room for a whole row: no check per pixel)
                cap = 2 * cap + w
                idx, level = _grown(idx, k, cap), _grown(level, k, cap)
            g, t = r0[r], fr[r]
            gn = min(g + 1, last)
            ng, nt = nr0[r], nfr[r]
            ngn = min(ng + 1, nlast)
            values = det[r]
            base = r * w
            for q in range(_columns_above(src[r], row_lim, above, cols)):
                c = cols[q]
                bg = _lerp2(grid[g, c0[c]], grid[g, c1[c]], grid[gn, c0[c]], grid[gn, c1[c]],
                            fc[c], t, g < last)
                cut = thr
                if use_noise:
                    cut = scale * _lerp2(ngrid[ng, nc0[c]], ngrid[ng, nc1[c]],
                                         ngrid[ngn, nc0[c]], ngrid[ngn, nc1[c]], nfc[c], nt,
                                         ng < nlast)
                if values[c] > bg + cut:
                    idx[k] = base + c
                    level[k] = bg
                    k += 1
    return idx[:k], level[:k]


#: Largest fit window (px): half-sizes run from 2 to 6 (:func:`.blobs._fit_group`).
_MAX_WINDOW = 13


def fit_windows(work, labels, bad, use_bad, pr, pc, bgp, gx, gy, ids, half, p0, fix_sigma):
    """Cut every star's window out of the frame and fit it, as
    :func:`.blobs._fit_group` does with numpy: ``(params (N, 6), ok (N,))``.

    Star ``s`` (blob ``ids[s]``, peak pixel ``pr[s]``, ``pc[s]``) gets a window of
    ``2 half[s] + 1`` pixels, minus the background plane ``bgp + gx dx + gy dy``
    (float32, as the numpy code); pixels off the frame, of other blobs or ``bad``
    (when ``use_bad``) are left out. Two Gauss-Newton iterations from ``p0[s]``, and
    four more from there for a fit that did not converge but stayed in its window.
    """
    h, w = work.shape
    n = len(pr)
    p = np.empty((n, 6))
    ok = np.zeros(n, dtype=np.bool_)
    big = _MAX_WINDOW
    stamp = np.empty((big, big), dtype=np.float32)
    weight = np.empty((big, big), dtype=np.bool_)
    st = np.empty((8, big))
    data = np.empty((big, big))
    m = np.empty((4, 4))
    low = np.zeros((12, 4))
    start = np.empty(5)
    for s in range(n):
        hh = half[s]
        k = 2 * hh + 1
        b32 = np.float32(bgp[s])
        gx32 = np.float32(gx[s])
        gy32 = np.float32(gy[s])
        for i in range(k):
            r = pr[s] + i - hh
            rc = min(max(r, 0), h - 1)
            plane_row = gy32 * np.float32(i - hh)
            for j in range(k):
                c = pc[s] + j - hh
                cc = min(max(c, 0), w - 1)
                stamp[i, j] = work[rc, cc] - ((b32 + gx32 * np.float32(j - hh)) + plane_row)
                lab = labels[rc, cc]
                weight[i, j] = ((lab == 0 or lab == ids[s]) and 0 <= r < h and 0 <= c < w
                                and not (use_bad and bad[rc, cc]))
        out = p[s]
        good = _fit_one(stamp[:k, :k], weight[:k, :k], p0[s], 2, fix_sigma, out, st, data,
                        m, low)
        if not good:
            finite = True
            for q in range(6):
                finite = finite and math.isfinite(out[q])
            if finite and abs(out[0]) <= hh and abs(out[1]) <= hh:
                # most fits converge in two steps from the start; give the rest more
                for q in range(5):
                    start[q] = out[q]
                if not start[2] > 0:
                    start[2] = p0[s, 2]
                good = _fit_one(stamp[:k, :k], weight[:k, :k], start, 4, fix_sigma, out, st,
                                data, m, low)
        ok[s] = good
    return p, ok


#: The samples' types :func:`select_value` is compiled for (by
#: :func:`warm_up`): the background's float residuals, the working copy's float32 and a
#: camera's 16-bit counts (8-bit ones are widened first).
SELECT_TYPES = (np.float64, np.float32, np.uint16, np.int16)
#: The pixels' types (and whether writeable) the quick extraction reads a frame in
#: (:func:`.fast._pixels`), which :func:`sky_candidates` and :func:`neighbour_sums` are
#: compiled for.
QUICK_PIXEL_TYPES = ((np.uint8, True), (np.uint8, False), (np.uint16, True),
                     (np.uint16, False), (np.float32, True), (np.float64, True))
#: The samples' types (and whether writeable) :func:`network_medians` is compiled for:
#: the working copy's float32, a camera's 8- and 16-bit counts as given, and a float64
#: frame as given (the sky circle's coarse map, :func:`.skycircle._block_medians`).
NETWORK_MEDIAN_TYPES = ((np.dtype(np.float32), True), (np.dtype(np.uint8), True),
                        (np.dtype(np.uint8), False), (np.dtype(np.uint16), True),
                        (np.dtype(np.uint16), False), (np.dtype(np.float64), True))
#: The pixels' types (and whether writeable) :func:`band_candidates` is compiled for:
#: the extractor's float32 detection image, and a camera's 8- and 16-bit counts as given.
TILE_CANDIDATE_TYPES = ((np.float32, True), (np.uint16, True), (np.uint16, False),
                        (np.uint8, True), (np.uint8, False))

_KERNELS = ("cell_sums", "_lerp2", "model_at", "grid_model",
            "tile_bound", "_sweep", "_tapped", "_smooth_row", "smooth",
            "step_counts", "floor_band_counts", "_pivots", "select_into", "select_value",
            "next_order_statistic",
            "robust_location",
            "_rank_in_bin",
            "integer_medians", "_exchange", "network_medians",
            "median9", "local_checks", "constant_area", "level_rows", "running_medians",
            "counts_to_float32", "fill_gaps", "add_gap_noise", "axis_light", "dot_bands",
            "piece_lines",
            "blob_pixels",
            "neighbour_sums", "blob_sums_of", "blob_sums", "_profile", "_solve_sym4",
            "_axis_step", "_fit_one", "fit_stamps", "fit_windows", "_root", "label_pixels",
            "paint_labels", "lattice_levels", "_grown", "_columns_above", "sky_candidates",
            "band_candidates", "on_circles", "jpeg_block_counts", "dilate")
#: The helpers compiled into their callers (:func:`skysolve._jit.jit`): called several
#: times per star with arrays, whose references a call would count (the fits of a
#: TESS-like frame's 7,625 stars: 11.6 ms on one thread as calls, 10.1 inlined).
_INLINE = frozenset(("_profile", "_solve_sym4", "_axis_step", "_fit_one", "_sweep",
                     "_tapped"))
_COMPILED: dict[str, Callable[..., Any]] = {}
_COMPILE_LOCK = threading.Lock()


def _compile() -> dict[str, Callable[..., Any]]:
    """The kernels as numba dispatchers (compiled, or loaded from the cache, on first call).

    The helpers are compiled first and rebound in this module's namespace under
    the callers' names, so that the callers call the compiled helpers.
    """
    with _COMPILE_LOCK:  # extractions in several threads may ask at once
        if not _COMPILED:
            namespace = globals()
            compiled = {name: _jit.jit(namespace[name], inline=name in _INLINE)
                        for name in _KERNELS}
            namespace.update(compiled)
            _COMPILED.update(compiled)
    return _COMPILED


#: The backend of the extraction running in this thread (:func:`backend`).
_BACKEND: contextvars.ContextVar[str] = contextvars.ContextVar("extraction_backend",
                                                              default="auto")
#: ... and how many threads it may cut its chunks for.
_THREADS: contextvars.ContextVar[int] = contextvars.ContextVar("extraction_threads",
                                                               default=1)


@contextlib.contextmanager
def backend(name: str, threads: int | None = 1) -> Iterator[None]:
    """Run the enclosed extraction with ``name`` (``'auto'``, ``'compiled'`` or
    ``'reference'``, see :attr:`.ExtractionOptions.backend`) on ``threads`` threads for
    its chunks (``None``: :func:`skysolve._threads.resolve`); per thread."""
    if name == "compiled" and not _jit.available():
        raise InvalidArgumentError(
            "backend='compiled' needs numba (not installed, or SKYSOLVE_DISABLE_NUMBA is set)")
    token = _BACKEND.set(name)
    token_threads = _THREADS.set(_threads.resolve(threads))
    try:
        yield
    finally:
        _THREADS.reset(token_threads)
        _BACKEND.reset(token)


def thread_count() -> int:
    """The threads the extraction running in this thread may cut its chunks for."""
    return _THREADS.get()


def compiled(name: str) -> Callable[..., Any] | None:
    """The compiled kernel ``name``, or None for the numpy code: None with the
    ``'reference'`` backend; with ``'auto'`` also until the kernels are in numba's
    cache (and their compilation started in the background, once per process);
    ``'compiled'`` compiles them now if need be."""
    choice = _BACKEND.get()
    if choice == "reference":
        return None
    if _COMPILED:
        return _COMPILED[name]
    if not _jit.available():
        return None
    if choice == "auto" and not _jit.is_warm(SOURCES):
        _jit.warm_in_background(__name__)
        return None
    return _compile()[name]


def compiled_fit() -> Callable[..., Any] | None:
    """The compiled :func:`fit_stamps`, or None (see :func:`compiled`)."""
    return compiled("fit_stamps")


def _warm_background(one: np.ndarray) -> None:
    """:func:`warm_up`'s calls of the background's kernels (``one``: an index array)."""
    _COMPILED["model_at"](one, 1, np.zeros((1, 1)), one, one, np.zeros(1), one, np.zeros(1))
    _COMPILED["cell_sums"](np.zeros((1, 1)), one, one, 1, np.ones((1, 1)))
    for dtype in (np.float64, np.float32):  # (a model's samples; a float32 frame of it)
        _COMPILED["grid_model"](np.zeros((1, 1)), one, one, np.zeros(1), one, np.zeros(1),
                                np.zeros((1, 1), dtype))
    _COMPILED["tile_bound"](np.zeros((1, 1)), one - 1, one - 1, one - 1, one - 1, 0.0)
    for dtype in (np.uint16, np.int16):  # (8-bit frames are widened to 16 bits)
        for writeable in (True, False):
            tiles = np.ones((1, 2), dtype)
            tiles.flags.writeable = writeable
            _COMPILED["integer_medians"](tiles)
    for dtype, writeable in NETWORK_MEDIAN_TYPES:
        image = np.ones((4, 4), dtype)
        image.flags.writeable = writeable
        top = np.inf if dtype.kind == "f" else np.iinfo(dtype).max
        for region in (image, image[:, :2]):  # (a whole frame's width, and part of it)
            _COMPILED["network_medians"](region, 2, 2, 1, 1, np.array([[0, 1]], np.intp), 4,
                                         dtype.type(top))
    _COMPILED["median9"](np.zeros((1, 1)), np.zeros((1, 2), np.intp))
    _COMPILED["level_rows"](np.zeros((1, 1), np.float32), np.zeros((1, 1)), one, np.zeros(1),
                            np.ones(1), 0.0, 0, np.zeros((1, 1), np.float32))
    _COMPILED["running_medians"](np.zeros((3, 1)), 3, np.zeros((1, 1)))
    _COMPILED["local_checks"](np.zeros((1, 1)), one, one, 1, 1.0, 0.5, 1.0, 1.5,
                              np.zeros((1, 2), np.intp), 1, 1)
    _warm_dark_areas()


def _warm_dark_areas() -> None:
    """:func:`warm_up`'s calls of the kernels of dark areas and all-sky discs (called by
    :func:`_warm_background`): :func:`jpeg_block_counts` (float32 frames, C order),
    :func:`dilate` (writeable masks, C order), :func:`floor_band_counts` (the same frames
    and masks) and :func:`on_circles` (float64 copies)."""
    frame = np.zeros((2, 2), np.float32)
    _COMPILED["jpeg_block_counts"](frame, frame, np.float32(1.0), np.float32(0.0), 8, 8, 8,
                                   2, 2)
    _COMPILED["dilate"](np.zeros((2, 2), bool), 1)
    _COMPILED["floor_band_counts"](frame, np.zeros((2, 2), bool), True, np.float32(0.0),
                                   np.float32(1.0), np.float32(1.0), 2)
    _COMPILED["on_circles"](np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), np.ones(1),
                            1.0, 1e-13)


def _warm_order_statistics() -> None:
    """:func:`warm_up`'s calls of the order statistics' kernels (about a fifth of its
    compile time: a sample type each)."""
    _compile()
    for dtype in SELECT_TYPES:
        for writeable in (True, False):  # (it only reads: a caller's array as it is)
            sample = np.zeros(2, dtype)
            sample.flags.writeable = writeable
            _COMPILED["select_value"](sample, 0)
            _COMPILED["select_into"](sample, 0, np.empty(2, dtype))
            _COMPILED["next_order_statistic"](sample, 0, dtype(0))
    for writeable in (True, False):  # (a caller's float64 sample, read as it is)
        sample = np.zeros(2)
        sample.flags.writeable = writeable
        _COMPILED["robust_location"](sample, 2, 3.0, 1.5, np.empty(2), np.empty(2, np.bool_),
                                     np.empty(2), np.empty(2))


#: The argument of ``python -m skysolve.extraction.kernels`` that compiles only
#: :func:`_warm_order_statistics`'s kernels (the helper process of ``warm_up(jobs=2)``).
_ORDER_STATISTICS_ARG = "--order-statistics"


def warm_up(jobs: int = 1) -> bool:
    """Compile (or load) the kernels into numba's cache and leave the warm marker;
    whether they are there (False without numba).

    Parameters
    ----------
    jobs : int
        Processes compiling at once: 1 (the default; the background compile's, so as
        not to take a user's cores), or 2, with the order statistics' kernels compiled
        by a helper process meanwhile (an install script's or a test session's: on a
        fresh cache of a 2-core machine 179 s instead of 209 s).
    """
    if not _jit.available():
        return False
    helper = None
    if jobs > 1 and not _jit.is_warm(SOURCES):
        import subprocess

        helper = subprocess.Popen([sys.executable, "-m", __name__, _ORDER_STATISTICS_ARG],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env=_jit._child_environment())
    try:
        _warm_others()
    finally:
        if helper is not None:
            helper.wait()
    # (loaded from the cache the helper filled; compiled here what it could not)
    _warm_order_statistics()
    _jit.mark_warm(SOURCES)
    return True


def _warm_others() -> None:
    """:func:`warm_up`'s calls of every kernel but the order statistics'."""
    fit = _compile()["fit_stamps"]
    for k in (5, 7):  # the argument types are what counts, not the sizes
        stamps = np.zeros((1, k, k), np.float32)
        stamps[0, k // 2, k // 2] = 1.0
        weights = np.ones((1, k, k), bool)
        for fix in (False, True):
            fit(stamps, weights, np.array([[0.0, 0.0, 1.0, 1.0, 1.0]]), 2, fix)
    _COMPILED["label_pixels"](np.array([0, 1, 5], dtype=np.intp), 4)
    one = np.zeros(1, np.intp)
    _warm_background(one)
    image = np.ones((3, 3), np.float32)
    _COMPILED["smooth"](image, np.ones(3, np.float32), image.copy(), 0, 3)
    _COMPILED["constant_area"](image, one, one, 16)
    for dtype in (np.uint8, np.uint16, np.int8, np.int16):  # (the counts a camera gives)
        for writeable in (True, False):  # (np.asarray of a PIL image is read-only)
            counts = np.ones((4, 8), dtype)
            counts.flags.writeable = writeable
            # (strided views, as _neighbour_pairs cuts them: no contiguous ones)
            _COMPILED["step_counts"](counts[::2, 0:-1:2], counts[::2, 1::2], 4096)
    for dtype in (np.uint8, np.uint16, np.int8, np.int16):  # (the counts a camera gives)
        for writeable in (True, False):  # (np.asarray of a PIL image is read-only)
            counts = np.ones((1, 1), dtype)
            counts.flags.writeable = writeable
            _COMPILED["counts_to_float32"](counts, np.empty((1, 1), np.float32),
                                           np.empty(1, dtype), 0, 1)
    _COMPILED["fill_gaps"](np.ones((3, 3), np.float32), np.ones((3, 3), bool),
                           np.zeros((3, 3), bool), 0, np.zeros((3, 3), np.float32))
    _COMPILED["add_gap_noise"](np.zeros((3, 3), np.float32), one, np.zeros((3, 3), np.float32),
                               1.0, np.zeros(1))
    _COMPILED["axis_light"](image, one + 1, one + 1, np.zeros(1))
    _COMPILED["dot_bands"](np.zeros(2), np.zeros(2), np.zeros(2), one, one + 1, np.ones(1),
                           np.zeros(1), 1.0, 0.2)
    _COMPILED["piece_lines"](*(np.zeros(2) for _ in range(5)), 1.0, 1.0, 0.1)
    _COMPILED["neighbour_sums"](np.ones((3, 3), np.float32), np.zeros((1, 1), bool), False,
                                one + 1, one + 1, np.zeros(1))
    for dtype in (np.uint16, np.int32):  # the label images' two types
        _COMPILED["paint_labels"](np.zeros(2, dtype), one, np.ones(1, np.int32))
        _COMPILED["blob_sums"](np.ones(2, dtype), one, one, np.ones(2), 2)
        sums = (np.zeros(2, np.intp), np.zeros(2), np.zeros(2), np.zeros(2, np.intp),
                np.zeros(2, np.intp), *(np.zeros(2) for _ in range(6)))
        _COMPILED["blob_sums_of"](np.ones(2, dtype), *sums[3:5], np.ones(2), 0, 2, *sums)
        _COMPILED["blob_pixels"](np.ones((2, 2), dtype), np.ones((2, 2), np.float32), one,
                                 np.zeros(1), np.empty(1, dtype), np.empty(1, np.intp),
                                 np.empty(1, np.intp), np.empty(1, np.float32), np.empty(1))
        _COMPILED["fit_windows"](
            np.ones((9, 9), np.float32), np.zeros((9, 9), dtype), np.zeros((1, 1), bool),
            False, one + 4, one + 4, np.zeros(1), np.zeros(1), np.zeros(1), one, one + 2,
            np.array([[0.0, 0.0, 1.0, 1.0, 1.0]]), False)
    # the quick extraction's pass reads a camera's counts as they come (no float copy),
    # read-only too (np.asarray of a PIL image); its floats writeable (.fast._pixels)
    weights = (one - 1, one - 1, np.ones(1), np.zeros(1))
    for dtype, writeable in QUICK_PIXEL_TYPES:
        pixels = np.ones((1, 1), dtype)
        pixels.flags.writeable = writeable
        _COMPILED["sky_candidates"](pixels, np.zeros((1, 1)), np.ones((1, 1)), *weights,
                                    *weights, 0, 1)
        _COMPILED["neighbour_sums"](pixels, np.zeros((1, 1), bool), False, one, one,
                                    np.zeros(1))
    _COMPILED["lattice_levels"](np.ones((1, 1)), 1)
    tables = (np.zeros((1, 1)), one - 1, one - 1, np.zeros(1), one - 1, np.zeros(1))
    for dtype, writeable in TILE_CANDIDATE_TYPES:
        pixels = np.ones((1, 1), dtype)
        pixels.flags.writeable = writeable
        _COMPILED["band_candidates"](pixels, np.zeros((1, 1), dtype), 1, 1, 0, 1,
                                     np.ones((1, 1), np.float32), *tables, *tables, 1.0, 0.0,
                                     True)


if __name__ == "__main__":  # pragma: no cover - run by the background start
    if sys.argv[1:] == [_ORDER_STATISTICS_ARG]:  # (warm_up(jobs=2)'s helper)
        if not _jit.available():
            sys.exit(1)
        _warm_order_statistics()
        sys.exit(0)
    sys.exit(0 if warm_up() else 1)
