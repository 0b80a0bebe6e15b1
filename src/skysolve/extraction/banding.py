"""Readout pattern noise: whole rows (or columns) offset from their neighbours.

Many CMOS sensors read each row through its own amplifier setting, and an
uncalibrated frame (no bias or dark frame subtracted) keeps every row a little
above or below the next: horizontal stripes over the whole frame, often with
slower bands on top. The extractor's background is a smooth surface through
block medians; it cannot follow a pattern that changes from one row to the next.
Left in, the stripes inflate the noise estimate (so faint stars are lost) and
break stars into the pieces on the brighter rows (so the bright ones look
elongated, or too small, and are rejected).

:func:`unbanded` removes the offsets: the level of each row (a clipped mean about
its median: stars, hot pixels and the like do not count) less the same levels
smoothed over a background block of rows (a running median), which keeps the
sky's own slow changes for the background to follow. The levels are taken in
stretches two blocks long and interpolated along the row between them: stretched
to 8 bits with a gamma, an offset is larger where the sky is darker, and a row's
pattern differs across a vignetted or glowing frame (one level per row left a
third of the stripes of such a frame). It acts only on frames whose
noise across rows exceeds the noise along them (second differences, to which a
smooth sky contributes little): a frame without such a pattern is left alone, to
the bit.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from . import scratch
from .background import (
    _JPEG_BLOCK,
    _even_spread,
    _subsample_step,
    robust_sigma,
)
from .kernels import compiled
from .orderstats import median, row_medians, running_median

__all__ = ["unbanded"]

#: Rows (columns) are levelled when their offsets' spread, estimated from the second
#: differences across the rows against those along them, is at least this fraction of
#: the pixel noise (second differences of offsets of sd ``s`` add ``6 s^2`` to the
#: variance: at 0.65 the noise across the rows reads 1.19 times that along them).
#: Frames without a pattern read up to 0.48 (bench_allsky's discs, their rims and
#: burned-in captions, 208 frames); bench_hard's banded frames 0.83 and more (rows 1
#: sigma apart, 16-bit) and 1.2 and more as JPEGs.
BAND_NOISE = 0.65
#: ... and when the measured offsets (each row's level less the smoothed levels) spread
#: by this fraction of the pixel noise or more, and by this many times the precision of
#: one row's level (a clipped mean of ``n`` pixels: sigma / sqrt(n)).
BAND_SPREAD = 0.3
BAND_PRECISION = 5.0
#: Pixels sampled for the test (second differences each way).
BAND_SAMPLES = 6_000
#: Pixels further than this many noise sigmas from their row's median do not count in
#: its level.
BAND_CLIP = 3.0


#: :func:`.background._even_spread` of a step of 1, made once: the sample's values are
#: moved by it in every call (computing it costs as much as the rest of the test).
_SPREAD = _even_spread(2 * BAND_SAMPLES, 1.0)


def _noise(values: NDArray, quantum: float | None) -> float:
    """MAD noise of a sample; of quantised data (value step ``quantum``) with each value
    moved by its own fraction of a step (as :func:`.background._dithered_sigma` does,
    less the variance the steps and the spread add): a MAD of values on a lattice is
    itself a whole or half number of steps, coarser than the test needs (second
    differences of an 8-bit sky under 5 counts of noise: 12 counts, the next 13)."""
    values = values.ravel().astype(np.float64)
    if values.size == 0:
        return float("nan")
    if quantum is not None:
        spread = _SPREAD if values.size <= _SPREAD.size else _even_spread(values.size, 1.0)
        values += spread[:values.size] * quantum
    mad = 1.4826 * median(np.abs(values - median(values)))
    if quantum is not None:
        mad = math.sqrt(max(mad * mad - quantum * quantum / 6.0, 0.0))
    return mad


def _excess(work: NDArray[np.float32], quantum: float | None) -> tuple[float, float, float]:
    """``(pixel noise, spread of row offsets, spread of column offsets)``, each from
    second differences on a subsample: along a row the row offsets cancel, across the
    rows the column offsets do. The pixels differenced lie a JPEG block apart
    (:data:`.background._JPEG_BLOCK`), so that a JPEG's smoothing within its blocks
    does not make its noise look small (at quality 40 neighbours' differences read a
    fifth of the noise, and the blocks' own rows a pattern beside it); independent row
    offsets add as much to them at any distance."""
    h, w = work.shape
    d = _JPEG_BLOCK if min(h, w) > 4 * _JPEG_BLOCK else 1
    step = _subsample_step((h - 2 * d, w - 2 * d), BAND_SAMPLES)
    step += step % _JPEG_BLOCK == 0  # (not every pixel at one place of its JPEG block)
    # (strided views: the pixels at rows r and columns c of the sample, and those d
    # above and below, left and right of them)
    rows, cols = slice(d, h - d, step), slice(d, w - d, step)
    mid = 2.0 * work[rows, cols]
    across = work[0:h - 2 * d:step, cols] + work[2 * d:h:step, cols] - mid
    along = work[rows, 0:w - 2 * d:step] + work[rows, 2 * d:w:step] - mid
    s_across = _noise(across, quantum) / math.sqrt(6.0)
    s_along = _noise(along, quantum) / math.sqrt(6.0)
    pixel = min(s_across, s_along)
    # (second differences of independent offsets of sd s have variance 6 s^2, as the
    # pixels' own of noise sigma: the two add)
    rows_ = math.sqrt(max(s_across**2 - s_along**2, 0.0))
    cols_ = math.sqrt(max(s_along**2 - s_across**2, 0.0))
    return pixel, rows_, cols_


def _row_offsets(work: NDArray[np.float32], bad: NDArray | None, sigma: float,
                 window: int, width: int) -> NDArray[np.float64] | None:
    """Each row's offset from the smoothed levels of its neighbours, in stretches of
    ``width`` columns (``(H, k)``: row, stretch), or None when they are no pattern (see
    :data:`BAND_SPREAD`). ``work``: the working copy (finite)."""
    h, w = work.shape
    k = max(1, w // width)
    edges = np.linspace(0, w, k + 1).astype(int)
    levels, counts = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        part = work[:, a:b]
        med = row_medians(part).astype(np.float32, copy=False)
        near = np.abs(part - med[:, None]) < BAND_CLIP * sigma
        if bad is not None:
            near &= ~bad[:, a:b]
        n = near.sum(axis=1)
        level = np.where(near, part, 0.0).sum(axis=1, dtype=np.float64) / np.maximum(n, 1)
        levels.append(np.where(n > 0, level, med))
        counts.append(n)
    level = np.column_stack(levels)
    offsets = level - running_median(level, min(window, 2 * ((h - 1) // 2) + 1))
    spread = robust_sigma(offsets.ravel())
    precision = sigma / math.sqrt(max(float(np.median(np.column_stack(counts))), 1.0))
    if not spread >= max(BAND_SPREAD * sigma, BAND_PRECISION * precision):
        return None
    return offsets


def _spread_along(offsets: NDArray[np.float64], lo: NDArray[np.intp],
                  t: NDArray[np.float64]) -> NDArray[np.float64]:
    """Offsets of stretches (``(H, k)``) interpolated linearly along the rows between
    the stretches' middles (constant beyond the outer ones; ``lo``, ``t``:
    :func:`_between_stretches`): ``(H, W)``."""
    k = offsets.shape[1]
    if k == 1:
        return np.broadcast_to(offsets, (offsets.shape[0], len(t)))
    return offsets[:, lo] * (1.0 - t) + offsets[:, lo + 1] * t


def _between_stretches(k: int, w: int) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """:func:`_spread_along`'s interpolation along a row of ``w`` pixels between the
    middles of ``k`` stretches: each pixel's stretch to the left and its fraction of the
    way to the next (zeros for one stretch, which has no next)."""
    if k == 1:
        return np.zeros(w, np.intp), np.zeros(w)
    mids = (np.arange(k) + 0.5) * w / k
    pos = np.clip(np.interp(np.arange(w) + 0.5, mids, np.arange(k)), 0, k - 1)
    lo = np.minimum(pos.astype(int), k - 2)
    return lo, pos - lo


def _levelled(work: NDArray[np.float32], offsets: NDArray[np.float64], quantum: float | None,
              axis: int) -> NDArray[np.float32]:
    """``work`` less its rows' (``axis`` 0) or columns' (1) offsets (``(n, k)``,
    :func:`_row_offsets`) spread along them (:func:`_spread_along`), in whole steps of
    ``quantum`` when given: a new array, laid out as ``work``.

    In one compiled pass (:func:`.kernels.level_rows`) once the kernels are compiled,
    else by numpy a band of rows (or columns) at a time: the frame-sized float64
    temporaries of the whole frame at once took 4.4 of a 1024x768 frame's 10.6 ms of
    levelling, most of it their first touch."""
    out = scratch.empty(work.shape, work.dtype) if work.flags.c_contiguous \
        else np.empty_like(work)
    lo, t = _between_stretches(offsets.shape[1], work.shape[1 - axis])
    kernel = compiled("level_rows")
    if kernel is not None and work.flags.c_contiguous and work.flags.writeable:
        kernel(work, np.ascontiguousarray(offsets), lo, t, 1.0 - t,
               0.0 if quantum is None else float(quantum), axis, out)
        return out
    src, dst = (work, out) if axis == 0 else (work.T, out.T)
    for r0 in range(0, src.shape[0], _LEVEL_ROWS):
        r1 = min(r0 + _LEVEL_ROWS, src.shape[0])
        shift = _spread_along(offsets[r0:r1], lo, t)
        if quantum is not None:
            shift = np.round(shift / quantum) * quantum
        np.subtract(src[r0:r1], shift.astype(np.float32), out=dst[r0:r1])
    return out


#: Rows :func:`_levelled` takes at a time.
_LEVEL_ROWS = 32


def unbanded(work: NDArray[np.float32], bad: NDArray | None, quantum: float | None,
             block: int | None) -> tuple[NDArray[np.float32], bool]:
    """``work`` with its row (and column) offsets removed, and whether it had any.

    Parameters
    ----------
    work : ndarray of float32, shape (H, W)
        The extractor's working copy (not changed: a levelled frame is a new array).
    bad : ndarray of bool or None
        Unusable pixels, which do not count in a row's level.
    quantum : float or None
        The data's value step (None: continuous values). The offsets removed are
        whole steps, so the levelled frame stays on its lattice.
    block : int or None
        The background's block size (px): offsets are measured against the rows'
        levels smoothed over a block (64 px when None).

    Returns
    -------
    (ndarray, bool)
        The levelled frame (``work`` itself when it had no pattern) and whether it was
        levelled.
    """
    h, w = work.shape
    if h < 16 or w < 16:
        return work, False
    sigma, rows, cols = _excess(work, quantum)
    if not sigma > 0:
        return work, False
    window = 2 * ((block or 64) // 2) + 1
    out = work
    for axis, spread in ((0, rows), (1, cols)):
        if spread < BAND_NOISE * sigma:
            continue
        view = out if axis == 0 else out.T
        offsets = _row_offsets(view, None if bad is None else (bad if axis == 0 else bad.T),
                               sigma, window, 2 * window)
        if offsets is None:
            continue
        out = _levelled(out, offsets, quantum, axis)
    return out, out is not work
