"""Sky background and noise estimation for star extraction.

The background is modelled either as one global level or as a grid of robust
per-block levels (a block's median, with block outliers — blocks dominated by a
bright star — replaced by the median of their 3x3 block neighbourhood) that is
interpolated bilinearly between block centres to any pixel. The model is never
materialised at full resolution unless asked for: extraction only needs it at a
few hundred thousand candidate pixels, and a per-tile lower bound to pre-select
them (see :meth:`Background.tile_lower_bound`).

Noise is one global robust standard deviation (MAD scaled to a Gaussian sigma,
with iterative clipping of the bright tail) of the background-subtracted image; where
the data are quantised more coarsely than their noise, so that many values tie and
the MAD shrinks or vanishes (an 8-bit sky under a count of noise, a colour frame's
luminance), a clipped rms in the data's steps instead (:func:`_tied_sigma`; also
for counts divided by a flat, whose step drifts over the frame:
:func:`_varying_step`); under a few steps of noise, the MAD of the values spread
evenly over their steps, whose own MAD is a whole number of steps
(:func:`_dithered_sigma`); and where the sky was clipped from below (negative
values of a calibrated frame set to zero, a camera offset set too low), so that a
large part of it sits at one least value, the spread of the pixels above that floor
(:func:`_floored_sigma`; of their values spread over their steps under a few steps
of noise).

Two checks on a sparse sample of the residual (image minus model, ~25,000
pixels) make the model follow skies that are not smooth on the block scale
(cloud edges, glare, the rim of a silhouette, a light dome):

* **structure**: in cells of half a block, the clipped mean residual of a sky
  the bilinear model follows is zero within its noise; if any cell is off by
  more than ``max(1, 6 / sqrt(n))`` local sigmas (``n`` samples, clipped at 3
  sigmas, so a bright star does not count as structure), the model is rebuilt
  with blocks half the size (down to 16 px);
* **noise**: the clipped rms of the residual per block; when its 90th
  percentile exceeds its 10th by more than half (photon noise under a
  gradient, scattered light, a dark silhouette) the model carries a noise grid
  (3x3-median smoothed, interpolated like the levels, never below half the
  global noise) and detection thresholds follow it.

A smooth sky passes both (three bincounts over the sample; compiled, both checks
are one kernel, :func:`.kernels.local_checks`) and keeps the single model and the
global noise.

A block's median is an exact order statistic of its samples (every other pixel of
blocks from 16 px): numpy's partition of the gathered samples, a histogram of a
camera's 16-bit counts, or, compiled, a sorting network applied to a row of blocks at
once (:func:`median_network`, :func:`.kernels.network_medians`; where it is faster:
:func:`_by_network`). All give the same numbers. The sample also says whether anything in
front of the sky is far darker than it (:attr:`Background.dark_fraction`: the
fraction of samples more than :data:`DARK_SIGMAS` below both the model and the
typical sky level), which the extractor's foreground test needs to know.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

from .. import _threads
from . import scratch
from .kernels import NETWORK_MEDIAN_TYPES, compiled, thread_count
from .linking import pixel_labels
from .orderstats import lower_median, median, order_statistic, percentiles

__all__ = ["Background", "block_grid", "clipped_floor", "clipped_floor_stars",
           "dark_constant_areas",
           "estimate_background", "flattened_blocks", "robust_sigma", "robust_location"]

#: Serialises the building of models' interpolation tables (:meth:`Background._tables`).
_TABLES_LOCK = threading.Lock()
#: Smallest block the structure check refines to (px).
_MIN_BLOCK = 16
#: Noise grids whose highest and lowest block differ by less than this factor are uniform.
_NOISE_RATIO = 1.5
#: The noise grid never drops below this fraction of the global noise.
_NOISE_FLOOR = 0.5
#: Variance of a unit Gaussian clipped at +-3 (a clipped rms is scaled up by its root).
_CLIPPED_VAR_3 = 0.9733

#: MAD -> Gaussian sigma.
MAD_TO_SIGMA = 1.482602218505602

#: Samples of the tile medians' bands (:func:`_tile_medians`): 1 MB of float32.
_BAND_SAMPLES = 262_144
#: ... and the fewest worth handing to another thread (a 1024x768 frame's 196,000 gain
#: nothing from a second: 7.6 against 7.7 ms for the whole extraction).
_THREAD_SAMPLES = 200_000

# Samples used for the global statistics: enough for a ~1 % accurate sigma.
_GLOBAL_SAMPLES = 25_000
#: Pixels this many noise sigmas below the sky are not sky (a Gaussian sky has none in
#: 10^11): a silhouette, or an image circle's dark border.
DARK_SIGMAS = 7.0


#: The compare-exchanges of a median-of-9 sorting network (Paeth's): the median ends in 4.
_MEDIAN_OF_9 = ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3),
                (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2))
#: ... as an array, for the compiled twin (:func:`.kernels.median9`).
_MEDIAN_NETWORK = np.array(_MEDIAN_OF_9, dtype=np.intp)


def _odd_even_merge_pairs(size: int) -> list[tuple[int, int]]:
    """The compare-exchanges of Batcher's odd-even merge sort of ``size`` (a power of two)
    values, in order: each pair ``(i, j)``, ``i < j``, leaves the smaller value in ``i``."""
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


@lru_cache(maxsize=8)
def median_network(n: int) -> tuple[NDArray[np.intp], int]:
    """A sorting network's compare-exchanges that put the middle of ``n`` values (the
    order statistics ``(n - 1) // 2`` and ``n // 2``) in their places, ``(pairs, size)``:
    Batcher's odd-even merge sort of ``size``, the power of two from ``n`` up (the
    values beyond ``n`` are +inf), less the exchanges the middle does not depend on
    (445 of its 543 for 64 values). Treat as read-only."""
    size = 1 << max(n - 1, 0).bit_length()
    need = {(n - 1) // 2, n // 2}
    kept = []
    for a, b in reversed(_odd_even_merge_pairs(size)):
        if a in need or b in need:
            kept.append((a, b))
            need |= {a, b}
    return np.array(kept[::-1], dtype=np.intp).reshape(-1, 2), size


def _filter3(grid: NDArray, kind: str) -> NDArray:
    """The ``kind`` (``'min'``, ``'max'`` or ``'median'``) of every cell's 3x3
    neighbourhood, the edges replicated: ``scipy.ndimage``'s ``size=3,
    mode='nearest'`` filters to the bit (whose import would cost a one-shot solve
    ~0.2 s), and faster on a grid of a few hundred cells."""
    ny, nx = grid.shape
    kernel = compiled("median9") if kind == "median" and grid.dtype == np.float64 else None
    if kernel is not None:
        return kernel(np.ascontiguousarray(grid), _MEDIAN_NETWORK)
    pad = np.empty((ny + 2, nx + 2), grid.dtype)
    pad[1:-1, 1:-1] = grid
    pad[0, 1:-1], pad[-1, 1:-1] = grid[0], grid[-1]
    pad[:, 0], pad[:, -1] = pad[:, 1], pad[:, -2]
    if kind == "median":
        # a sorting network's 19 compare-exchanges (a partition of the 9 stacked
        # neighbourhoods costs 6x as much on a 128x128 grid)
        p = [pad[i:i + ny, j:j + nx] for i in range(3) for j in range(3)]
        for a, b in _MEDIAN_OF_9:
            p[a], p[b] = np.minimum(p[a], p[b]), np.maximum(p[a], p[b])
        return p[4]
    op = np.minimum if kind == "min" else np.maximum
    rows = op(op(pad[:, :-2], pad[:, 1:-1]), pad[:, 2:])  # separable: rows, then columns
    return op(op(rows[:-2], rows[1:-1]), rows[2:])


def _kth(values: NDArray, overwrite: bool = False) -> NDArray:
    """Median along the last axis via one partition (np.median costs several times
    more); with ``overwrite``, of ``values`` in place (a copy the caller gathered:
    copying it again cost a 1024x768 frame's block medians 5-9 of their 65 us).

    For an even count it averages the two middle values: the lower median alone
    is biased low by half their gap, which on a steep sky is a sizeable fraction
    of the block-to-block step.
    """
    n = values.shape[-1]
    k = (n - 1) // 2
    part = values if overwrite else values.copy(order="K")  # (np.partition's copy)
    if n % 2:
        part.partition(k, axis=-1)
        return part[..., k]
    # one single-kth partition and a max: a two-kth partition is ~10x slower
    part.partition(k + 1, axis=-1)
    return 0.5 * (part[..., :k + 1].max(axis=-1).astype(np.float64) + part[..., k + 1])


def robust_location(values: NDArray, iterations: int = 2, clip: float = 3.0) -> tuple[float, float]:
    """Sigma-clipped median and MAD sigma of a 1-D sample.

    Returns ``(location, sigma)``; both are NaN for an empty sample.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return float("nan"), float("nan")
    kernel = compiled("robust_location")
    if kernel is not None:  # (its twin: the same order statistics, without the temporaries)
        n = v.size
        with scratch.borrowed():  # (its scratch space free again for the next sample)
            med, sig = kernel(v, int(iterations), float(clip), MAD_TO_SIGMA, scratch.empty(n),
                              scratch.empty(n, np.bool_), scratch.empty(n), scratch.empty(n))
        return float(med), float(sig)
    # a selection (numpy's partition, or the compiled one) beats a compiled histogram
    # selection on the 30,000-sample residuals; the deviations serve the MAD and the
    # clip both
    med = order_statistic(v, (v.size - 1) // 2)
    dev = np.abs(v - med)
    sig = MAD_TO_SIGMA * lower_median(dev)
    # The clipped sample is never gathered: what is kept, |v - med| < clip * sig, is a run
    # of consecutive order statistics of ``v`` (the rounded difference is monotonic on
    # either side of med), so its median is one of ``v``'s, selected by its rank; and
    # its MAD is the same rank of all the deviations when no clipped value lies among
    # the smallest of them, as they lie beyond the clip (else it is taken from the kept
    # ones). The same order statistics as clipping the sample; a gather cost as much as
    # a selection.
    keep = None
    n_kept = v.size
    for _ in range(iterations):
        if sig <= 0:
            break
        inside = dev < clip * sig
        keep = inside if keep is None else np.logical_and(keep, inside, out=keep)
        n_keep = int(np.count_nonzero(keep))
        if n_keep == n_kept or n_keep < 10:
            break
        n_kept = n_keep
        out = ~keep
        med = order_statistic(v, int(np.count_nonzero(out & (v < med))) + (n_keep - 1) // 2)
        dev = np.abs(v - med)
        mad = order_statistic(dev, (n_keep - 1) // 2)
        if np.count_nonzero(out & (dev <= mad)):
            mad = lower_median(dev[keep])
        sig = MAD_TO_SIGMA * mad
    return med, sig


def robust_sigma(values: NDArray, iterations: int = 2, clip: float = 3.0) -> float:
    """Robust Gaussian-equivalent standard deviation (clipped MAD) of a sample."""
    return robust_location(values, iterations, clip)[1]


def _subsample_step(shape: tuple[int, int], n: int, mosaic: bool = False) -> int:
    """The stride of a regular ~n-pixel subsample of a frame of ``shape``; of a ``mosaic``
    (a raw colour frame) odd, an even stride less one, so that the sample takes every
    phase of its 2x2 pattern in turn. An even stride reads the same pixel of every 2x2
    cell: of a Bayer mosaic only its blue (or red) pixels, whose noise may be a third
    of the green ones' (a 6000x4000 DSLR frame took a stride of 30), and 5 such sigmas
    found 2,000 sources in the green pixels' noise of a field of 22 stars."""
    h, w = shape
    step = max(1, int(np.sqrt(h * w / n)))
    return step - 1 if mosaic and step % 2 == 0 else step


def _sample_grid(shape: tuple[int, int], n: int, mosaic: bool = False
                 ) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """The rows and columns of the frame that :func:`_subsample` takes."""
    step = _subsample_step(shape, n, mosaic)
    return np.arange(step // 2, shape[0], step), np.arange(step // 2, shape[1], step)


def _subsample(image: NDArray, n: int, mosaic: bool = False) -> NDArray:
    """A regular ~n-pixel subsample of a 2-D array (strided, no copy of the full frame)."""
    step = _subsample_step(image.shape, n, mosaic)
    return image[step // 2::step, step // 2::step]


#: A pixel lies in a constant area when this many pixels on each side of it, along its
#: row and along its column, hold exactly its value: a run of 33 px spans four JPEG
#: blocks, which a noisy sky, even one the encoder flattened, does not keep at one value.
_CONSTANT_REACH = 16
#: Constant areas are looked for at full resolution when they hold this fraction of a
#: sample of the frame (a frame without them keeps its pixels, and its estimates, to the
#: bit) ...
_CONSTANT_FRACTION = 0.01
#: ... of this many pixels (0.05 ms on a frame without them).
_CONSTANT_SAMPLES = 2_500
#: A dark value this fraction of the sky away from the constant areas holds is the sky's
#: (a fisheye stretched to 8 bits, clipped at 0 over 28 % of it) and stays; a lens
#: circle's surround leaves ~1 % (a strip thinner than the reach along the frame's edge).
_SKY_HELD = 0.05


def _constant_area(image: NDArray, rows: NDArray, cols: NDArray) -> NDArray[np.bool_]:
    """Which pixels of the grid ``rows`` x ``cols`` have :data:`_CONSTANT_REACH` pixels of
    exactly their value on each side along both axes (clipped at the frame's edges),
    shape ``(len(rows), len(cols))`` (compiled: :func:`.kernels.constant_area`, for the
    extractor's float32 working copy)."""
    kernel = compiled("constant_area")
    if kernel is not None and image.dtype == np.float32 and image.flags.c_contiguous:
        return kernel(image, np.asarray(rows, np.intp), np.asarray(cols, np.intp),
                      _CONSTANT_REACH)
    h, w = image.shape
    flat_image = image.ravel()
    r = np.repeat(np.asarray(rows, np.intp), len(cols))
    c = np.tile(np.asarray(cols, np.intp), len(rows))
    value = flat_image[r * w + c]
    cand = np.arange(r.size)
    # the farthest pixels first: in a noisy sky they leave no candidate for the rest
    for d in range(_CONSTANT_REACH, 0, -1):
        for dr, dc in ((d, 0), (-d, 0), (0, d), (0, -d)):
            # (minimum/maximum: np.clip checks its integer bounds at every call)
            rr = np.minimum(np.maximum(r[cand] + dr, 0), h - 1)
            cc = np.minimum(np.maximum(c[cand] + dc, 0), w - 1)
            cand = cand[flat_image[rr * w + cc] == value[cand]]
            if cand.size == 0:
                return np.zeros((len(rows), len(cols)), bool)
    out = np.zeros(r.size, bool)
    out[cand] = True
    return out.reshape(len(rows), len(cols))


def _window(a: NDArray[np.bool_], n: int, op) -> NDArray[np.bool_]:
    """``op`` (``np.logical_and`` or ``_or``) of every ``n`` consecutive values along the
    last axis (``n - 1`` fewer values), by doubling spans."""
    span = 1
    while span < n:
        shift = min(span, n - span)
        a = op(a[..., :-shift], a[..., shift:])
        span += shift
    return a


def _runs_both_sides(eq: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """From ``eq`` (``(h, w - 1)``: pixel ``j`` equals pixel ``j + 1``), which of the ``w``
    pixels of each row equal :data:`_CONSTANT_REACH` pixels on each side (the frame's
    edge ends a run without breaking it)."""
    r = _CONSTANT_REACH
    pad = np.ones((eq.shape[0], eq.shape[1] + 2 * r), bool)
    pad[:, r:-r] = eq
    run = _window(pad, r, np.logical_and)  # run[:, k]: eq at padded k .. k + r - 1 all
    return run[:, :-r] & run[:, r:]  # left of pixel j: run[:, j]; right: run[:, j + r]


def dark_constant_areas(image: NDArray, quantum: float | None = None,
                        bad: NDArray[np.bool_] | None = None
                        ) -> tuple[NDArray[np.bool_], tuple[NDArray[np.intp], NDArray] | None] \
        | None:
    """The pixels of ``image`` in constant areas darker than its sky -- an all-sky
    camera's black surround of its lens circle, a blacked-out region, zeros or a
    constant level -- or None when they hold less than :data:`_CONSTANT_FRACTION` of it
    (or all of it: a noise-free frame); with them, the stars such an area holds, when it
    holds some (a sky stretched to its black point, :func:`_held_stars`), as ``(flat
    indices, light above the area's value)``, else None (their pixels are not in the
    mask).

    They are no sky: left in, their pixels pile up at the model's level and shrink the
    noise estimate (a sky of 3.0 counts came out at 2.3-2.7 with a lens circle's black
    surround on 45 % of the frame), the block levels at the rim average sky and black
    (the sky's edge pixels rise above the model as a ring of detections), and a JPEG's
    constant blocks there count as a flattened sky (:func:`flattened_blocks`). A constant area has
    :data:`_CONSTANT_REACH` pixels of its value on each side along both axes, or lies
    within that reach of such a pixel and holds its value, or lies in a JPEG block
    beside it (within 7 px); values the sky away from them holds at
    :data:`_SKY_HELD` of its pixels are the sky's own; areas brighter than the
    sky
    (saturation) are stars, and stay, as do those less than :data:`DARK_SIGMAS` noise
    sigmas below it. ``quantum``: the data's value step, as for
    :func:`estimate_background` (a sky a JPEG flattened into long runs of one value
    has no MAD, and its noise is measured in steps). ``bad``: pixels that hold no data
    (masked or not finite, filled with sky noise): never a held star.
    """
    h, w = image.shape
    step = _subsample_step((h, w), _CONSTANT_SAMPLES)
    rows, cols = _sample_grid((h, w), _CONSTANT_SAMPLES)
    const = _constant_area(image, rows, cols)
    n = int(np.count_nonzero(const))
    if n < _CONSTANT_FRACTION * const.size or n == const.size:
        return None
    sample = image[step // 2::step, step // 2::step]
    # the sky away from them (the pixels near their edge do not reach far enough)
    away = sample[~_dilate(const, _CONSTANT_REACH // step + 2)]
    values = []
    for v in np.unique(sample[const]):
        if np.count_nonzero(away == v) >= _SKY_HELD * away.size:
            continue  # the sky holds the value too: clipped there, where stars still rise
        # against the rest of the frame (a JPEG may flatten its sky into constant areas
        # too): far below the sky, as a sky stretched to its black point, clipped at 0 a
        # few noise sigmas below its level and holding stars, is not
        rest = sample[~(const & (sample == v))]
        level, sigma = robust_location(rest)
        sigma = _tied_sigma(rest - level, sigma, quantum)
        if v < level - DARK_SIGMAS * sigma:
            values.append((v, sigma))
    if not values:
        return None
    # (the runs of equal neighbours both ways, whatever their value: made once)
    runs = _runs_both_sides(image[:, 1:] == image[:, :-1]) \
        & _runs_both_sides((image[1:] == image[:-1]).T).T
    out = np.zeros(image.shape, dtype=bool)
    held_idx, held_lift = [], []
    for v, sigma in values:
        area = _constant_area_of(image, v, runs)
        held = _held_stars(image, area, v, sigma, bad)
        if held is not None:  # a sky stretched to black, its stars rising from it
            area.flat[held[0]] = False
            held_idx.append(held[0])
            held_lift.append(held[1])
        out |= area
    if not out.any():
        return None
    if not held_idx:
        return out, None
    return out, (np.concatenate(held_idx), np.concatenate(held_lift))


#: A frame's lowest value is a clip when it holds at least this fraction of a sample of
#: the frame's usable pixels (a 16-bit frame's lowest value holds one pixel in millions;
#: a stretch whose black point clipped vignetted corners, 5-20 % of the frame) ...
_CLIP_FRACTION = 0.01
#: ... of this many pixels, when it lies this many noise sigmas below the sample's median
#: sky (a Gaussian sky puts 0.003 % of its pixels there, a clip a hundred times as many:
#: a gamma stretch whose black point lay within the sky's noise put 17 % of a Gaia
#: field's pixels at 0, 6.5 of its noise sigmas below the median, which the stretch's
#: steep foot had spread to 28 counts) ...
_CLIP_SIGMAS = 4.0
_CLIP_SAMPLES = 2_500


def clipped_floor(image: NDArray, quantum: float | None = None,
                  bad: NDArray[np.bool_] | None = None) -> NDArray[np.bool_] | None:
    """The pixels of ``image`` at its lowest value when a stretch clipped part of its sky
    there, far below the rest (its vignetted corners, a gradient's dark side), or None;
    the floor's values are those a lossy encoder spread it over (:func:`_floor_top`), and
    a floor the encoder spread below its value too is found by its values' peak
    (:func:`_pedestal`: video range's black at 16). A floor under over half of the frame
    is compared with the median of the rest, the sky the stretch left.

    A pixel at such a floor says only that the sky there lay below the black point: the
    sky of an area clipped over most of its pixels cannot be measured. Left in, the
    floor was the model's level there, and its noise (clipped at a few sigmas of the
    frame's) that of the few pixels not clipped, while the stretch raised the sky's
    noise there most (a gamma stretch's slope is steepest at its black point): a real
    frame stretched to gamma 0.3 over its 10th-99.9th percentiles, 11 % of it clipped in
    its corners, kept 48 noise peaks there as its brightest stars and none of its 33,
    and failed to solve. The clipped pixels are masked as unusable pixels are (filled
    with the sky's noise, never part of a star); the pixels above the floor stay.
    Such a floor holds :data:`_CLIP_FRACTION` of a sample of the frame; lies
    :data:`_CLIP_SIGMAS` noise sigmas below its median (the noise measured on second
    differences along rows of pixels above the floor, which a gradient does not widen:
    a faint sky under a few counts of noise, clipped at 0 over half of it, is the sky's
    own noise clipped, and stays); lifts the lit pixels beside its pixels
    :data:`_CLIP_LIFT` of the way to the sky's lower quartile (:data:`_CLIP_SKY`: a
    strong gamma's black point; a linear clip, or a black surround's few counts of
    noise, stays); and lies scattered among
    them (:func:`_scattered`: a silhouette, or a sky clipped whole around its stars,
    stays). ``quantum``: the data's value step (:func:`_tied_sigma`); ``bad``: pixels
    already unusable (not counted, not returned). The extractor does not look for one
    in a lens circle's frame (its surround's floor); beside black areas
    (:func:`dark_constant_areas`: a JPEG's corners flattened whole) it masks both.
    """
    sample = _subsample(image, _CLIP_SAMPLES)
    if bad is not None:
        sample = sample[~_subsample(bad, _CLIP_SAMPLES)]
    if sample.size == 0:
        return None
    floor = sample.min()
    if np.count_nonzero(sample == floor) < _CLIP_FRACTION * sample.size:
        floor = _pedestal(sample, quantum)
        if floor is None:
            return None
    level = median(sample)
    if not level > floor:
        # over half of the sample on the floor: a black point above the sky's median
        # (a background edited to black), and the sky to compare the floor with is the
        # part of it the stretch left (the real frames stretched from their 50th-80th
        # percentile at gamma 0.15-0.25, to 8 and 16 bits: up to 2,000 detections of
        # noise, and 24 of the 40 unsolved)
        left = sample[sample > floor]
        if left.size < _CLIP_FRACTION * sample.size:
            return None
        level = median(left)
    top = _floor_top(image, floor, level, quantum, bad)
    # (the tests below, all of which a floor passes, in order of cost: a camera's black
    # level, a linear clip, fails the lift, and is spared the noise's 0.5 ms on a
    # 1024x768 frame; this one the noise test implies, and the sky's quartile needs)
    if not top < level:
        return None
    out = image <= top
    if bad is not None:
        out &= ~bad
    # a floor pixel's right neighbour, lit: in the flattened frame, where a row's last
    # pixel's (the next row's first) is dropped (the 2-D masks' gather took twice as long)
    h, w = out.shape
    flat = out.ravel()
    lit = flat[:-1] & ~flat[1:]
    if bad is not None:
        lit &= ~bad.ravel()[1:]
    lit[w - 1::w] = False
    sky = percentiles(sample[sample > top], (_CLIP_SKY,))[0] - floor
    lifted = median(image.ravel()[1:][lit]) - floor if lit.any() else 0.0
    if lifted < _CLIP_LIFT * sky:
        return None
    sigma = _floor_noise(image, top, quantum, bad)
    if not top < level - _CLIP_SIGMAS * sigma:  # (NaN: too few pixels to tell)
        return None
    lit_pixels = np.zeros(h * w, dtype=bool)
    lit_pixels[:-1] = lit
    return out if _scattered(out, lit_pixels.reshape(h, w)) else None


def _pedestal(sample: NDArray, quantum: float | None) -> np.generic | None:
    """The floor of a clip at a pedestal that a lossy encoder spread below as well as
    above (video range's black at 16 of 255, a JPEG of it: the clipped sky over 5-27,
    the floor's value holding 0.8-9 % of the frame and its least none), or None: the
    most common value of the sample's lowest, when they hold :data:`_CLIP_FRACTION` of
    it at least and an empty gap wider than the spread of their middle half parts them
    from the rest of its lower half (a strong gamma lifts the sky's noise clear of its
    black point: nothing between 28 and 69), and more than :data:`_PEDESTAL_GAP_STEPS`
    of the data's value steps ``quantum``. A sky's own lower tail has no such gap; and
    a floor so found passes :func:`clipped_floor`'s tests, as any, or is none."""
    v = np.sort(sample, axis=None)
    k = math.ceil(_CLIP_FRACTION * v.size)
    gaps = np.diff(v[k - 1:v.size // 2])
    if not gaps.size:
        return None
    last = int(np.argmax(gaps)) + k - 1  # (the last value below the widest gap)
    # (their spread is their middle half's: the encoder spreads a few far, at quality 75
    # to within 10 of the sky's noise)
    if not v[last + 1] - v[last] > max(v[(3 * last) // 4] - v[last // 4],
                                       _PEDESTAL_GAP_STEPS * (quantum or 0.0)):
        return None
    values, counts = np.unique(v[:last + 1], return_counts=True)
    return values[int(np.argmax(counts))]


#: :func:`_pedestal`'s gap spans more than this many of the data's value steps (a sky
#: under half a step of noise puts its least values a step or two below the rest, alone).
_PEDESTAL_GAP_STEPS = 4


def _floor_noise(image: NDArray, top: float, quantum: float | None,
                 bad: NDArray[np.bool_] | None) -> float:
    """The noise of ``image`` above a clipped floor (its values up to ``top``): from
    second differences along sampled rows of three usable pixels above it, which a
    gradient does not widen (NaN for fewer than 100 of them)."""
    step = _subsample_step(image.shape, _CLIP_SAMPLES)
    rows = image[step // 2::step]
    if rows.shape[1] < 3:
        return float("nan")
    # (values near float32's largest overflow in their differences: those are dropped)
    with np.errstate(over="ignore", invalid="ignore"):
        second = rows[:, 2:] - 2.0 * rows[:, 1:-1] + rows[:, :-2]
    above = (rows[:, 2:] > top) & (rows[:, 1:-1] > top) & (rows[:, :-2] > top)
    if bad is not None:
        lost = bad[step // 2::step]
        above &= ~(lost[:, 2:] | lost[:, 1:-1] | lost[:, :-2])
    diffs = second[above]
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size < 100:
        return float("nan")
    return _tied_sigma(diffs, robust_sigma(diffs), quantum) / math.sqrt(6.0)


def clipped_floor_stars(image: NDArray, floor: NDArray[np.bool_], quantum: float | None = None,
                        bad: NDArray[np.bool_] | None = None
                        ) -> tuple[NDArray[np.intp], NDArray[np.float64]] | None:
    """The stars standing in the solid parts of a clipped ``floor`` (:func:`clipped_floor`'s
    mask of ``image``), as ``(flat indices, light above the floor's top)``, or None.

    Where a stretch clipped the sky whole (the dark side of a light dome or a gradient,
    a vignetted corner), its noise stays below the black point and only stars rise
    above it, as in a black constant area (:func:`_held_stars`: at least
    :data:`_HELD_STARS` small resolved blobs :data:`_HELD_DEPTH` px inside, peaking
    :data:`DARK_SIGMAS` noise sigmas up). Masked with the floor, their light stood on the
    fill's sky, which their fainter pixels lay below: a Gaia field under a light dome
    stretched from its 40th percentile at gamma 0.3 kept 50 of its 100 brightest stars
    (83 with them lifted). The solid parts are the :data:`_CLIP_BLOCK` px blocks
    :data:`_SOLID_FRACTION` on the floor, and those a closing of them takes in (a
    block a star lights). ``quantum`` and ``bad`` as for :func:`clipped_floor`.
    """
    top = float(image[floor].max())
    # (no noise below the values' step: a JPEG at quality 50 flattened blocks 2 counts
    # above the floor, 64 px each, and they were lifted as stars: 10 of the 25 brightest
    # detections of a vignetted Gaia field with a boxed caption, 1 before the lifting)
    sigma = max(_floor_noise(image, top, quantum, bad), quantum or 0.0)
    h, w = floor.shape
    bs = min(_CLIP_BLOCK, h, w)
    solid = _block_counts(floor, bs) >= _SOLID_FRACTION * bs * bs
    # (a 3x3 closing; beyond the grid counts as solid, as the frame's edge bounds the sky)
    solid |= ~_dilate(~_dilate(solid, 1), 1)
    area = np.zeros((h, w), dtype=bool)
    area[:solid.shape[0] * bs, :solid.shape[1] * bs] = solid.repeat(bs, 0).repeat(bs, 1)
    # (the spread of a JPEG's floor is no star's light: the band is its top)
    return _held_stars(np.maximum(image, top), area, top, sigma, bad)


#: :func:`clipped_floor_stars`'s solid blocks have this fraction of their pixels on the
#: floor, at least.
_SOLID_FRACTION = 0.9


def _floor_top(image: NDArray, floor: float, sky: float, quantum: float | None,
               bad: NDArray[np.bool_] | None) -> float:
    """The highest value of a clipped ``floor`` as a lossy encoder left it: ``floor``
    itself, or the top of the values it spread the floor over, below a gap.

    A strong gamma leaves nothing between its black point and the sky's noise lifted
    above it (the real frames stretched to gamma 0.3: nothing between 0 and 68). A JPEG
    of it spreads the clipped pixels over the values above the floor, fewer the higher
    (at quality 90 up to 13-18 of 255, at 60 up to 21-60), short of the sky's: the
    histogram of the values ``quantum`` apart from ``floor`` to the ``sky``'s median
    falls to a valley (:data:`_BAND_VALLEY` of its peaks on both sides, smoothed over
    :data:`_BAND_SMOOTH` values) before it rises to the sky. The band ends where it
    first falls to twice the valley's depth. Without a valley (a linear clip: the sky's
    values rise from the floor), or a known step, the floor is its only value.
    """
    if quantum is None or not quantum > 0.0:
        return floor
    n = int(round((sky - floor) / quantum))
    if not 2 * _BAND_SMOOTH <= n <= _BAND_STEPS:
        return floor
    counts = _band_counts(image, floor, sky, quantum, n, bad)
    # (a running mean, its ends extended: numpy, not scipy, which a one-shot solve of an
    # 8-bit frame does not load)
    half = _BAND_SMOOTH // 2
    smooth = np.convolve(np.pad(counts, half, mode="edge"),
                         np.full(_BAND_SMOOTH, 1.0 / _BAND_SMOOTH), mode="valid")
    low = int(np.argmin(smooth))
    deep = smooth[low]
    if not (deep <= _BAND_VALLEY * smooth[:low + 1].max()
            and deep <= _BAND_VALLEY * smooth[low:].max()):
        return floor
    # (a gap of no values at all: the floor alone)
    ends = np.flatnonzero(smooth <= max(2.0 * deep, 0.5))
    return floor + float(ends[0]) * quantum


def _band_counts(image: NDArray, floor: float, sky: float, quantum: float, n: int,
                 bad: NDArray[np.bool_] | None) -> NDArray[np.float64]:
    """:func:`_floor_top`'s histogram: every other pixel of ``image`` both ways (not
    ``bad``) from ``floor`` up to below ``sky``, counted by its steps of ``quantum`` above
    ``floor``, steps 1 to ``n - 1`` (compiled: :func:`.kernels.floor_band_counts`).

    (Every other pixel: the valley holds a few hundredths of a percent. From the floor
    up: a pixel below it that the sample missed, a dead one under the stretch's clip,
    lies in no band, and its negative step broke the count.)
    """
    kernel = compiled("floor_band_counts") if _band_kernel_takes(image, bad) else None
    if kernel is not None:
        # (the values in the frame's type, as numpy takes a Python float against it)
        typed = image.dtype.type
        return kernel(image, _NO_PIXELS if bad is None else bad, bad is not None,
                      typed(floor), typed(sky), typed(quantum), n)
    vals = image[::2, ::2]
    if bad is not None:
        vals = vals[~bad[::2, ::2]]
    steps = np.rint((vals[(vals >= floor) & (vals < sky)] - floor) / quantum)
    return np.bincount(steps.astype(np.intp), minlength=n)[1:n].astype(np.float64)


def _band_kernel_takes(image: NDArray, bad: NDArray[np.bool_] | None) -> bool:
    """Whether :func:`.kernels.floor_band_counts` is compiled for these arrays (the
    extraction's working copy and masks: writeable float32 and bool, C order); others
    take numpy's path rather than a compilation of seconds."""
    return all(a.flags.c_contiguous and a.flags.writeable and a.dtype == t
               for a, t in ((image, np.float32), (_NO_PIXELS if bad is None else bad, bool)))


#: No pixels: :func:`_band_counts`'s mask for its kernel when there is none.
_NO_PIXELS = np.zeros((1, 1), dtype=bool)

#: :func:`_floor_top` reads a histogram of at most this many steps (a 16-bit frame's
#: sky far above its floor has no encoder's spread worth the histogram) ...
_BAND_STEPS = 4096
#: ... smoothed over this many values ...
_BAND_SMOOTH = 5
#: ... whose valley lies below this fraction of its peaks on both sides. The real
#: frames stretched at gamma 0.2-0.3, as JPEGs at quality 95-40: at most 0.095 of the
#: spread's peak and 0.082 of the sky's; at gamma 0.4-0.5, quality 90: 0.077 and 0.088,
#: quality 60: 0.10-0.26 and 0.06-0.25 (half of them with a band: their noise peaks
#: beside the corners 5-12 of the 25 brightest detections, 0 with it).
_BAND_VALLEY = 0.2


def _block_counts(mask: NDArray[np.bool_], bs: int) -> NDArray[np.int32]:
    """The true pixels of ``mask`` in each whole ``bs`` x ``bs`` block (``bs`` < 256: a
    block's rows add up in bytes, then its columns: :func:`_scattered`'s two masks of a
    1024x768 frame took 1.1 ms, 7.3 summed over both axes at once, which widens every
    pixel to 8 bytes)."""
    h, w = mask.shape
    hh, ww = h // bs * bs, w // bs * bs
    rows = mask[:hh].view(np.uint8).reshape(hh // bs, bs, w).sum(axis=1, dtype=np.uint8)
    return rows[:, :ww].reshape(hh // bs, ww // bs, bs).sum(axis=2, dtype=np.int32)


#: A floor is a strong gamma's black point when the lit pixels beside its pixels rise
#: this fraction of the way from it to the sky, at least (the real frames stretched from
#: their 10th or 20th percentile at gamma 0.3 and 0.18: 0.74-0.88, at 0.4 0.67-0.76, at
#: 0.5 0.60-0.71; a sky of 120 counts under 6 of noise vignetted below 0, at gamma 0.25:
#: 0.57-0.58, at 0.5: 0.33-0.34, linear: 0.11-0.13; the noise of a lens circle's black
#: surround in JPEGs at quality 95 and 40: 0.50-0.54 and 0.31-0.39): below it, the few
#: counts the floor hides leave its blocks' noise a plain estimate (:func:`_local_checks`)
#: can measure.
_CLIP_LIFT = 0.4
#: ... the sky being this quantile of the sampled pixels above the floor, not their
#: median: a cloud over half a frame stretched for the eye put the median at the cloud's
#: bright, flattened level (187 counts, where the clear sky beside the floor lay at
#: 110-120), and the lift of a gamma's black point read as a linear clip's (0.35): the
#: floor's noise, its sky's noise clipped, kept 240-270 detections of noise and the
#: clear sky's stars fell out of the brightest 30. (The figures above are against it.)
_CLIP_SKY = 0.25


#: The blocks (px) in which :func:`_scattered` compares a floor's pixels with their
#: neighbours (small, so that a vignetted sky's slope clusters few of a block's clipped
#: pixels on its dark side: in 32 px blocks, the ratio below fell to 0.45-0.68) ...
_CLIP_BLOCK = 8
#: ... those this fraction of which, up to one less it, is on the floor ...
_CLIP_BLOCK_FRACTION = 0.05
#: ... and the median ratio of their floor pixels' lit right neighbours to their lit
#: pixels beyond which the floor clipped independent noise (a real frame stretched to
#: gamma 0.2-0.5, its black point at the 5th-20th percentile: 1.03-1.04; a sky of 6
#: counts of noise vignetted to 0 over 6-30 % of it: 0.95-1.00; black silhouettes in
#: a JPEG: 0.58-0.59; thin cloud's black gaps holding stars, 8 bits and JPEG, with or
#: without hot pixels, trails and noise: 0.32-0.53; a black roof: 0).
_CLIP_MIXING = 0.8


def _scattered(at: NDArray[np.bool_], lit_right: NDArray[np.bool_]) -> bool:
    """Whether the pixels ``at`` a floor lie scattered among lit ones as a noisy sky's
    clipped pixels do, rather than in solid areas with only their edges lit (a black
    silhouette, a sky clipped whole around its stars), which stay: in most blocks
    partly on the floor, a floor pixel's right neighbour is lit (``lit_right``) as often
    as any pixel of the block (:data:`_CLIP_MIXING`)."""
    h, w = at.shape
    bs = min(_CLIP_BLOCK, h, w)
    n_at, n_mixed = (_block_counts(a, bs) for a in (at, lit_right))
    f = n_at / float(bs * bs)
    partly = (f >= _CLIP_BLOCK_FRACTION) & (f <= 1.0 - _CLIP_BLOCK_FRACTION)
    if not partly.any():
        return False
    ratio = n_mixed[partly] / n_at[partly] / (1.0 - f[partly])
    return bool(median(ratio) >= _CLIP_MIXING)


def _constant_area_of(image: NDArray, v: float, runs: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The pixels of :func:`dark_constant_areas`'s area at the value ``v`` (``runs``: the
    pixels in runs of equal values both ways)."""
    dark = image == v
    core = dark & runs
    area = dark & _dilate(core, _CONSTANT_REACH)
    # and the blocks a JPEG encoder straddled its edge with: they ring (a ring of
    # false detections inside an all-sky lens circle's rim)
    return _dilate(area, _JPEG_BLOCK - 1)


#: A constant dark area holding this many stars is sky (see :func:`_held_stars`) ...
_HELD_STARS = 3
#: ... counted at least this far (px) inside it (a lens circle's rim rings into it) ...
_HELD_DEPTH = 16  # (two JPEG blocks)
#: ... each a blob of at most this many pixels above the area's value ...
_HELD_PIXELS = 400
#: ... and, where more than this fraction of the area's pixels about it are lit alone ...
_HELD_CROSSINGS = 0.003
#: ... peaking over this many times the brightest of those (:func:`_crossed`).
_HELD_ABOVE = 1.2


def _held_stars(image: NDArray, area: NDArray[np.bool_], v: float, sigma: float,
                bad: NDArray[np.bool_] | None = None
                ) -> tuple[NDArray[np.intp], NDArray[np.float64]] | None:
    """The stars' pixels in the constant dark ``area`` (value ``v``), as ``(flat indices,
    light above v)``, when it holds :data:`_HELD_STARS` stars or more (a sky stretched to
    its black point, not a lens circle's surround or a blacked-out part), else None.

    A star there is a small blob of pixels above ``v`` lying wholly :data:`_HELD_DEPTH`
    inside the area (a lens circle's rim rings into its surround), peaking
    :data:`~skysolve.extraction.background.DARK_SIGMAS` noise sigmas (the rest of the
    frame's) above it, and resolved: two pixels at least reach half its peak, where an
    impulse's JPEG ringing does not. Thin cloud over half a dark frame stretched to 8
    bits clipped its clear gaps to 0: masked whole as no sky, their stars, the frame's
    brightest, were lost (``bench_hard.py``'s ``cloud+jpeg``); the gaps held 3-25 such
    stars, the lens-circle surrounds of the tests none. The area stays masked (its
    edges, where the sky drops to black, would ring with false detections); its stars
    are lifted onto the fill's sky (:func:`.extract._extract`). ``bad``: pixels with no
    data, filled with the sky's noise before this test (a masked patch there would rise
    from the black as a star).
    """
    h, w = image.shape
    deep = area & ~_dilate(~area, _HELD_DEPTH)
    # the frame's edge bounds the area as its sky does (a star it cuts is not wholly inside)
    d = _HELD_DEPTH
    deep[:d] = deep[-d:] = False
    deep[:, :d] = deep[:, -d:] = False
    lit = deep & (image != v)
    if bad is not None:
        lit &= ~bad
    idx = np.flatnonzero(lit)
    if len(idx) < _HELD_STARS * 2:
        return None
    # (a star's pixels leave ``deep`` only if the star reaches its edge: not wholly inside;
    # one beside a pixel with no data may be cut by it)
    lab, n = pixel_labels(idx, w)
    outside = ~deep if bad is None else ~deep | bad
    edge = np.zeros(n + 1, dtype=bool)
    rows, cols = idx // w, idx % w
    for dr in (-1, 0, 1):  # (the eight neighbours the labels link)
        for dc in (-1, 0, 1):
            r, c = np.clip(rows + dr, 0, h - 1), np.clip(cols + dc, 0, w - 1)
            edge[lab[outside[r, c]]] = True
    size = np.bincount(lab, minlength=n + 1)
    lift = image.ravel()[idx].astype(np.float64) - v
    peak = np.zeros(n + 1)
    np.maximum.at(peak, lab, lift)
    half = np.bincount(lab, weights=lift >= 0.5 * peak[lab], minlength=n + 1)
    star = ~edge & (size <= _HELD_PIXELS) & (peak >= DARK_SIGMAS * sigma) & (half >= 2)
    star[0] = False
    star[1:] &= ~_crossed(rows, cols, lab, size, lift, peak, deep)
    if np.count_nonzero(star) < _HELD_STARS:
        return None
    return idx[star[lab]], lift[star[lab]]


def _crossed(rows: NDArray[np.intp], cols: NDArray[np.intp], lab: NDArray, size: NDArray,
             lift: NDArray, peak: NDArray, deep: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Which of the blobs of the lit pixels at ``rows``, ``cols`` (their labels ``lab``
    from 1, ``size`` their pixel counts and ``peak`` their highest ``lift``, index 0
    unused) lie where the noise crosses the black, and rise no higher than it does
    there: over :data:`_HELD_CROSSINGS` of the ``deep`` area's pixels within two
    :data:`_HELD_DEPTH` px blocks (an 80 px square) about them lit alone, and peaking
    at most :data:`_HELD_ABOVE` times the brightest of those.

    A sky clipped just below the black point (a vignetted corner, a glow's dark side a
    few noise sigmas down) is lit by its noise at single pixels, and at pairs and
    triples that the tests for a star take: the two real frames stretched from their
    10th-20th percentile at gamma 0.2-0.3 had 11-50 such blobs in their clipped corners,
    which a strong gamma lifts as high as faint stars (to 111-183 of 255), 0.56 % or
    more of the pixels about them lit alone; none rose 1.11 times above those. Stars where
    only stars rise have such pixels about them seldom (Gaia fields under sky glow
    stretched so: half of them under 0.1 %).
    """
    bs = _HELD_DEPTH
    h, w = deep.shape
    ny, nx = -(-h // bs), -(-w // bs)
    single = size[lab] == 1
    cell = (rows[single] // bs) * nx + cols[single] // bs
    alone = np.bincount(cell, minlength=ny * nx).reshape(ny, nx)
    brightest = np.zeros(ny * nx)
    np.maximum.at(brightest, cell, lift[single])
    area = np.zeros((ny, nx))  # (the frame's last part blocks: deep holds none of them)
    area[:h // bs, :w // bs] = _block_counts(deep, bs)
    r = np.zeros(len(size), dtype=np.intp)
    c = np.zeros(len(size), dtype=np.intp)
    r[lab], c[lab] = rows // bs, cols // bs  # (a block of each blob's)
    r, c = r[1:], c[1:]
    crossing = _window_sums(alone, r, c, 2) > _HELD_CROSSINGS * _window_sums(area, r, c, 2)
    noise = _window_max(brightest.reshape(ny, nx), 2)[r, c]
    return crossing & (peak[1:] <= _HELD_ABOVE * noise)


def _window_max(grid: NDArray, k: int) -> NDArray[np.float64]:
    """The maxima of the non-negative ``grid`` over the (2k+1)-square window about each
    of its cells (cut by its edges), by :func:`_window`."""
    ny, nx = grid.shape
    pad = np.zeros((ny + 2 * k, nx + 2 * k))
    pad[k:-k, k:-k] = grid
    across = _window(pad, 2 * k + 1, np.maximum)
    return _window(np.ascontiguousarray(across.T), 2 * k + 1, np.maximum).T


def _window_sums(grid: NDArray, r: NDArray[np.intp], c: NDArray[np.intp], k: int
                 ) -> NDArray[np.float64]:
    """The sums of ``grid`` over the (2k+1)-square windows about its cells ``r``, ``c``
    (cut by its edges), from its cumulative sums (:func:`_window`'s doubled spans
    suit idempotent operations only)."""
    ny, nx = grid.shape
    total = np.zeros((ny + 1, nx + 1))
    total[1:, 1:] = np.cumsum(np.cumsum(grid, axis=0), axis=1)
    r0, r1 = np.clip(r - k, 0, ny), np.clip(r + k + 1, 0, ny)
    c0, c1 = np.clip(c - k, 0, nx), np.clip(c + k + 1, 0, nx)
    return total[r1, c1] - total[r0, c1] - total[r1, c0] + total[r0, c0]


def _dilate(mask: NDArray[np.bool_], r: int) -> NDArray[np.bool_]:
    """``mask`` grown by ``r`` pixels along both axes (a square); compiled
    (:func:`.kernels.dilate`, the same pixels; a mask not in C order copied to it) for a
    writeable mask once the kernels are warm."""
    kernel = compiled("dilate")
    if kernel is not None and mask.dtype == np.bool_ and mask.flags.writeable:
        return kernel(np.ascontiguousarray(mask), int(r))
    h, w = mask.shape
    wide = np.zeros((h, w + 2 * r), bool)
    wide[:, r:w + r] = mask
    wide = _window(wide, 2 * r + 1, np.logical_or)
    tall = np.zeros((w, h + 2 * r), bool)
    tall[:, r:h + r] = wide.T
    return _window(tall, 2 * r + 1, np.logical_or).T


class Background:
    """A smooth background model: a grid of block levels, bilinear between block centres.

    Attributes
    ----------
    grid : ndarray, shape ``(ny, nx)``
        Background level at each block centre (a 1x1 grid for a global background).
    block_size : int or None
        Block size in pixels (``None`` for a global background).
    sigma : float
        Global robust per-pixel noise (same units as the image).
    shape : tuple of int
        ``(height, width)`` of the image the model describes.
    noise : Background or None
        The noise per block as a model of its own (same nodes), when the noise
        is not uniform over the frame; ``None`` otherwise (``sigma`` everywhere).
    dark_fraction : float
        Fraction of the sampled pixels more than :data:`DARK_SIGMAS` noise sigmas
        below the model and the typical sky level (0 for a sky with nothing dark in
        front of it).
    flattened : bool
        The image is a JPEG that flattened its sky into constant 8x8 blocks
        (:func:`flattened_blocks`; set by the extractor).
    block_grid : tuple of int or None
        The ``(row, column)`` of a pixel that starts an 8x8 block of a block-compressed
        (JPEG) image (:func:`block_grid`, set by the extractor as ``flattened``), or
        None.
    ringed : ndarray of bool or None
        Of a JPEG image whose dark pixels were counted (``dark_fraction``), the pixels
        of its 8x8 blocks holding a pixel :data:`DARK_SIGMAS` above the model and beside
        no dark block without one, where compression rings below the sky beside a bright
        impulse (set by the extractor); None otherwise.
    """

    def __init__(self, grid: NDArray, block_size: int | None, sigma: float,
                 shape: tuple[int, int], nodes: tuple[NDArray, NDArray] | None = None):
        self.grid = np.asarray(grid, dtype=np.float64)
        self.block_size = block_size
        self.sigma = float(sigma)
        self.shape = shape
        #: pixel row / column (array index) each grid level belongs to
        self.nodes = nodes if nodes is not None else _block_nodes(shape, block_size)
        self._tab = None
        self._axes = None
        self._bounds: dict[tuple[int, int], NDArray[np.float64]] = {}
        self.noise: Background | None = None
        self.dark_fraction = 0.0
        self.flattened = False
        self.block_grid: tuple[int, int] | None = None
        self.ringed: NDArray[np.bool_] | None = None

    def sigma_at(self, rows: NDArray, cols: NDArray) -> NDArray[np.float64] | float:
        """Noise at integer pixels (the global ``sigma`` when it is uniform)."""
        if self.noise is None:
            return self.sigma
        return self.noise.at(rows, cols)

    @property
    def sky_level(self) -> float:
        """The frame's typical sky level: the median of the grid (the foreground test's
        reference, where starlight or a silhouette moves single blocks)."""
        return median(self.grid)  # (np.median's value, without its ~10 us of overhead)

    @property
    def mean(self) -> float:
        """Mean background level over the grid."""
        return float(np.mean(self.grid))

    @staticmethod
    def _weights(idx: NDArray, nodes: NDArray):
        """Lower node index and fraction towards the next node for pixel indices.

        Beyond the outermost nodes (at most half a block) the edge interval is
        extrapolated linearly, so gradients hold up to the image edge.
        """
        idx = np.asarray(idx)
        n_nodes = len(nodes)
        if n_nodes == 1:
            zero = np.zeros(idx.shape, dtype=np.intp)
            return zero, zero, np.zeros(idx.shape)
        i0 = np.minimum(np.maximum(np.searchsorted(nodes, idx, side="right") - 1, 0),
                        n_nodes - 2)  # (np.clip checks its integer bounds: 3x the time)
        t = (idx - nodes[i0]) / (nodes[i0 + 1] - nodes[i0])
        return i0, i0 + 1, t

    def _columns(self, rows: NDArray, cols: NDArray):
        """The grid interpolated to the pixel columns ``cols`` at every row node, its
        row-node differences (both ``(ny, len(cols))``), and the row node index and
        fraction of the pixel rows ``rows``: the model at ``(row, col)`` is
        ``coarse[r0, col] + fr * step[r0, col]``."""
        c0, c1, fc = self._weights(cols, self.nodes[1])
        coarse = self.grid[:, c0] * (1.0 - fc) + self.grid[:, c1] * fc
        r0, _, fr = self._weights(rows, self.nodes[0])
        step = np.zeros_like(coarse)
        step[:-1] = np.diff(coarse, axis=0)  # node i -> i + 1 (r1 is always r0 + 1)
        return coarse, step, r0, fr

    def _tables(self):
        """:meth:`_columns` of every column (flattened) and row, the row node index as a
        flat offset.

        Built once; make :meth:`at` two flat gathers and one multiply-add per point.
        """
        if getattr(self, "_tab", None) is not None:
            return self._tab
        with _TABLES_LOCK:  # (threads evaluating one model must not each build them)
            if getattr(self, "_tab", None) is not None:
                return self._tab
            h, w = self.shape
            coarse, step, r0, fr = self._columns(np.arange(h), np.arange(w))
            self._tab = (coarse.ravel(), step.ravel(), r0 * w, fr)
            return self._tab

    def at(self, rows: NDArray, cols: NDArray) -> NDArray[np.float64]:
        """Background level at integer pixel ``rows``, ``cols`` (array indices, any shape)."""
        ny, nx = self.grid.shape
        if ny == 1 and nx == 1:
            return np.full(np.broadcast(rows, cols).shape, self.grid[0, 0])
        rows = np.asarray(rows)
        if self._tab is None and compiled("model_at") is not None:
            flat = rows * self.shape[1] + cols  # (broadcast)
            return self.at_flat(flat.ravel()).reshape(flat.shape)
        level, step, row_offset, fr = self._tables()
        flat = row_offset[rows] + cols
        return level[flat] + fr[rows] * step[flat]

    def at_grid(self, rows: NDArray, cols: NDArray,
                out: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
        """``at(rows[:, None], cols[None, :])``, the same values, without the full tables
        (which cost a model row per image column: 2 ms on 2048x2048 with 16 px blocks,
        for a model that may only be sampled, then replaced); into ``out`` (float64,
        ``(len(rows), len(cols))``) when given."""
        ny, nx = self.grid.shape
        if ny == 1 and nx == 1 or self._tab is not None:
            vals = self.at(rows[:, None], cols[None, :])
            if out is None:
                return vals
            out[...] = vals
            return out
        return self._on_grid(rows, cols, out)

    def _on_grid(self, rows: NDArray, cols: NDArray,
                 out: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
        """The model on the grid ``rows`` x ``cols`` (pixel positions, whole or not) by
        :meth:`_columns`, into ``out`` when given; compiled (:func:`.kernels.grid_model`:
        the same arithmetic in one call, not a dozen) once the extractor's kernels are
        warm."""
        if out is None:
            out = np.empty((len(rows), len(cols)))
        kernel = compiled("grid_model")
        if kernel is None:
            coarse, step, r0, fr = self._columns(rows, cols)
            return np.add(coarse[r0], fr[:, None] * step[r0], out=out)
        c0, c1, fc = self._weights(cols, self.nodes[1])
        r0, _, fr = self._weights(rows, self.nodes[0])
        return kernel(np.ascontiguousarray(self.grid, dtype=np.float64), c0, c1, fc, r0, fr,
                      out)

    def at_flat(self, flat: NDArray[np.intp]) -> NDArray[np.float64]:
        """Background level at flat pixel indices (``row * width + col``), as :meth:`at`
        (compiled when the extractor's kernels are warm: the same arithmetic)."""
        ny, nx = self.grid.shape
        if ny == 1 and nx == 1:
            return np.full(len(flat), self.grid[0, 0])
        kernel = compiled("model_at")
        if kernel is None:
            return self.at(*np.divmod(flat, self.shape[1]))
        return kernel(flat, self.shape[1], *self.kernel_tables())

    def kernel_tables(self) -> tuple[NDArray, ...]:
        """``(grid, c0, c1, fc, r0, fr)``: the model's grid and per-column and per-row
        interpolation tables, as the compiled kernels that evaluate it take them
        (:func:`.kernels.model_at`)."""
        return (self.grid, *self._axis_weights())

    def _axis_weights(self):
        """``(c0, c1, fc)`` of every column and ``(r0, fr)`` of every row (see
        :meth:`_weights`), for the compiled ``model_at``: the tables' inputs."""
        if self._axes is None:
            h, w = self.shape
            c0, c1, fc = self._weights(np.arange(w), self.nodes[1])
            r0, _, fr = self._weights(np.arange(h), self.nodes[0])
            self._axes = (c0, c1, fc, r0, fr)
        return self._axes

    def tile_lower_bound(self, th: int, tw: int) -> NDArray[np.float64]:
        """A lower bound of the model over every ``th`` x ``tw`` tile of pixels (tile
        ``(i, j)``: rows ``i th`` to ``(i + 1) th - 1``, columns likewise; the last ones
        partial), shape ``(ceil(H / th), ceil(W / tw))``.

        Along each axis the model is linear between consecutive nodes (and beyond the
        outermost, extrapolated), so over a rectangle inside one interpolation cell it
        is smallest at a corner. The tiles' edges and the nodes within them cut every
        tile into such rectangles: the model on that lattice of lines, least per tile,
        bounds the tile from below, exactly up to rounding (a margin of 1e-9 of the
        levels covers it). A sky that is steep on the block scale keeps a bound within
        the rise over one tile, where the block's neighbourhood would be off by the
        rise over two blocks.
        """
        bound = self._bounds.get((th, tw))  # (a matched-filter pass asks again)
        if bound is not None:
            return bound.copy()
        h, w = self.shape
        if self.grid.size == 1:
            return np.full((-(-h // th), -(-w // tw)), float(self.grid[0, 0]))
        ry, start_y, end_y = _lattice(h, th, self.nodes[0])
        cx, start_x, end_x = _lattice(w, tw, self.nodes[1])
        vals = self._on_grid(ry, cx)
        kernel = compiled("tile_bound")
        if kernel is not None:
            bound = kernel(vals, start_y, end_y, start_x, end_x, float(np.ptp(self.grid)))
        else:
            vals = _tile_min(_tile_min(vals, start_y, end_y, 0), start_x, end_x, 1)
            bound = vals - 1e-9 * (np.abs(vals) + float(np.ptp(self.grid)) + 1e-30)
        self._bounds[(th, tw)] = bound
        return bound.copy()

    def full(self, dtype=np.float32) -> NDArray:
        """The model at every pixel, shape ``(height, width)`` (costs a full frame)."""
        # (on the grid of every row and column: flat indices of every pixel cost
        # 11 ms on 1024x768, the grid 1-2)
        h, w = self.shape
        rows, cols = np.arange(h), np.arange(w)
        if np.dtype(dtype) == np.float32 and self.grid.size > 1 and self._tab is None:
            # (the float64 values rounded into float32 as they are stored, as astype
            # rounds them: not the float64 frame and its copy, 1.0 -> 0.3 ms on 1024^2)
            return self._on_grid(rows, cols, np.empty((h, w), np.float32))
        return self.at_grid(rows, cols).astype(dtype)

    def gradient_at(self, rows: NDArray, cols: NDArray) -> tuple[NDArray, NDArray]:
        """Local slope ``(d/dcol, d/drow)`` of the model (per pixel) at pixels."""
        h, w = self.shape
        if self.grid.size == 1:
            z = np.zeros(np.broadcast(rows, cols).shape)
            return z, z
        rows, cols = np.asarray(rows), np.asarray(cols)
        if rows.shape != cols.shape:
            rows, cols = np.broadcast_arrays(rows, cols)
        shape, rows, cols = rows.shape, rows.ravel(), cols.ravel()
        cm = np.maximum(cols - 1, 0)
        cp = np.minimum(cols + 1, w - 1)
        rm = np.maximum(rows - 1, 0)
        rp = np.minimum(rows + 1, h - 1)
        # the four neighbours' levels in one evaluation (the model is per pixel)
        n = rows.size
        level = self.at(np.concatenate((rows, rows, rp, rm)), np.concatenate((cp, cm, cols, cols)))
        gx = (level[:n] - level[n:2 * n]) / np.maximum(cp - cm, 1)
        gy = (level[2 * n:3 * n] - level[3 * n:]) / np.maximum(rp - rm, 1)
        return gx.reshape(shape), gy.reshape(shape)


def _lattice(n: int, tile: int, nodes: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    """The lines cutting ``n`` pixels' tiles of ``tile`` into pieces on which the model is
    linear (the tiles' first pixels, the last pixel and the nodes inside), and for every
    tile the index of its first line and of its far edge (the next tile's first line,
    or the last pixel), so that its lines are ``start:end + 1``."""
    firsts = np.arange(0, n, tile, dtype=np.float64)
    inside = nodes[(nodes > 0) & (nodes < n - 1)]
    lines = np.unique(np.concatenate([firsts, inside, [n - 1.0]]))
    start = np.searchsorted(lines, firsts)
    end = np.searchsorted(lines, np.minimum(firsts + tile, n - 1.0))
    return lines, start, end


def _tile_min(vals: NDArray, start: NDArray, end: NDArray, axis: int) -> NDArray:
    """The least of ``vals`` along ``axis`` over every tile's lines ``start:end + 1``: a
    few each, so one elementwise minimum per line of the widest tile (``reduceat``, or a
    reduction over so short an axis, costs 40-200 us)."""
    out = np.take(vals, start, axis=axis)
    for k in range(1, int((end - start).max()) + 1):
        np.minimum(out, np.take(vals, np.minimum(start + k, end), axis=axis), out=out)
    return out


def _sample_step(block: int) -> int:
    """Pixel step used inside blocks of this size: every other pixel from 16 px up
    (>= 64 samples, 4x cheaper than all of them)."""
    return 2 if block >= 16 else 1


def _block_nodes(shape: tuple[int, int], bs: int | None) -> tuple[NDArray, NDArray]:
    """Row and column (array index) of each block level: the mean position of the
    pixels sampled in the block (with a sampling step of 2 that is half a pixel
    off the block centre - which matters on a steep sky)."""
    out = []
    for length in shape:
        if bs is None or bs >= length:
            out.append(np.array([0.5 * (length - 1)]))
            continue
        full = length // bs
        st = _sample_step(bs)
        middle = st * ((bs - 1) // st) / 2.0  # (once, not twice a block)
        nodes = [i * bs + middle for i in range(full)]
        rest = length - full * bs
        if rest:
            st = _sample_step(rest)
            nodes.append(full * bs + st * ((rest - 1) // st) / 2.0)
        out.append(np.array(nodes))
    return out[0], out[1]


def _tile_medians(region: NDArray, bh: int, bw: int) -> NDArray[np.float64]:
    """Median of every ``bh`` x ``bw`` tile of a region tiled exactly by them.

    Bands of tile rows whose samples fit in a core's cache (a whole 2048x2048 frame's
    do not: 6.0 against 3.3 ms in bands), spread over the extraction's threads on a
    large frame (numpy's partition releases the GIL; 1.9 ms on two).
    """
    ny, nx = region.shape[0] // bh, region.shape[1] // bw
    per_row = nx * len(range(0, bh, _sample_step(bh))) * len(range(0, bw, _sample_step(bw)))
    band = max(1, _BAND_SAMPLES // per_row)

    def rows(lo: int, hi: int) -> NDArray[np.float64]:
        return np.concatenate([_band_medians(region[a * bh:min(a + band, hi) * bh], bh, bw)
                               for a in range(lo, hi, band)])

    chunks = _threads.split(ny, thread_count(), max(1, _THREAD_SAMPLES // per_row))
    return np.concatenate(_threads.run_chunks(rows, chunks))


#: Blocks of at most this many samples take their medians through a sorting network
#: (:func:`.kernels.network_medians`) ...
_NETWORK_SAMPLES = 64
#: ... and float blocks of up to this many too, in rows of at least this many blocks.
_NETWORK_FLOAT_SAMPLES, _NETWORK_ROW_BLOCKS = 1024, 32


def _by_network(n: int, nx: int, dtype: np.dtype) -> bool:
    """Whether blocks of ``n`` samples, ``nx`` to a row, take the sorting network: it
    exchanges across a row of blocks at once, its exchanges grow as ``n log^2 n``.
    Measured (ms, network against gather and partition, or counting for 16-bit counts):
    64 samples, 2.3-2.8 times faster (float32 1024x768 0.26 against 0.60, 2048x2048 1.2
    against 3.3; uint16 0.21 against 0.40, 0.91 against 1.97); 256, float32 even, uint16
    1.5-1.8 times slower; 1,024 in rows of 32 blocks, float32 4.8 against 6.8, in rows
    of 16 a little slower (1.22 against 1.16; uint16 1.0 against 0.76)."""
    return n <= _NETWORK_SAMPLES or (dtype.kind == "f" and n <= _NETWORK_FLOAT_SAMPLES
                                     and nx >= _NETWORK_ROW_BLOCKS)


def network_block_medians(region: NDArray, bh: int, bw: int, sy: int, sx: int
                          ) -> NDArray[np.float64] | None:
    """The medians of the samples every ``sy`` rows and ``sx`` columns of every ``bh`` x
    ``bw`` block of ``region`` (tiled exactly by them), through the compiled sorting
    network (:func:`.kernels.network_medians`): :func:`_kth`'s values, in float64. None
    where the kernel does not take ``region`` (cold kernels, a type or layout it is not
    compiled for). Floats must hold no NaN."""
    if ((region.dtype, region.flags.writeable) not in NETWORK_MEDIAN_TYPES
            or (region.flags.f_contiguous and not region.flags.c_contiguous)):
        return None
    kernel = compiled("network_medians")
    if kernel is None:
        return None
    n = len(range(0, bh, sy)) * len(range(0, bw, sx))
    kind = region.dtype
    top = kind.type(np.inf if kind.kind == "f" else np.iinfo(kind).max)
    return kernel(region, bh, bw, sy, sx, *median_network(n), top)


def _band_medians(region: NDArray, bh: int, bw: int) -> NDArray[np.float64]:
    """:func:`_tile_medians` of one band."""
    ny, nx = region.shape[0] // bh, region.shape[1] // bw
    sy, sx = _sample_step(bh), _sample_step(bw)
    n = len(range(0, bh, sy)) * len(range(0, bw, sx))
    if _by_network(n, nx, region.dtype):
        found = network_block_medians(region, bh, bw, sy, sx)
        if found is not None:  # (no gather, no partition or counting)
            return found
    tiles = gathered_tiles(
        region.reshape(ny, bh, nx, bw)[:, ::sy, :, ::sx].transpose(0, 2, 1, 3))
    kernel = counting_kernel(tiles)
    if kernel is not None:
        return kernel(tiles.reshape(ny * nx, -1)).reshape(ny, nx)
    if tiles.dtype.kind in "iu" and len(np.unique(tiles[0, 0])) <= _TIED_LEVELS:
        lo, hi = int(tiles.min()), int(tiles.max())
        if (hi - lo + 1) * ny * nx <= _COUNTING_BINS:
            return _counted_medians(tiles, lo, hi - lo + 1)
    # (the samples were gathered into a copy unless the tiles were the region itself)
    return _kth(tiles, overwrite=not np.may_share_memory(tiles, region)).astype(np.float64)


def gathered_tiles(tiles: NDArray) -> NDArray:
    """The samples of tiles ``(ny, nx, ...)`` (a strided view) gathered into a contiguous
    ``(ny, nx, n)``; a camera's 8-bit counts widened to 16 bits, exactly, as they are
    gathered (not the whole frame first): numpy's partition selects 16-bit integers with
    SIMD, 8-bit ones without (1.4 against 0.3 ms for a 1024x768 frame's blocks), and the
    counted medians' kernel is compiled for 16-bit ones."""
    ny, nx = tiles.shape[:2]
    if tiles.dtype.kind in "iu" and tiles.dtype.itemsize == 1:
        wide = np.empty(tiles.shape, np.uint16 if tiles.dtype.kind == "u" else np.int16)
        np.copyto(wide, tiles)
        return wide.reshape(ny, nx, -1)
    return np.ascontiguousarray(tiles).reshape(ny, nx, -1)


def counting_kernel(tiles: NDArray):
    """The compiled counted medians (:func:`.kernels.integer_medians`) for gathered tiles
    (:func:`gathered_tiles`) of native 16-bit integers, when the kernels are warm; else
    None."""
    return compiled("integer_medians") if tiles.dtype in _COUNTED_TYPES else None


#: A tile whose samples take at most this many values is a dark integer sky (under a
#: count of noise): numpy's partition slows down ~9x on so many ties (1.1 against
#: 0.12 ms for a 1024x768 frame's blocks), counting does not.
_TIED_LEVELS = 16
#: ... as long as a band's histograms stay this small.
_COUNTING_BINS = 1 << 20
#: The types the compiled counting takes (others count with numpy).
_COUNTED_TYPES = (np.dtype(np.uint16), np.dtype(np.int16))


def _counted_medians(tiles: NDArray, lo: int, levels: int) -> NDArray[np.float64]:
    """:func:`_kth` of integer tiles ``(ny, nx, n)`` with values in ``lo .. lo + levels -
    1``, from one histogram per tile (the same order statistics, the same average for
    an even count)."""
    ny, nx, n = tiles.shape
    m = ny * nx
    bins = tiles.reshape(m, n).astype(np.intp)
    bins += (np.arange(m) * levels - lo)[:, None]
    below = np.bincount(bins.ravel(), minlength=m * levels).reshape(m, levels).cumsum(axis=1)
    k = (n - 1) // 2
    kth = (np.argmax(below > k, axis=1) + lo).astype(np.float64)
    if n % 2 == 0:
        kth = 0.5 * (kth + (np.argmax(below > k + 1, axis=1) + lo))
    return kth.reshape(ny, nx)


def _block_levels(image: NDArray, bs: int) -> NDArray[np.float64]:
    """Median of every ``bs`` x ``bs`` block; partial edge blocks use their own pixels."""
    h, w = image.shape
    fy, fx = h // bs, w // bs
    ry, rx = h - fy * bs, w - fx * bs
    grid = np.empty((fy + (ry > 0), fx + (rx > 0)))
    if fy and fx:
        grid[:fy, :fx] = _tile_medians(image[:fy * bs, :fx * bs], bs, bs)
    if rx and fy:
        grid[:fy, fx] = _tile_medians(image[:fy * bs, fx * bs:], bs, rx)[:, 0]
    if ry and fx:
        grid[fy, :fx] = _tile_medians(image[fy * bs:, :fx * bs], ry, bs)[0]
    if ry and rx:
        grid[fy, fx] = _tile_medians(image[fy * bs:, fx * bs:], ry, rx)[0, 0]
    return grid


def estimate_background(image: NDArray, block_size: int | None,
                        adaptive: bool = True, quantum: float | None = None,
                        counts: NDArray | None = None, mosaic: bool = False) -> Background:
    """Fit the background model and global noise of a finite 2-D image.

    Parameters
    ----------
    image : ndarray, shape ``(H, W)``
        Float image without NaN/inf (callers replace bad pixels first).
    block_size : int or None
        Block size in pixels for a local background; ``None`` (or a block at
        least as large as the image) gives a global, sigma-clipped median.
    adaptive : bool
        Run the structure and noise checks (see the module docstring): smaller
        blocks where the sky has structure, a noise grid where the noise varies.
    quantum : float, optional
        The data's value step (1 for integer images). A MAD below it says
        little (most pixels share a value: an 8-bit or JPEG sky flattened by
        compression); the noise is then the clipped rms of the residual.
    counts : ndarray, optional
        The same pixels as ``image``, as the camera's integers (8 or 16 bits):
        the block medians are taken from them (the same values; a partition of
        16-bit integers takes two thirds of the time of float32's).
    mosaic : bool
        The image is a 2x2 mosaic (a raw colour frame, its phases levelled): the
        noise sample takes every phase (see :func:`_subsample_step`).

    Returns
    -------
    Background
    """
    sample = _subsample(image, _GLOBAL_SAMPLES, mosaic)
    # (the pixels whose spread is the noise when constant areas' ties shrink it: see there)
    noisy = _noisy_samples(image, sample, mosaic)
    return _fitted_background(image, block_size, adaptive, quantum, counts, mosaic, sample,
                              noisy)


def _fitted_background(image: NDArray, block_size: int | None, adaptive: bool,
                       quantum: float | None, counts: NDArray | None, mosaic: bool,
                       sample: NDArray, noisy: NDArray[np.bool_] | None) -> Background:
    """:func:`estimate_background` with its noise ``sample`` and their pixels outside
    constant areas (``noisy``) taken already: they do not depend on the block size, and
    a sky with structure is fitted again with smaller blocks (the constant areas' search
    took 1 ms a fit on a JPEG with flat blocks)."""
    h, w = image.shape
    if block_size is None or (block_size >= h and block_size >= w):
        level, sigma0 = robust_location(sample)
        sigma0 = _tied_sigma(sample - level, sigma0, quantum)
        if noisy is not None:
            lit, s_lit = robust_location(sample[noisy])
            s_lit = _tied_sigma(sample[noisy] - lit, s_lit, quantum)
            if sigma0 < _TIES_SHRINK * s_lit:
                level, sigma0 = lit, s_lit
        sigma0 = _floored_sigma(image, sample, sample - level, sigma0, quantum, mosaic)
        return _with_dark(Background(np.array([[level]]), None, sigma0, (h, w)),
                          sample, sample - level)
    bs = int(block_size)
    bg = Background(_block_levels(image if counts is None else counts, bs), bs, float("nan"),
                    (h, w))
    # noise of the background-subtracted image: gradients no longer inflate it
    step = _subsample_step((h, w), _GLOBAL_SAMPLES, mosaic)
    rows, cols = _sample_grid((h, w), _GLOBAL_SAMPLES, mosaic)
    resid = _sample_residuals(sample, bg, rows, cols)
    sigma = _tied_sigma(resid, robust_sigma(resid, iterations=1), quantum)
    if noisy is not None:
        lit = _tied_sigma(resid[noisy], robust_sigma(resid[noisy], iterations=1), quantum)
        sigma = lit if sigma < _TIES_SHRINK * lit else sigma
    bg.sigma = _floored_sigma(image, sample, resid, sigma, quantum, mosaic)
    replaced = _with_dark(_replace_lifted_blocks(bg), sample, resid)
    if not adaptive or not (np.isfinite(bg.sigma) and bg.sigma > 0) or bs < 2 * step:
        # (blocks this small hold too few samples to check)
        return replaced
    if replaced is not bg:
        bg = replaced
        resid = _sample_residuals(sample, bg, rows, cols)
    noise, structured = _local_checks(resid, rows, cols, bg)
    if structured and bs // 2 >= _MIN_BLOCK:
        return _fitted_background(image, bs // 2, adaptive, quantum, counts, mosaic, sample,
                                  noisy)
    bg.noise = noise
    return _with_dark(bg, sample, resid)


def _sample_residuals(sample: NDArray, bg: Background, rows: NDArray[np.intp],
                     cols: NDArray[np.intp]) -> NDArray[np.float64]:
    """``sample - bg.at_grid(rows, cols)``, the same values, in a scratch array of the
    extraction (:mod:`.scratch`; it must not outlive it): on a small frame the sample is
    the whole frame, and its model and residuals came fresh from the system on every
    extraction (~300 page faults on 320x240)."""
    out = bg.at_grid(rows, cols, scratch.empty((len(rows), len(cols))))
    return np.subtract(sample, out, out=out)


def _noisy_samples(image: NDArray, sample: NDArray, mosaic: bool = False
                   ) -> NDArray[np.bool_] | None:
    """Which pixels of the noise ``sample`` of ``image`` (:func:`_subsample`) lie outside
    constant areas (:func:`_constant_area`); None for all of them: a sample with few ties
    between neighbours (:data:`_TIED_FRACTION`; the test is skipped), without constant
    areas, or whose other pixels are mostly at its least or greatest value too
    (:data:`_CLIPPED_REST`).

    A constant area has no noise to measure: an all-sky camera's surround stretched to
    one value, with the vignetted sky at the rim clipped at the black point beside it,
    which :func:`dark_constant_areas` leaves alone (the sky holds the value too). Left
    in, its pixels tie at the model's level: with a third of the sample there, the MAD
    of an all-sky JPEG's sky came out at 0.5 counts where its scatter is 13, and the
    sky's mottle was detected as blobs of thousands of pixels. The noise of the other
    pixels is taken when the whole sample's is less than :data:`_TIES_SHRINK` of it. A
    frame whose sky clips at black and white both (a disc stretched to 0 or 255 nearly
    everywhere) has no noise to measure elsewhere either, and keeps the whole sample."""
    if np.count_nonzero(sample[:, 1:] == sample[:, :-1]) <= _TIED_FRACTION * sample.size:
        return None
    rows, cols = _sample_grid(image.shape, _GLOBAL_SAMPLES, mosaic)
    const = _constant_area(image, rows, cols)
    if not const.any():
        return None
    rest = sample[~const]
    clipped = np.count_nonzero((rest == sample.min()) | (rest == sample.max()))
    return None if clipped > _CLIPPED_REST * rest.size else ~const


#: The whole sample's noise is kept unless it is less than this fraction of the noise
#: outside the constant areas (:func:`_noisy_samples`; all-sky JPEGs stretched hard,
#: their surround and rim at one value: 0.03-0.1; real frames as JPEGs at quality 65
#: whose stretch clipped a third of them to 0 and flattened their sky into constant
#: blocks, the ``combined`` recipe of ``bench_hard``: 0.7-0.8, and the lower noise found
#: 33 of 40 of them, the other 31).
_TIES_SHRINK = 0.5
#: The share of the pixels outside a frame's constant areas at its least or greatest
#: value beyond which they are no sky either (:func:`_noisy_samples`: all-sky JPEGs
#: stretched hard, 2-15 %; an 8-bit disc clipped to 0 or 255 nearly everywhere, 81-83 %).
_CLIPPED_REST = 0.5


def _with_dark(bg: Background, sample: NDArray, resid: NDArray) -> Background:
    """``bg`` with its :attr:`~Background.dark_fraction`: the sampled pixels ``sample``
    (residuals ``resid``) :data:`DARK_SIGMAS` below both the model and the typical sky
    (in a crowded field starlight lifts whole blocks, and the sky between the stars lies
    below them, not below the sky)."""
    if resid.size and np.isfinite(bg.sigma) and bg.sigma > 0:
        depth = DARK_SIGMAS * bg.sigma
        below = resid < -depth
        if below.any():  # (rare: the sky level only then)
            dark = sample[below] < bg.sky_level - depth
            bg.dark_fraction = float(np.count_nonzero(dark)) / resid.size
    return bg


def _replace_lifted_blocks(bg: Background) -> Background:
    """The model with blocks lifted by a bright star replaced by their neighbourhood's median.

    A block whose median is lifted by a bright star stands out from the 3x3
    median of its neighbourhood by more than noise (3 standard errors of a
    block median) plus the sky's own block-to-block steps there (so ramps,
    edges and ridges are left alone).
    """
    grid, bs = bg.grid, bg.block_size
    if grid.shape[0] < 3 or grid.shape[1] < 3:
        return bg
    smooth = _filter3(grid, "median")
    steps = np.zeros_like(grid)
    dx = np.abs(np.diff(smooth, axis=1))
    dy = np.abs(np.diff(smooth, axis=0))
    steps[:, 1:] = np.maximum(steps[:, 1:], dx)
    steps[:, :-1] = np.maximum(steps[:, :-1], dx)
    steps[1:, :] = np.maximum(steps[1:, :], dy)
    steps[:-1, :] = np.maximum(steps[:-1, :], dy)
    steps = _filter3(steps, "max")
    noise = 3.0 * 1.25 * max(bg.sigma, 1e-30) / np.sqrt(bs * bs / 4)
    outlier = (grid - smooth) > noise + steps
    if outlier.any():
        return Background(np.where(outlier, smooth, grid), bs, bg.sigma, bg.shape)
    return bg


def _tied_sigma(resid: NDArray, sigma: float, quantum: float | None) -> float:
    """The noise of a residual sample whose MAD ``sigma`` says little because many of its
    values are tied: below the data's value step ``quantum`` (a sky under a count of
    noise), the rms clipped at 3 steps. With no known step, a fifth of the sample at
    exactly the model's level takes the rms clipped at 5 MADs when larger; and a MAD of
    exactly zero (most of a dark sky at one value, on a lattice the extractor did not
    recognise: a resized JPEG) takes the typical step from the sample itself -- the median
    departure of the values below the model -- and the noise is that rms clipped at 3
    steps, but at least half a step (as for integer data: a detection needs a few
    steps). Zero stays zero for a sample with (almost) nothing below the model: a
    noise-free frame, whose stars only rise above it."""
    if quantum is None:
        if sigma > 0.0:
            step = _varying_step(resid)
            if step is not None and sigma < _TIED_FLOOR * step:
                # counts under a fraction of a count of noise divided by a flat: most
                # neighbours tie up to the flat's slow variation, which the MAD measured
                # (a 25th of the noise: 300 peaks of noise kept a 1024x768 frame); they
                # are counts, whose noise is measured in their steps
                return max(_clipped_rms(resid, 3.0 * step), _TIED_FLOOR * step)
        if not sigma == 0.0:  # (NaN passes: an empty sample)
            if sigma > 0.0 and np.count_nonzero(resid == 0.0) > _TIED_FRACTION * resid.size:
                # coarse values (steps of a few tenths of the noise: the luminance of an
                # 8-bit colour frame) pile up at the model and shrink the MAD
                return max(sigma, _clipped_rms(resid, 5.0 * sigma))
            return sigma
        # (below the model: a noise-free sky's stars only rise above it)
        below = -resid[resid < 0.0]
        if below.size <= _TIED_BELOW * resid.size:
            return 0.0
        quantum = median(below)
        return max(_clipped_rms(resid, 3.0 * quantum), _TIED_FLOOR * quantum)
    if sigma < quantum:
        return _clipped_rms(resid, 3.0 * quantum)
    if sigma < _DITHER_STEPS * quantum:
        return _dithered_sigma(resid, quantum)
    return sigma


def _varying_step(resid: NDArray) -> float | None:
    """The typical step of a residual sample whose neighbouring values mostly tie, up to a
    small fraction of a step, and otherwise differ by whole steps; None otherwise.

    The differences beyond :data:`_TIE_GAP` times their median are the steps; the sample
    steps when they are :data:`_STEP_SHARE` of the differences or more, their median
    (the step) is at least 1 / :data:`_TIE_SPREAD` times the ties' (a constant area's
    edge beside a noisy sky, its steps the sky's level: 5-6 times), :data:`_WHOLE_STEPS`
    of them lie within :data:`_STEP_SLACK` of a whole
    number of their median (the step), :data:`_UNIT_STEPS` within it of one step
    (counts under a fraction of a count of noise step by one count), and the values
    step down from the model about as often as up (:data:`_STEPS_DOWN`). Counts
    divided by a flat field, or scaled by a gain that varies over the frame, lie on a
    lattice whose step drifts with the flat: no single step (:func:`_count_step`,
    ``extract._lattice_step``) describes them, but neighbours still share their count.
    Continuous noise has 0.7 % of its differences beyond the gap, and a crowded field's
    stars (a fifth of the differences), or the stars of counts on a lattice under
    several of its steps of noise (a real frame's, as floats), are no single step of a
    broad spread of differences."""
    d = np.abs(np.diff(resid.ravel().astype(np.float64)))
    tie = median(d) if d.size else 0.0  # (np.median's values, by the compiled selection)
    steps = d[d > _TIE_GAP * tie]
    if steps.size < max(_MIN_STEP_PAIRS, _STEP_SHARE * d.size):
        return None
    step = median(steps)
    if tie > _TIE_SPREAD * step:
        return None
    k = steps / step
    whole = np.count_nonzero(np.abs(k - np.round(k)) <= _STEP_SLACK)
    ones = np.count_nonzero(np.abs(k - 1.0) <= _STEP_SLACK)
    if whole < _WHOLE_STEPS * steps.size or ones < _UNIT_STEPS * steps.size:
        return None
    # noise steps down as often as up; drawn graphics (a compass's letters, flat at one
    # value) only rise, by their one step, above a sky of continuous noise
    below = np.count_nonzero(resid < -0.5 * step)
    above = np.count_nonzero(resid > 0.5 * step)
    return step if below >= _STEPS_DOWN * above else None


#: Differences beyond this many times their median are steps (:func:`_varying_step`) ...
_TIE_GAP = 5.0
#: ... which need to number at least this many, and this fraction of the differences
#: (counts flat-divided under 0.3 counts of noise: 33-45 %; a black surround's rim: 2 %) ...
_MIN_STEP_PAIRS = 100
_STEP_SHARE = 0.05
#: ... and whose median is at least 1 / this times the median difference (the same:
#: 0.001-0.06; a black surround's rim 0.17-0.19) ...
_TIE_SPREAD = 0.1
#: ... and this fraction of which lie within this fraction of a step of whole steps ...
_WHOLE_STEPS = 0.75
_STEP_SLACK = 0.15
#: ... and this fraction within it of one step; values half a step or more below the
#: model number at least this fraction of those as far above it (stars only rise).
_UNIT_STEPS = 0.5
_STEPS_DOWN = 0.25


def _dithered_sigma(resid: NDArray, quantum: float) -> float:
    """The noise of residuals of data in steps of ``quantum`` under a few steps of noise:
    the clipped MAD of the residuals each moved by its own fraction of a step (an evenly
    spread, fixed sequence over -1/2 .. 1/2 step), less the variance that quantisation
    and that spread add (q^2/12 each).

    The MAD of values on a lattice is itself a whole (or half) number of steps: a sky
    under 0.8-2.2 counts of Gaussian noise read 1.48 counts for all of them, and one
    under 3-4 counts 2.97 or 4.45. Spread evenly across their steps, the values are
    continuous again and the MAD follows the noise (within 3 % from one count up;
    -10 % at 0.8 counts with the sky on a whole count).
    """
    s = robust_sigma(resid.ravel() + _even_spread(resid.size, quantum))
    return math.sqrt(max(s * s - quantum * quantum / 6.0, 0.0))


def _even_spread(n: int, quantum: float) -> NDArray[np.float64]:
    """``n`` offsets spread evenly over -1/2 .. 1/2 ``quantum`` (a fixed sequence)."""
    return _golden_offsets(n) * quantum


def _golden_offsets(n: int) -> NDArray[np.float64]:
    """:func:`_even_spread`'s first ``n`` offsets over -1/2 .. 1/2, read-only: a prefix of
    one sequence kept for the process (each term depends on its index alone), grown as
    needed (its modulo took 0.4 ms for a frame's 31,570 residuals, and a frame spreads
    samples of a dozen sizes)."""
    global _GOLDEN_OFFSETS
    held = _GOLDEN_OFFSETS
    if held.size < n:
        held = np.arange(max(n, 2 * held.size), dtype=np.float64) * _GOLDEN % 1.0 - 0.5
        held.flags.writeable = False
        _GOLDEN_OFFSETS = held
    return held[:n]


_GOLDEN_OFFSETS = np.zeros(0)


#: Below this many steps of MAD noise, :func:`_tied_sigma` spreads quantised residuals
#: over their steps (:func:`_dithered_sigma`): there the MAD's rounding to a half step
#: errs by 10 % or more (at 5 steps up to 10 %; the benchmark frames, whose noise is 7.6
#: steps or more, keep their MAD).
_DITHER_STEPS = 5.0
#: The golden ratio's fraction: an evenly spread sequence (k x it, modulo 1).
_GOLDEN = 0.6180339887498949


def _floored_sigma(image: NDArray, sample: NDArray, resid: NDArray, sigma: float,
                   quantum: float | None, mosaic: bool = False) -> float:
    """The noise of a sky clipped from below (``sigma``, its MAD's estimate, or more): a
    frame whose sky was subtracted and its negative values set to zero (a calibrated
    float frame, a camera's dark-subtracted counts), or whose bias was over-subtracted
    or its offset set too low, holds :data:`_FLOOR_FRACTION` or more of its ``sample``
    (residuals ``resid``) at exactly its least value, scattered over the sky as
    independent noise is.

    The clipped pixels pile up at (or above) the sky's median: a float sky at the floor
    measured a MAD of a tenth of its noise (0.28 for 3.0), and one clipped over most of
    it no MAD at all (taken for noise-free); counts with a noise of 10 clipped at their
    sky, 1.0. Each kept ~2,000 peaks of noise with the 60 stars of a 640x480 frame. The
    pixels above the floor are a Gaussian's upper part: the noise is the spread of the
    quartiles of those beside a pixel on the floor (not a star's) over the normal
    quantiles they lie at. Quantised data (value step
    ``quantum``) need that spread to be :data:`_FLOOR_STEPS` steps or more (a sky under
    a few counts of noise -- an 8-bit sky stretched to its black point -- has coarse
    quartiles, and its steps are measured by :func:`_tied_sigma`); a noise-free
    frame's flat sky (its pixels off the floor lie together around the stars, not
    beside floor pixels as independent noise's do) and a sample with fewer than
    :data:`_FLOOR_MIN_SAMPLES` off the floor, or beside it, keep ``sigma``.
    """
    if sample.size == 0:
        return sigma
    floor = sample.min()
    at = sample == floor
    n_at = int(np.count_nonzero(at))
    p = n_at / sample.size
    if p < _FLOOR_FRACTION or sample.size - n_at < _FLOOR_MIN_SAMPLES:
        return sigma
    # independent noise: a pixel beside a sampled one is on the floor as often as any
    rows, cols = _sample_grid(image.shape, _GLOBAL_SAMPLES, mosaic)
    inside = cols + 1 < image.shape[1]
    right = image[rows[:, None], (cols[inside] + 1)[None, :]] == floor
    here = at[:, inside]
    both = np.count_nonzero(here & right)
    off = here.size - both  # pairs not both on the floor
    mixed = np.count_nonzero(here | right) - both
    if off == 0 or mixed < _FLOOR_MIXING * (2.0 * p / (1.0 + p)) * off:
        return sigma
    # the noise's pixels off the floor, whatever their value, have a neighbour on it as
    # often as any pixel; a star's rarely: those beside the floor are the sky's (on a
    # sky clipped over 97 % of it, stars made a third of the pixels off the floor)
    beside = resid[:, inside][~here & right]
    if beside.size < _FLOOR_MIN_SAMPLES:
        return sigma
    q1, q3 = np.quantile(beside, (0.25, 0.75))
    normal = NormalDist()
    spread = normal.inv_cdf(p + 0.75 * (1.0 - p)) - normal.inv_cdf(p + 0.25 * (1.0 - p))
    if quantum is not None and q3 - q1 < _FLOOR_STEPS * quantum:
        # coarse quartiles: those of the values spread evenly over their steps, as
        # :func:`_dithered_sigma` does (counts of 3 sigma clipped at a sky of 0-0.5
        # took the clipped MAD, 1.3-1.9, and kept 10-23 peaks of noise a 1024x768 frame)
        q1, q3 = np.quantile(beside + _even_spread(beside.size, quantum), (0.25, 0.75))
        floored = math.sqrt(max((float(q3 - q1) / spread) ** 2 - quantum * quantum / 6.0,
                                0.0))
        return max(sigma, floored) if floored >= _FLOOR_STEPS_DITHERED * quantum else sigma
    return max(sigma, float(q3 - q1) / spread)


#: The fraction of a sample at its least value from which the sky is taken as
#: clipped (:func:`_floored_sigma`; below a quarter, the floor lies a MAD or more below
#: the median, and the MAD holds: 20 % leaves a margin) ...
_FLOOR_FRACTION = 0.2
#: ... its pixels off the floor (and of these, beside a pixel on it) it needs at least ...
_FLOOR_MIN_SAMPLES = 100
#: ... and the fraction, at least, of the neighbouring pairs not both on the floor that
#: independent noise would put one on the floor and one off (2p / (1 + p) of them: a
#: noise-free frame's star wings, only at their edges).
_FLOOR_MIXING = 0.5
#: The spread of the quartiles above the floor, in the data's steps, that quantised data
#: need (their quartiles are whole steps: off by up to a step each).
_FLOOR_STEPS = 4.0
#: ... or, their values spread over their steps, a noise of this many steps (a sky
#: under less is measured by :func:`_tied_sigma`).
_FLOOR_STEPS_DITHERED = 1.0


#: The least noise of a sample whose step :func:`_tied_sigma` had to infer, in steps.
_TIED_FLOOR = 0.5
#: ... unless no more than this fraction of the sample lies below the model (noise-free).
_TIED_BELOW = 1e-3
#: The fraction of a residual sample at exactly the model's level beyond which its MAD is
#: not trusted (Gaussian noise in steps of q puts ~q / (2.5 sigma) there: 20 % at a
#: sigma of two steps; continuous values, none).
_TIED_FRACTION = 0.2


def _clipped_rms(resid: NDArray, clip: float) -> float:
    """Rms of a sample about zero, clipped twice: at ``clip``, then at 3 x the first rms."""
    v = resid.ravel()
    rms = float(np.sqrt(np.mean(np.clip(v, -clip, clip) ** 2)))
    c = max(3.0 * rms, 1e-30)
    return float(np.sqrt(np.mean(np.clip(v, -c, c) ** 2) / _CLIPPED_VAR_3))


def _half_cell_sums(resid: NDArray, rows: NDArray, cols: NDArray, half: int,
                    shape: tuple[int, int], clip: float | NDArray
                    ) -> tuple[NDArray, NDArray, NDArray]:
    """Count, sum and sum of squares of the residual sample (taken at pixel ``rows`` x
    ``cols``, clipped at +-``clip``: a number, or a value per block) in cells of
    ``half`` px, as ``(2 ny, 2 nx)`` grids over the ``(ny, nx)`` blocks (cells
    without samples: 0)."""
    ny, nx = shape
    kernel = compiled("cell_sums")
    if kernel is not None:
        n, s1, s2 = kernel(resid, rows, cols, half, np.broadcast_to(clip, shape).astype(float))
        return n, s1, s2
    if np.ndim(clip):
        clip = clip[(rows // (2 * half))[:, None], (cols // (2 * half))[None, :]]
    v = np.clip(resid, -clip, clip).ravel()
    cell = ((rows // half)[:, None] * (2 * nx) + (cols // half)[None, :]).ravel()
    size = 4 * ny * nx
    n = np.bincount(cell, minlength=size).astype(np.float64)
    s1 = np.bincount(cell, weights=v, minlength=size)
    s2 = np.bincount(cell, weights=v * v, minlength=size)
    return n.reshape(2 * ny, 2 * nx), s1.reshape(2 * ny, 2 * nx), s2.reshape(2 * ny, 2 * nx)


#: The noise ratio that makes a noise grid when the noise is measured over groups of
#: blocks: the sparse sample clips crowded stars less well, and a crowded field's cells
#: differ by up to ~1.7x (a 1024^2 frame of 2,500 stars) where a real change of noise (an
#: all-sky fisheye's dark border against its sky) is 5-10x.
_NOISE_RATIO_GROUPED = 3.0
#: Residual samples a group of blocks measuring the noise should hold when single blocks
#: hold fewer than 8 (small blocks on a large frame: the sample is spaced by ~8-13 px).
_NOISE_CELL_SAMPLES = 64


def _noise_group(bs: int, rows: NDArray, cols: NDArray) -> int:
    """How many blocks along each axis the noise is measured over: 1 while a block holds
    8 samples or more, else enough for :data:`_NOISE_CELL_SAMPLES` (without it, blocks
    that small all fell back to the global sigma, and a frame whose sky is noisier than a
    large dark part -- an all-sky fisheye's border -- was thresholded at the border's
    noise: 1,350 false detections on a 1600x1200 frame)."""
    dr = float(rows[1] - rows[0]) if len(rows) > 1 else 1.0
    dc = float(cols[1] - cols[0]) if len(cols) > 1 else 1.0
    per_block = (bs / dr) * (bs / dc)
    if per_block >= 8:
        return 1
    return max(1, math.ceil(math.sqrt(_NOISE_CELL_SAMPLES / max(per_block, 1e-9))))


def _group(a: NDArray, g: int) -> NDArray:
    """Sums over ``g`` x ``g`` groups of a block grid (the last groups partial)."""
    if g == 1:
        return a
    ny, nx = a.shape
    a = np.pad(a, ((0, -ny % g), (0, -nx % g)))
    return a.reshape(a.shape[0] // g, g, a.shape[1] // g, g).sum(axis=(1, 3))


def _block_sums(cells: NDArray, ny: int, nx: int) -> NDArray:
    """The sums of a ``(2 ny, 2 nx)`` grid of half-block cells over each block's 2x2 cells:
    each row's pair, then the two rows' sums (the order its compiled twin adds them in;
    numpy's own sum over two axes at once follows the array's shape: another order for
    a grid one block wide)."""
    q = cells.reshape(ny, 2, nx, 2)
    return (q[:, 0, :, 0] + q[:, 0, :, 1]) + (q[:, 1, :, 0] + q[:, 1, :, 1])


def _local_checks(resid: NDArray, rows: NDArray, cols: NDArray, bg: Background
                  ) -> tuple[Background | None, bool]:
    """The noise grid (None when uniform) and whether the sky has structure the
    model misses, from the residual sample at ``rows`` x ``cols``.

    The sample is summed in cells of half a block, clipped at 3 global sigmas
    and then at 3 of each block's own (so that stars barely move a cell, and a
    noisier block is not clipped to look quiet): blocks add up their four
    cells for the noise; the cells' means show structure. Blocks that each hold
    their own sample take the compiled twin (:func:`.kernels.local_checks`).
    """
    bs = bg.block_size
    ny, nx = bg.grid.shape
    half = max(bs // 2, 1)
    g = _noise_group(bs, rows, cols)
    kernel = compiled("local_checks") if g == 1 else None
    if kernel is not None:
        grid, noisy, structured = kernel(resid, rows, cols, half, bg.sigma,
                                         _NOISE_FLOOR * bg.sigma, _CLIPPED_VAR_3, _NOISE_RATIO,
                                         _MEDIAN_NETWORK, ny, nx)
        return (Background(grid, bs, bg.sigma, bg.shape, bg.nodes) if noisy else None,
                bool(structured))
    clip: float | NDArray = 3.0 * bg.sigma
    for _ in range(2):
        n, s1, s2 = _half_cell_sums(resid, rows, cols, half, (ny, nx), clip)
        nb, b1, b2 = (_group(_block_sums(a, ny, nx), g) for a in (n, s1, s2))
        m1 = b1 / np.maximum(nb, 1)
        m2 = b2 / np.maximum(nb, 1)
        rms = np.sqrt(np.maximum(m2 - m1 * m1, 0.0) / _CLIPPED_VAR_3)
        # thin edge blocks: the global sigma; and never below half of it (blocks a
        # JPEG encoder flattened, or that a few samples make look quiet)
        grid = np.maximum(np.where(nb >= 8, rms, bg.sigma), _NOISE_FLOOR * bg.sigma)
        if g > 1:
            grid = np.repeat(np.repeat(grid, g, axis=0), g, axis=1)[:ny, :nx]
        clip = 3.0 * grid
    lo, hi = percentiles(grid, (0.1, 0.9))
    noise = None
    if hi > (_NOISE_RATIO if g == 1 else _NOISE_RATIO_GROUPED) * lo:
        if ny >= 3 and nx >= 3:
            grid = _filter3(grid, "median")
        noise = Background(grid, bs, bg.sigma, bg.shape, bg.nodes)
    # structure: cells whose mean residual is not zero within their noise
    local = np.repeat(np.repeat(grid if noise is not None else np.full((ny, nx), bg.sigma),
                                2, axis=0), 2, axis=1)
    mean = s1 / np.maximum(n, 1)
    limit = np.maximum(1.0, 6.0 / np.sqrt(np.maximum(n, 1))) * local
    structured = bool(np.any((np.abs(mean) > limit) & (n > 0)))  # (clipped at 3 sigmas)
    return noise, structured


#: The blocks a JPEG encoder transforms and quantises independently (px).
_JPEG_BLOCK = 8
#: A frame is block-compressed when the pixel steps across one phase of the 8-px grid
#: are this many times those at the other phases (:func:`_block_phase`; the real and
#: simulated frames as JPEGs of a sky under a few counts of noise: 2.0-2.3 at quality
#: 40, 4.0-4.5 at 65, 6-16 at 78; uncompressed, in 8 bits, or a JPEG whose noise its
#: quantisation kept, 1.002-1.035). A crowded sky's stars step at every phase: the
#: all-sky frames of ``bench_allsky`` stretched hard and saved at quality 40 read
#: 1.17-1.30, and those below 1.25, taken for uncompressed, kept their compass letters
#: among their brightest stars (the tests for large letters are a JPEG's).
_BLOCKING_RATIO = 1.1
#: The fraction of the block boundaries the sky steps across, at least, in a
#: block-compressed frame (:func:`_block_phase`): a flattened sky's neighbouring blocks
#: differ (at 13 % of the boundaries of the real frame at quality 78, 53-56 % at 65), a
#: constant sky's do not (8-bit renders without noise: 0-0.4 %, at their stars' edges,
#: where so few steps made one phase's mean exceed the others' by chance in 11 of 20).
_STEPPED_BOUNDARIES = 0.02
#: Pixel steps sampled per axis to look for the block grid (2,000 a phase: its mean
#: step to ~2 %).
_PHASE_SAMPLES = 16_384
#: Pixels of the blocks sampled for their flatness.
_BLOCKING_SAMPLES = 65_536
#: The fraction of constant blocks that makes a JPEG's sky flattened (quality 65-78 of
#: a sky under a few counts of noise: 50-98 %; quality 40-52, 1-18 %).
_FLAT_FRACTION = 0.25


def _block_phase(image: NDArray, axis: int, clip: float) -> int | None:
    """The offset of the 8-px block grid along ``axis`` (from whole image rows or
    columns every few): the boundary between pixels ``phase - 1`` and ``phase`` (mod 8)
    when the steps across it exceed the others' by :data:`_BLOCKING_RATIO` and are
    not zero at :data:`_STEPPED_BOUNDARIES` of it, else None.

    Steps are clipped at ``clip``, so that stars and edges, which rise at every phase,
    do not swamp the sky's; a flattened sky steps at the boundaries only.
    """
    a = image if axis == 1 else image.T
    n = a.shape[1] - 1
    if a.shape[0] == 0 or n < 4 * _JPEG_BLOCK:
        return None
    every = max(1, int(a.shape[0] * n / _PHASE_SAMPLES))
    steps = np.abs(np.diff(a[::every].astype(np.float32), axis=1))
    np.minimum(steps, clip, out=steps)
    cut = (n // _JPEG_BLOCK) * _JPEG_BLOCK
    # (summed in float64: the clipped steps of a frame scaled near float32's range
    # overflowed float32's sum)
    per_phase = steps[:, :cut].reshape(steps.shape[0], -1, _JPEG_BLOCK).mean(
        axis=(0, 1), dtype=np.float64)
    top = int(np.argmax(per_phase))
    others = np.concatenate((per_phase[:top], per_phase[top + 1:]))
    if not per_phase[top] > _BLOCKING_RATIO * median(others):
        return None
    boundary = steps[:, top:cut:_JPEG_BLOCK]
    if np.count_nonzero(boundary) < _STEPPED_BOUNDARIES * boundary.size:
        return None
    return (top + 1) % _JPEG_BLOCK  # the step from pixel top to top + 1


def block_grid(image: NDArray, sigma: float) -> tuple[int, int] | None:
    """The 8-px block grid of a block-compressed (JPEG) ``image`` (pixel scatter
    ``sigma``): the ``(row, column)`` of a pixel that starts a block (each in 0-7), from
    :func:`_block_phase` along both axes (its steps clipped at 3 ``sigma``, and at least
    a count); None when either axis shows no grid."""
    clip = max(3.0 * sigma, 1.0)
    pc = _block_phase(image, 1, clip)
    pr = None if pc is None else _block_phase(image, 0, clip)
    return None if pr is None else (pr, pc)


def flattened_blocks(image: NDArray, sigma: float,
                     grid: tuple[int, int] | None = None) -> bool:
    """Whether ``image`` (pixel scatter ``sigma``) is a JPEG that flattened its sky: it
    shows an 8-px block grid (:func:`block_grid`; ``grid``: that grid when the caller
    found it already) and :data:`_FLAT_FRACTION` of its blocks on that grid are constant.

    JPEG zeroes the high-frequency coefficients of quiet 8x8 blocks: a sky under a few
    counts of noise becomes blocks of one value each, whose pixels are not independent.
    """
    h, w = image.shape
    if grid is None:
        grid = block_grid(image, sigma)
        if grid is None:
            return False
    pr, pc = grid
    ny, nx = (h - pr) // _JPEG_BLOCK, (w - pc) // _JPEG_BLOCK
    if ny == 0 or nx == 0:
        return False
    every = max(1, int(ny * nx * _JPEG_BLOCK ** 2 / _BLOCKING_SAMPLES))
    rows = (pr + _JPEG_BLOCK * np.arange(0, ny, every)[:, None]
            + np.arange(_JPEG_BLOCK)[None, :]).ravel()
    blocks = image[rows, pc:pc + nx * _JPEG_BLOCK].reshape(-1, _JPEG_BLOCK, nx, _JPEG_BLOCK)
    flat = np.all(blocks == blocks[:, :1, :, :1], axis=(1, 3))
    return bool(np.count_nonzero(flat) >= _FLAT_FRACTION * flat.size)
