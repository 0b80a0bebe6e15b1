"""The quick extraction: :func:`extract_centroids_fast`, tetra3rs's "fast" signature.

tetra3rs 0.14 has a second extraction function with its own argument order and
defaults, a coarse background grid and no sub-pixel fit ("adequate for a star
tracker", about 0.1 px). skysolve gives it the same signature and a lean pipeline
of its own, for frames that need none of the full extractor's repairs:

1. **Sky.** The frame is cut into blocks of about ``bg_grid`` px, of equal sizes to a
   pixel (``None`` or 0: one block). A block's level is the median of a ``k x k``
   lattice of its pixels spread evenly over it (:data:`_LATTICE`, more on frames
   of few blocks, :data:`_FRAME_SAMPLES`), so that a few stars in a block move it
   little. Between the block centres the sky is bilinear in the levels, and
   constant beyond the outermost centres.
2. **Noise.** Each block's sigma from its lattice samples' deviations from the sky
   there: the distance from their median down to their lower quartile, over
   ``0.6745`` (Gaussian noise: the standard deviation). The lower half is the sky's
   own noise, which faint stars among the samples leave alone (on a crowded frame
   the median absolute deviation came out 20 % high). On quantised data whose
   deviation is within a couple of steps, where the quartiles are coarse, the rms of
   the samples within :data:`_CLIP` such deviations is taken instead, and never less
   than half a step (as the full extractor floors it). A camera's step is the
   greatest common divisor of the differences among the lower three quarters of a
   few hundred lattice samples (1, or ``2^s`` for counts shifted up by ``s`` bits).
   The blocks' sigmas are then the medians of each 3 x 3 blocks' (64 samples alone
   scatter by a tenth), and bilinear between the centres as the sky is: photon
   noise grows with the sky, and an all-sky lens's dark surround has only the
   read noise. The frame's sigma (``background_sigma``) is their median.
3. **Candidates.** The pixels more than ``sigma_threshold`` sigmas above the sky:
   one pass over the frame in the camera's own values (a compiled kernel,
   :func:`.kernels.sky_candidates`, cut into row bands for ``threads``).
4. **Blobs.** Their 8-connected components (the full extractor's labeller), and
   per blob the pixel count, the flux above the sky, the peak and the
   intensity-weighted centroid and second moments (the full extractor's sums).
5. **Tests.** ``min_pixels``, ``max_pixels``, ``border_margin`` and
   ``max_sharpness`` as in the full extractor (sharpness: the peak against the
   mean of its 8 neighbours, ``(peak - mean) / peak``: a hot pixel's neighbours
   hold only sky); ``max_elongation`` against ``sqrt(l_max / l_min)`` of the blob's
   second moments (each with a pixel's own 1/12 px^2; no PSF divided out). A blob
   with a pixel at or above ``saturation_level`` is flagged saturated and kept.
6. **Drawn graphics.** Burned-in text, compass letters, logos and a reticle's
   dashes are dropped by the full extractor's tests (:func:`.overlay.overlay_blobs`
   and :func:`.overlay.drawn_blobs`, the letters also by their strokes, as on a
   JPEG), with the blobs that reach the frame's brightest value as its saturated
   ones (a caption's colour is often the full scale).
7. **Image circle.** When three corner blocks lie below the centre's sky and hold
   little of its noise (:data:`_DARK_CORNER`, :data:`_QUIET_CORNER`), an all-sky
   lens's image circle is looked for as the full extractor looks for it
   (:func:`.skycircle.find_sky_circle`), and the detections beyond its rim band are
   dropped.

Positions are intensity centroids over the pixels above the threshold: a few
hundredths of a pixel on well-sampled stars, against the fits' thousandths.
Frames the lean pipeline cannot judge go to the full extractor with its fits and
matched filter switched off (``fit_positions=False``, ``matched_filter_sigma=None``,
``deblend='off'``): masked images or images with a noise map, NaN or infinite
pixels, ``saturation_level='auto'``, and noise-free (rendered) frames. The full
extractor's repairs -- JPEG block grids, row banding, colour mosaics, dark constant
areas, trails -- are what the quick path leaves out;
:func:`extract_centroids` has them.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _threads
from ..centroids import ExtractionResult
from .background import _filter3, counting_kernel, gathered_tiles
from .blobs import _blob_sums, neighbour_totals, sharpness
from .extract import _ONE_THREAD_PIXELS, _check_image, _quantum, _rejected, extract
from .filters import _elongation, _moments, basic_reasons, code
from .kernels import backend, compiled, thread_count
from .linking import pixel_labels
from .options import ExtractionOptions
from .overlay import drawn_blobs, overlay_blobs
from .skycircle import find_sky_circle, within_rim

__all__ = ["extract_centroids_fast"]

#: Lattice samples per block side (at most the block's width): 64 samples a block ...
_LATTICE = 8
#: ... or more, so that the frame has at least this many.
_FRAME_SAMPLES = 4096
#: How far below the median a Gaussian's lower quartile lies, in standard deviations.
_LOWER_QUARTILE = 0.6745
#: A deviation within this many of the data's steps is measured by the clipped rms.
_COARSE_STEPS = 2.0
#: ... which keeps the samples within this many median-based sigmas (at least 3 steps).
_CLIP = 5.0
#: Drawn letters are also looked for by their strokes, as on a JPEG
#: (:func:`.overlay.drawn_blobs`): the quick path does not look for a block grid, and
#: most frames with letters drawn on them (all-sky cameras') are JPEGs.
_JPEG_LETTERS = True
#: Three corner blocks this many noise sigmas below the centre's sky ...
_DARK_CORNER = 3.0
#: ... with at most this fraction of its noise make the quick path look for an all-sky
#: lens's image circle (the vignetted corners of the real frames here keep 0.24-1.1 of
#: it, at most two of them below 0.35; a dark surround 0.05-0.3).
_QUIET_CORNER = 0.35
#: The least noise a block is held to, of the frame's median block noise.
_LEAST_SIGMA = 0.01
#: Lattice samples whose differences' divisor is a camera's value step.
_STEP_SAMPLES = 512
#: Fewest rows per band of the candidate pass worth handing to another thread.
_BAND_ROWS = 256
#: The types the candidate pass reads as they are; others are read as float64.
_READ_AS_IS = (np.uint8, np.uint16, np.float32, np.float64)


def _pixels(arr: NDArray) -> NDArray:
    """The frame as the candidate pass reads it: a camera's 8- and 16-bit counts as they
    are (read-only too), float32 and float64 writeable, other types as float64 (one
    compiled pass per type and layout: each costs a fresh install a second of
    compilation)."""
    if arr.dtype in _READ_AS_IS and (arr.flags.writeable or arr.dtype.itemsize <= 2):
        return arr
    return arr.copy() if arr.dtype in _READ_AS_IS else arr.astype(np.float64)


def _edges(n: int, block: int) -> NDArray[np.intp]:
    """The edges of ``n`` pixels cut into blocks of about ``block`` px, of equal sizes to a
    pixel (a thin last block would be judged on a few pixels)."""
    nb = max(1, round(n / block))
    return np.arange(nb + 1) * n // nb


def _lattice(edges: NDArray[np.intp], k: int) -> NDArray[np.intp]:
    """The lattice rows (or columns) of the blocks between ``edges``: ``k`` per block,
    spread evenly over it."""
    start, size = edges[:-1, None], np.diff(edges)[:, None]
    return (start + ((np.arange(k) + 0.5) * size / k).astype(np.intp)).ravel()


def _block_medians(samples: NDArray, k: int) -> NDArray[np.float64]:
    """The median of each ``k x k`` block of the lattice ``samples``: ``(ny, nx)``
    (compiled twin: :func:`.kernels.lattice_levels`)."""
    ny, nx = samples.shape[0] // k, samples.shape[1] // k
    blocks = samples.astype(np.float64).reshape(ny, k, nx, k).transpose(0, 2, 1, 3)
    return np.median(blocks.reshape(ny, nx, k * k), axis=2)


@functools.lru_cache(maxsize=8)
def _layout(h: int, w: int, block: int) -> tuple:
    """An ``h x w`` frame cut into blocks of about ``block`` px: ``(k, lattice rows,
    lattice columns, row weights, column weights)`` (see :func:`_lattice`,
    :func:`_weights`). Kept for the next frames of that size: a camera's stream is one
    size (the arrays are the caller's to read, not to change)."""
    edges_r, edges_c = _edges(h, block), _edges(w, block)
    # (a frame of few blocks samples each more densely: a block's noise from 64 samples
    # alone may be a quarter off)
    nb = (len(edges_r) - 1) * (len(edges_c) - 1)
    k = min(max(_LATTICE, math.ceil(math.sqrt(_FRAME_SAMPLES / nb))), block)
    return (k, _lattice(edges_r, k), _lattice(edges_c, k), _weights(h, edges_r),
            _weights(w, edges_c))


def _levels(img: NDArray, rows: NDArray[np.intp], cols: NDArray[np.intp],
            k: int) -> tuple[NDArray[np.float64], NDArray]:
    """The levels ``(ny, nx)`` of the blocks of the lattice ``rows x cols`` (medians of
    each block's ``k x k``) and the lattice's samples."""
    # (whole rows first, then their columns: a tenth of the time of a 2-D gather)
    samples = img.take(rows, axis=0).take(cols, axis=1)
    ny, nx = samples.shape[0] // k, samples.shape[1] // k
    if samples.dtype.kind in "iu" and samples.dtype.itemsize <= 2:
        # a camera's counts: the blocks' medians from a histogram each, as the full
        # extractor takes its blocks' (the same values, 45 against 77 us for the float64
        # samples' medians of a 1024x768 frame's 192 blocks)
        blocks = gathered_tiles(samples.reshape(ny, k, nx, k).transpose(0, 2, 1, 3))
        counted = counting_kernel(blocks)
        if counted is not None:
            return counted(blocks.reshape(ny * nx, k * k)).reshape(ny, nx), samples
    levels = compiled("lattice_levels")
    return (_block_medians(samples, k) if levels is None else
            levels(samples.astype(np.float64), k)), samples


def _surface(grid: NDArray[np.float64], weights_r: tuple, weights_c: tuple,
             rows: NDArray[np.intp] | slice, cols: NDArray[np.intp] | slice
             ) -> NDArray[np.float64]:
    """The bilinear surface of the block values ``grid`` (the sky's levels, or the limits)
    on the pixels ``rows x cols``: interpolated along the rows, then the columns."""
    ri0, ri1, rt0, rt1 = (a[rows] for a in weights_r)
    cj0, cj1, cu0, cu1 = (a[cols] for a in weights_c)
    level = grid[ri0] * rt0[:, None] + grid[ri1] * rt1[:, None]
    return level[:, cj0] * cu0 + level[:, cj1] * cu1


def _step(samples: NDArray) -> float:
    """The value step of a camera's integers, from the lattice: the greatest common
    divisor of the differences among the lower three quarters of a few hundred samples
    (the sky's: stars and hot pixels lie above it), 1 when they are all equal."""
    some = np.sort(samples.ravel()[:: max(1, samples.size // _STEP_SAMPLES)])
    core = some[:max(2, 3 * len(some) // 4)]
    d = core - core[0]  # (ascending: no negative differences, unsigned or not)
    if float(d[-1]) >= 2.0**52:
        return 1.0  # (a wide type's values as float64, past their integers)
    return float(np.gcd.reduce(d.astype(np.int64))) or 1.0


def _sigmas(resid: NDArray[np.float64], k: int, quantum: float | None) -> NDArray[np.float64]:
    """Each block's noise sigma from its lattice samples' deviations ``resid`` (``(ny k,
    nx k)``, see the module notes), then the median of each 3 x 3 blocks' sigmas."""
    ny, nx = resid.shape[0] // k, resid.shape[1] // k
    m = k * k
    blocks = resid.reshape(ny, k, nx, k).transpose(0, 2, 1, 3).reshape(ny, nx, m)
    part = np.partition(blocks, (m // 4, m // 2), axis=2)
    mid = part[:, :, m // 2]
    sigma = (mid - part[:, :, m // 4]) / _LOWER_QUARTILE
    if quantum is not None:
        coarse = sigma < _COARSE_STEPS * quantum
        if coarse.any():
            dev = np.abs(blocks - mid[:, :, None])
            near = dev <= np.maximum(_CLIP * sigma, 3.0 * quantum)[:, :, None]
            rms = np.sqrt((near * dev * dev).sum(axis=2) / np.maximum(near.sum(axis=2), 1))
            sigma = np.where(coarse, rms, sigma)
        sigma = np.maximum(sigma, 0.5 * quantum)
    return _filter3(sigma, "median")


def _weights(n: int, edges: NDArray[np.intp]) -> tuple[NDArray[np.intp], NDArray[np.intp],
                                                       NDArray[np.float64],
                                                       NDArray[np.float64]]:
    """Per pixel row (or column) of ``n``: the two block levels the sky is interpolated
    between and their weights (bilinear between the centres of the blocks between
    ``edges``, constant beyond the outermost)."""
    centre = (edges[:-1] + edges[1:] - 1) / 2.0
    nb = len(centre)
    p = np.arange(n, dtype=np.float64)
    i0 = np.clip(np.searchsorted(centre, p, side="right") - 1, 0, nb - 1)
    i1 = np.minimum(i0 + 1, nb - 1)
    span = centre[i1] - centre[i0]
    t = np.clip((p - centre[i0]) / np.where(span > 0, span, 1.0), 0.0, 1.0)
    t[span == 0] = 0.0
    return i0, i1, 1.0 - t, t


def _candidates(img, grid, limits, ri0, ri1, rt0, rt1, cj0, cj1, cu0, cu1, r0, r1):
    """The pixels of rows ``r0:r1`` (finite) more above the sky than the limit there,
    both bilinear in the blocks' ``grid`` and ``limits``: ``(flat indices, value less the
    sky)`` (compiled twin: :func:`.kernels.sky_candidates`)."""
    weights = ((ri0, ri1, rt0, rt1), (cj0, cj1, cu0, cu1), slice(r0, r1), slice(None))
    d = img[r0:r1].astype(np.float64) - _surface(grid, *weights)
    idx = np.flatnonzero(d > _surface(limits, *weights))
    return idx + r0 * img.shape[1], d.ravel()[idx]


def _sky_at(grid, weights_r, weights_c, rows, cols) -> NDArray[np.float64]:
    """The bilinear surface of the block values ``grid`` (the sky's levels, or the
    limits) at pixels ``(rows, cols)``, as :func:`_candidates` has it."""
    ri0, ri1, rt0, rt1 = (a[rows] for a in weights_r)
    cj0, cj1, cu0, cu1 = (a[cols] for a in weights_c)
    left = grid[ri0, cj0] * rt0 + grid[ri1, cj0] * rt1
    right = grid[ri0, cj1] * rt0 + grid[ri1, cj1] * rt1
    return left * cu0 + right * cu1


class _Labels:
    """The blobs' label image (``shape``), as windows of it: the few windows the drawn
    graphics' tests look into are filled from the candidate pixels of their rows (a
    whole frame's labels would cost a crowded 2048 x 2048 frame more than its pass)."""

    def __init__(self, idx: NDArray[np.intp], lab: NDArray, shape: tuple[int, int]) -> None:
        self.shape = shape
        self._idx, self._lab = idx, lab

    def __getitem__(self, window: tuple[slice, slice]) -> NDArray:
        rows, cols = window
        w = self.shape[1]
        r0, r1, _ = rows.indices(self.shape[0])
        c0, c1, _ = cols.indices(w)
        lo, hi = np.searchsorted(self._idx, [r0 * w, r1 * w])
        r, c = np.divmod(self._idx[lo:hi], w)
        inside = (c >= c0) & (c < c1)
        out = np.zeros((max(r1 - r0, 0), max(c1 - c0, 0)), dtype=self._lab.dtype)
        out[r[inside] - r0, c[inside] - c0] = self._lab[lo:hi][inside]
        return out


def _quick(arr: NDArray, options: ExtractionOptions) -> ExtractionResult | None:
    """The lean pipeline of the module notes on checked pixels ``arr``; None for a frame
    it cannot judge (NaN or infinite pixels, no noise)."""
    h, w = arr.shape
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        return None  # (then neither the levels nor the candidates hold a NaN)
    img = _pixels(arr)
    k, rows, cols, weights_r, weights_c = _layout(h, w,
                                                   options.local_bg_block_size or max(h, w))
    grid, samples = _levels(img, rows, cols, k)
    # (the deviations from the sky itself: from a block's level, a steep sky's slope
    # across the block would count as noise)
    sigmas = _sigmas(samples - _surface(grid, weights_r, weights_c, rows, cols), k,
                     _step(samples) if arr.dtype.kind in "iu" else _quantum(arr))
    sigma = float(np.median(sigmas))
    if not (math.isfinite(sigma) and sigma > 0):
        return None
    # (a constant block, a black surround of floats, is held to a hundredth of the
    # frame's noise: above its sky by any rounding is no star)
    limits = options.sigma_threshold * np.maximum(sigmas, _LEAST_SIGMA * sigma)
    kernel = compiled("sky_candidates")
    parts = _threads.run_chunks(
        lambda r0, r1: (kernel or _candidates)(img, grid, limits, *weights_r, *weights_c, r0,
                                               r1),
        _threads.split(h, thread_count(), _BAND_ROWS))
    idx, val = _threads.joined(parts)
    lab, nblobs = pixel_labels(idx, w)
    n = nblobs + 1
    sums = compiled("blob_sums")
    at_r, at_c = np.divmod(idx, w)  # (the candidate pixels' rows and columns)
    if sums is not None:
        npix, flux, peak, pr, pc, sw, mx, my, cxx, cyy, cxy = sums(lab, at_r, at_c, val, n)
    else:
        npix, flux, peak, pr, pc, sw, mx, my, cxx, cyy, cxy = _blob_sums(lab, idx, val, n, w)
    sky = _sky_at(grid, weights_r, weights_c, pr, pc)
    limit = _sky_at(limits, weights_r, weights_c, pr, pc)  # (at each blob's peak)
    sat_level = options.saturation_level
    saturated = (np.zeros(n, bool) if sat_level is None else
                 np.bincount(lab, weights=img.ravel()[idx] >= float(sat_level), minlength=n) > 0)
    meas = {"npix": npix, "flux": flux, "peak": peak, "sumw": sw, "cx": pc + mx,
            "cy": pr + my, "cxx": cxx, "cyy": cyy, "cxy": cxy, "pr": pr, "pc": pc,
            "bg_peak": sky,
            "sigma": limit / options.sigma_threshold, "saturated": saturated,
            "sharpness": sharpness(peak, *_neighbours(img, pr, pc, sky))}
    if options.border_margin > 0:
        for key, fn, start in (("rmin", np.minimum, h), ("rmax", np.maximum, -1),
                               ("cmin", np.minimum, w), ("cmax", np.maximum, -1)):
            meas[key] = np.full(n, start, dtype=np.intp)
            fn.at(meas[key], lab, at_r if key[0] == "r" else at_c)
    reason = basic_reasons(meas, h, w, min_pixels=options.min_pixels,
                           max_pixels=options.max_pixels, max_sharpness=options.max_sharpness,
                           border_margin=options.border_margin)
    if options.max_elongation is not None:
        long = _elongation(*_moments({"cxx": cxx, "cyy": cyy, "cxy": cxy})) \
            > options.max_elongation
        reason[(reason == 0) & long] = code("elongated")
    kept = np.flatnonzero(reason == 0)
    # (a caption's colour is often the frame's full scale, where the full extractor finds
    # its glyphs saturated: blobs that reach the frame's brightest value count as such)
    top = peak + sky
    meas["saturated"] = saturated | (top >= top.max()) if n > 1 else saturated
    text = overlay_blobs(meas, kept, limit, (h, w))
    meas["saturated"] = saturated
    reason[kept[text | drawn_blobs(meas, kept, img, _Labels(idx, lab, (h, w)), limit,
                                   _JPEG_LETTERS)]] = code("overlay")
    ids = np.flatnonzero(reason == 0)
    # (an all-sky frame's detections beyond its image circle's rim band go before the
    # brightest max_centroids are kept, as in the full extractor)
    circle = find_sky_circle(arr) if _dark_corners(grid, sigmas) else None
    ids = ids[np.argsort(-flux[ids], kind="stable")]
    ids = ids if circle is not None else ids[:options.max_centroids]
    cov = np.empty((len(ids), 2, 2))
    cov[:, 0, 0], cov[:, 1, 1] = cxx[ids], cyy[ids]
    cov[:, 0, 1] = cov[:, 1, 0] = cxy[ids]
    sat = saturated[ids]
    found = ExtractionResult._from_arrays(
        meas["cx"][ids] + 0.5 - w / 2.0, meas["cy"][ids] + 0.5 - h / 2.0, flux[ids], cov,
        image_width=w, image_height=h, background_mean=float(np.mean(grid)),
        background_sigma=sigma, threshold=options.sigma_threshold * sigma,
        num_blobs_raw=nblobs, saturated=sat,
        npix=npix[ids], peak=peak[ids], fitted=np.zeros(len(ids), bool),
        flags=np.where(sat, "saturated", "star"), rejected=_rejected(meas, reason, h, w))
    return found if circle is None else within_rim(found, circle, options.max_centroids)


def _neighbours(img: NDArray, pr: NDArray[np.intp], pc: NDArray[np.intp],
                sky: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """:func:`.blobs.neighbour_totals` of the peaks ``(pr, pc)`` above the sky there
    (compiled: :func:`.kernels.neighbour_sums`, as the full extractor takes them)."""
    kernel = compiled("neighbour_sums")
    if kernel is None:
        return neighbour_totals(img, None, pr, pc, sky)
    return kernel(img, _NO_BAD, False, pr, pc, sky)


#: No bad pixels (:func:`.kernels.neighbour_sums` reads none when told so).
_NO_BAD = np.zeros((1, 1), bool)


def _dark_corners(grid: NDArray[np.float64], sigmas: NDArray[np.float64]) -> bool:
    """Whether three of the frame's four corner blocks lie below its centre's sky (by
    :data:`_DARK_CORNER` of the centre's noise sigmas) and hold a fraction of its noise
    (:data:`_QUIET_CORNER`): an all-sky lens's dark surround, with only the read noise,
    where the vignetted corners of a lens that fills the frame keep most of it."""
    ny, nx = grid.shape
    at = ([0, 0, -1, -1], [0, -1, 0, -1])
    mid = (ny // 2, nx // 2)
    dark = ((grid[at] < grid[mid] - _DARK_CORNER * sigmas[mid])
            & (sigmas[at] <= _QUIET_CORNER * sigmas[mid]))
    return bool(ny > 2 and nx > 2 and np.count_nonzero(dark) >= 3)


def extract_centroids_fast(image: ArrayLike, sigma_threshold: float = 5.0, bg_grid: int = 64,
                           min_pixels: int = 2, max_centroids: int | None = None,
                           max_sharpness: float | None = 0.9,
                           saturation_level: float | str | None = None, max_pixels: int = 10000,
                           max_elongation: float | None = None, border_margin: int = 0, *,
                           threads: int | None = None) -> ExtractionResult:
    """Detect stars quickly: one pass over a bilinear sky, intensity-weighted centroids.

    The signature (argument order and defaults) is tetra3rs's
    ``extract_centroids_fast``; note that ``bg_grid`` comes third and
    ``max_pixels`` after ``saturation_level``, and that ``min_pixels`` (2) and
    ``max_elongation`` (off) default differently from :func:`extract_centroids`.
    The pipeline (sky, noise, tests) is in :mod:`skysolve.extraction.fast`'s
    notes: none of :func:`extract_centroids`'s repairs of JPEG blocks or banding,
    no fits and no matched filter (drawn graphics and an all-sky lens's image
    circle are dealt with as it does).

    Parameters
    ----------
    image : array_like, shape (H, W)
        As for :func:`extract_centroids`. Masked images, images with a noise map or
        NaN/infinite pixels go through the full extractor without its fits.
    sigma_threshold : float
        Detection threshold in background noise sigmas (> 0).
    bg_grid : int
        Block size (px, >= 4) of the background grid; None or 0: one global level.
    min_pixels : int
        Smallest blob size in pixels above threshold (>= 1).
    max_centroids : int, optional
        Keep only the brightest N stars.
    max_sharpness : float or None
        Reject blobs whose ``(peak - mean(8 neighbours)) / peak`` exceeds this
        (hot pixels); None: off.
    saturation_level : float, 'auto' or None
        Pixel value at or above which a blob counts as saturated (see
        :class:`ExtractionOptions`; 'auto' goes through the full extractor);
        None: no saturation handling.
    max_pixels : int
        Largest blob size in pixels (>= ``min_pixels``): satellite trails and
        glow are not handed to the solver.
    max_elongation : float or None
        Reject blobs whose second moments' axis ratio exceeds this (None: off;
        3 to 5 suits ``min_pixels >= 5``).
    border_margin : int
        Drop blobs within this many pixels of the image edge.
    threads : int, optional
        As for :func:`extract_centroids`: threads for one frame (never changing the result).

    Returns
    -------
    ExtractionResult
        Centroids brightest first (pixel coordinates from the image centre, as
        everywhere); ``fitted`` is False for every star.

    Raises
    ------
    InvalidTypeError, InvalidArgumentError
        As for :func:`extract_centroids` (the messages name these arguments).
    """
    options = ExtractionOptions(
        sigma_threshold=sigma_threshold, min_pixels=min_pixels, max_pixels=max_pixels,
        max_centroids=max_centroids,
        local_bg_block_size=ExtractionOptions.check_value("local_bg_block_size", bg_grid,
                                                          "bg_grid"),
        max_elongation=max_elongation, matched_filter_sigma=None, max_sharpness=max_sharpness,
        saturation_level=saturation_level, deblend="off", border_margin=border_margin,
        threads=threads, reject_cosmic_rays=False, fit_positions=False)
    arr, mask, noise = _check_image(image)
    if mask is None and noise is None and options.saturation_level != "auto":
        if threads is None and arr.size < _ONE_THREAD_PIXELS:
            threads = 1  # (as the full extractor: a hand-over costs more than it saves)
        with backend(options.backend, threads):
            found = _quick(arr, options)
        if found is not None:
            return found
    return extract(image, options)
