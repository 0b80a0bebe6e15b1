"""Star centroid extraction from images.

:func:`extract_centroids` finds stars in a 2-D image and measures their sub-pixel
positions, brightness and shape:

1. **Background and noise.** A global sigma-clipped level, or (default) robust
   per-block levels (``local_bg_block_size`` pixels square; block medians, blocks
   lifted by a bright star replaced by their neighbourhood median) interpolated
   bilinearly between block centres. The noise is one robust (clipped MAD)
   standard deviation of the background-subtracted image.
2. **Detection.** Pixels more than ``sigma_threshold`` x noise above the
   background (optionally after a Gaussian matched filter that is used only for
   the detection mask) form 8-connected blobs.
3. **Filtering.** Blob size (``min_pixels``, ``max_pixels``), elongation,
   peak sharpness (hot pixels), width (cosmic-ray tracks), image border,
   optional blended-pair rejection; saturated blobs are kept (flagged in
   :attr:`ExtractionResult.saturated`) together with their bleed trails, which
   therefore never come back as separate stars.
4. **Measurement.** Brightness is the summed flux above background over the blob
   and ``cov`` the intensity-weighted second moments of the blob pixels (px^2;
   they underestimate the PSF's variance, since only pixels above threshold
   count). Positions come from a least-squares fit of a pixel-integrated
   Gaussian to a window around the peak (unbiased to < 0.01 px also for
   undersampled PSFs, sigma ~ 0.5 px, and at the Cramer-Rao noise limit);
   saturated, very large or unfittable blobs fall back to the intensity-weighted
   centroid (see :attr:`ExtractionResult.fitted`).

Other modules take star lists through :func:`centroids_to_array`, which accepts a
list of :class:`Centroid`, an :class:`ExtractionResult` or an (N, 2)/(N, 3) array.

Everything is vectorised over blobs (no Python loop over stars).

Coordinates are **centred pixels**: the centre of array pixel ``(row, col)`` is at
``x = col + 0.5 - W/2``, ``y = row + 0.5 - H/2`` (+x right, +y down).
"""


from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from .._options import with_options
from ..centroids import ExtractionResult
from ..errors import InvalidArgumentError, InvalidTypeError
from ..imagedata import as_image_data
from .background import Background, estimate_background, robust_sigma
from .blobs import _blended, _fit_positions, _measure_blobs, _narrow_blobs, _select
from .options import ExtractionOptions

__all__ = ["extract", "extract_centroids", "ExtractionOptions"]

#: Standard deviation of rounding to integers (counts).
_QUANTISATION_SIGMA = 1.0 / math.sqrt(12.0)

#: Noise assumed for noise-free frames, relative to the frame's signal scale.
_NOISE_FREE_SIGMA = 1e-6


# --------------------------------------------------------------------------------------
# input handling


def _check_image(image: Any) -> tuple[NDArray, NDArray | None, NDArray | None]:
    """Validate ``image``; return ``(pixels, mask, noise)`` (no copy when possible).

    ``image`` may be any container :func:`skysolve.imagedata.as_image_data` unpacks
    (an array, ``MaskedArray``, ``NDData``/``CCDData``, HDU, ``Quantity``); the mask
    (True: ignore) and the noise map (per-pixel sigma) are None when absent.
    """
    try:
        unpacked = as_image_data(image)
    except InvalidTypeError as exc:
        raise InvalidTypeError(f"image must be a 2-D numeric array: {exc}") from None
    arr = unpacked.data
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise InvalidTypeError(
            f"image must be a 2-D array of integers or floats, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise InvalidArgumentError(
            f"image must be 2-D (height, width), got {arr.ndim}-D shape {arr.shape}"
            + ("; convert colour images to one channel first" if arr.ndim == 3 else ""))
    if arr.size == 0:
        raise InvalidArgumentError(f"image must not be empty, got shape {arr.shape}")
    return arr, unpacked.mask, unpacked.noise


def _as_float32(arr: NDArray) -> NDArray[np.float32]:
    """The working float32 copy (a view when already float32 and contiguous)."""
    if arr.dtype == np.float32:
        return np.ascontiguousarray(arr)
    if arr.dtype.itemsize <= 2 or arr.dtype == np.float16:
        return arr.astype(np.float32)  # exact
    # wide types: float32 holds 24 bits; remove a large common offset first
    if arr.dtype.kind == "f":
        sample = np.abs(arr[::7, ::7])
        sample = sample[np.isfinite(sample)]
        big = float(sample.max()) if sample.size else 0.0
    else:
        big = float(max(abs(int(arr.min())), abs(int(arr.max()))))
    if np.isfinite(big) and big > 2.0**23:
        finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
        offset = float(np.round(np.median(finite[:: max(1, finite.size // 100_000)])))
        return (arr.astype(np.float64) - offset).astype(np.float32)
    return arr.astype(np.float32)


# --------------------------------------------------------------------------------------
# detection helpers


def _gaussian_kernel(sigma: float) -> NDArray[np.float32]:
    half = max(1, int(math.ceil(3.0 * sigma)))
    t = np.arange(-half, half + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def _smooth(img: NDArray[np.float32], kernel: NDArray[np.float32]) -> NDArray[np.float32]:
    """Separable convolution with edge replication.

    ``ndimage.correlate1d`` is fast along rows; along columns, shifted-slice
    accumulation into preallocated buffers beats it several times on big frames.
    """
    half = len(kernel) // 2
    h = img.shape[0]
    tmp = ndimage.correlate1d(img, kernel, axis=1, mode="nearest")
    pad = np.pad(tmp, ((half, half), (0, 0)), mode="edge")
    out = pad[half:half + h] * kernel[half]
    buf = np.empty_like(out)
    for i in range(half):  # symmetric kernel: one multiply per pair of taps
        np.add(pad[i:i + h], pad[2 * half - i:2 * half - i + h], out=buf)
        buf *= kernel[i]
        out += buf
    return out


def _candidate_pixels(det: NDArray[np.float32], bg: Background, thr: float
                      ) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Flat indices of pixels with ``det > background + thr``, and the background there.

    A block-constant lower bound of the background pre-selects candidates in one
    pass over the frame; the exact (bilinear) background is evaluated only there.
    """
    h, w = det.shape
    lb, bs = bg.block_lower_bound()
    ny, nx = lb.shape
    lim = (lb + thr).astype(np.float32)
    if ny == 1 and nx == 1:
        cand = np.flatnonzero(det > lim[0, 0])
        return cand, np.full(len(cand), bg.grid[0, 0])  # a global model is exact already
    if ny * bs == h and nx * bs == w:
        mask = (det.reshape(ny, bs, nx, bs) > lim[:, None, :, None]).reshape(h, w)
    else:
        full = np.repeat(np.repeat(lim, bs, axis=0)[:h], bs, axis=1)[:, :w]
        mask = det > full
    cand = np.flatnonzero(mask)
    rows, cols = np.divmod(cand, w)
    level = bg.at(rows, cols)
    keep = det.ravel()[cand] > level + thr
    return cand[keep], level[keep]


# --------------------------------------------------------------------------------------
# the extractor


def _empty_result(h: int, w: int, bg_mean: float, sigma: float, thr: float,
                  nraw: int = 0) -> ExtractionResult:
    z = np.zeros(0)
    return ExtractionResult._from_arrays(
        z, z, z, np.zeros((0, 2, 2)), image_width=w, image_height=h,
        background_mean=bg_mean, background_sigma=sigma, threshold=thr, num_blobs_raw=nraw,
        saturated=np.zeros(0, bool), npix=np.zeros(0, np.int64), peak=z,
        fitted=np.zeros(0, bool))


def _auto_saturation(work: NDArray[np.float32], background: float, sigma: float
                     ) -> float | None:
    """The saturation level of a frame with a flat (up to read noise) top, else None.

    Saturated pixels pile up within a few noise sigmas of the frame maximum, while an
    unsaturated star has a single pixel there. So: at least 3 pixels within
    ``max(5 sigma, 1)`` of a maximum lying more than 50 sigma above the background.
    """
    top = float(np.max(work))
    if not np.isfinite(top) or top - background < 50.0 * sigma:
        return None
    level = top - max(5.0 * sigma, 1.0 if top >= 1000.0 else 0.0)
    if np.count_nonzero(work >= level) >= 3:
        return level
    return None


def _finite_work(arr: NDArray, mask: NDArray | None = None
                 ) -> tuple[NDArray[np.float32] | None, NDArray | None]:
    """The float32 working copy and the mask of unusable pixels (non-finite or masked).

    Unusable pixels are filled with flat sky: the median of the usable ones plus
    Gaussian noise (fixed seed) of their pixel-to-pixel scatter, so that the
    background and noise estimates see the usable sky's noise there. (A constant
    fill would pile up at one value and collapse the robust noise estimate of a
    frame with a large masked or NaN part.) Returns ``(None, None)`` when no pixel
    is usable.
    """
    work = _as_float32(arr)
    bad = None if mask is None else mask.copy()
    if work.dtype.kind == "f" and arr.dtype.kind == "f":
        finite = np.isfinite(work)
        if not finite.all():
            bad = ~finite if bad is None else bad | ~finite
    if bad is None:
        return work, None
    n_bad = int(np.count_nonzero(bad))
    if n_bad == bad.size:
        return None, None
    step = max(1, int(math.sqrt((bad.size - n_bad) / 200_000)))
    sample = work[::step, ::step][~bad[::step, ::step]]
    fill = float(np.median(sample)) if sample.size else float(work[~bad][0])
    # neighbouring usable pixels along rows: their difference is free of gradients
    pair = ~bad[::step, :-1] & ~bad[::step, 1:]
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf at unusable pixels
        diffs = (work[::step, 1:] - work[::step, :-1])[pair]
    scatter = robust_sigma(diffs[:: max(1, diffs.size // 200_000)]) / math.sqrt(2.0) \
        if diffs.size else 0.0
    work = work.copy()
    noise = np.random.default_rng(0).standard_normal(n_bad).astype(np.float32)
    work[bad] = fill + (scatter if math.isfinite(scatter) else 0.0) * noise
    return work, bad


def _bad_noise(noise: NDArray, bad: NDArray | None) -> NDArray[np.bool_]:
    """``bad`` with the pixels whose noise is not a positive number added."""
    unusable = ~(noise > 0) | ~np.isfinite(noise)
    return unusable if bad is None else bad | unusable


def _noise_cut(det: NDArray[np.float32], idx: NDArray[np.intp], idx_bg: NDArray[np.float64],
               noise: NDArray, k: float) -> NDArray[np.bool_]:
    """Which candidate pixels rise more than ``k`` times their own noise above the
    background (a noise map, e.g. an NDData uncertainty)."""
    return det.ravel()[idx] - idx_bg > k * noise.ravel()[idx]


def _noise(work: NDArray[np.float32], arr: NDArray, block: int | None) -> Background:
    """The background, with the noise floored for quantised and noise-free frames."""
    bg = estimate_background(work, block)
    if arr.dtype.kind in "iu" and np.isfinite(bg.sigma) and bg.sigma < _QUANTISATION_SIGMA:
        # integer data whose noise is below one count (MAD of 0): the rounding
        # noise of 1/sqrt(12) count is the floor
        bg.sigma = _QUANTISATION_SIGMA
    if np.isfinite(bg.sigma) and bg.sigma <= 0:
        # noise-free data (a rendered frame): no noise to scale to, so detect
        # anything above float32 rounding of the frame's scale
        scale = max(abs(bg.mean), float(np.max(work)) - bg.mean)
        bg.sigma = _NOISE_FREE_SIGMA * scale
    return bg


def _blobs(work: NDArray[np.float32], bad: NDArray | None, bg: Background,
           opts: ExtractionOptions, noise: NDArray | None = None):
    """Threshold, candidate pixels and their 8-connected labels.

    Returns ``(threshold, labels, number of blobs, pixel indices, background there)``.
    """
    h, w = work.shape
    sigma = bg.sigma
    if opts.matched_filter_sigma is not None:
        kernel = _gaussian_kernel(opts.matched_filter_sigma)
        det = _smooth(work, kernel)
        # noise of the filtered image; a linear background passes unchanged
        thr = opts.sigma_threshold * sigma * float(np.sum(kernel.astype(np.float64) ** 2))
    else:
        det = work
        thr = opts.sigma_threshold * sigma
    if noise is not None:
        # a noise map: pre-select at the quietest pixel's threshold, then per pixel
        floor = thr / sigma * float(np.nanmin(noise)) if np.isfinite(noise).any() else thr
        idx, idx_bg = _candidate_pixels(det, bg, max(floor, 0.0))
        keep = _noise_cut(det, idx, idx_bg, noise, thr / sigma)
        idx, idx_bg = idx[keep], idx_bg[keep]
    else:
        idx, idx_bg = _candidate_pixels(det, bg, thr)
    if bad is not None and len(idx):
        good = ~bad.ravel()[idx]
        idx, idx_bg = idx[good], idx_bg[good]
    if len(idx) == 0:
        return thr, None, 0, idx, idx_bg
    mask = np.zeros(h * w, dtype=bool)
    mask[idx] = True
    mask = mask.reshape(h, w)
    eight = np.ones((3, 3), dtype=bool)
    try:  # 16-bit labels halve the memory traffic of labelling a big frame
        labels, nblobs = ndimage.label(mask, structure=eight, output=np.uint16)
    except RuntimeError:  # more than 65535 blobs
        labels, nblobs = ndimage.label(mask, structure=eight)
    return thr, labels, nblobs, idx, idx_bg


def _stars(work, bad, bg, labels, meas, thr, opts: ExtractionOptions):
    """The kept blobs, brightest first, and their positions: ``(ids, col, row, fitted)``."""
    h, w = work.shape
    keep = _select(meas, h, w, min_pixels=opts.min_pixels, max_pixels=opts.max_pixels,
                   max_elongation=opts.max_elongation, max_sharpness=opts.max_sharpness,
                   border_margin=opts.border_margin)
    blob_ids = np.flatnonzero(keep)
    if opts.deblend == "reject" and len(blob_ids):
        blob_ids = blob_ids[~_blended(work, bg, labels, meas, blob_ids, bg.sigma, thr)]
    # brightest first, then cut before the (relatively costly) position fit, with
    # a margin for the stars the width test below may still drop
    blob_ids = blob_ids[np.argsort(-meas["flux"][blob_ids], kind="stable")]
    n_max = opts.max_centroids
    if n_max is not None:
        blob_ids = blob_ids[:n_max + n_max // 5 + 10]
    col = meas["cx"][blob_ids].copy()
    row = meas["cy"][blob_ids].copy()
    fitted = np.zeros(len(blob_ids), dtype=bool)
    if opts.fit_positions and len(blob_ids):
        fit_col, fit_row, ok, fsx, fsy, free = _fit_positions(work, labels, bad, meas,
                                                              blob_ids, bg.sigma)
        col = np.where(ok, fit_col, col)
        row = np.where(ok, fit_row, row)
        fitted = ok
        if opts.reject_cosmic_rays:
            narrow = _narrow_blobs(meas, blob_ids, ok & free, fsx, fsy)
            blob_ids, col, row, fitted = (v[~narrow] for v in (blob_ids, col, row, fitted))
    if n_max is not None:
        blob_ids, col, row, fitted = (v[:n_max] for v in (blob_ids, col, row, fitted))
    return blob_ids, col, row, fitted


def extract(image: ArrayLike, options: ExtractionOptions) -> ExtractionResult:
    """Detect stars in ``image`` with ``options`` (see :func:`extract_centroids`)."""
    arr, mask, noise = _check_image(image)
    h, w = arr.shape
    work, bad = _finite_work(arr, mask)
    if work is None:
        return _empty_result(h, w, float("nan"), float("nan"), float("nan"))
    bg = _noise(work, arr, options.local_bg_block_size)
    sigma = bg.sigma
    if not (np.isfinite(sigma) and sigma > 0):
        return _empty_result(h, w, bg.mean, 0.0 if np.isfinite(sigma) else sigma, float("nan"))
    sat_level = options.saturation_level
    if sat_level == "auto":
        sat_level = _auto_saturation(work, bg.mean, sigma)
    if noise is not None:
        bad = _bad_noise(noise, bad)
        sigma = bg.sigma = float(np.median(noise[~bad])) if not bad.all() else sigma
    thr, labels, nblobs, idx, idx_bg = _blobs(work, bad, bg, options, noise)
    if nblobs == 0:
        return _empty_result(h, w, bg.mean, sigma, thr)
    meas = _measure_blobs(work, bg, labels, idx, idx_bg, nblobs, bad, sat_level,
                          need_bbox=options.border_margin > 0)
    blob_ids, col, row, fitted = _stars(work, bad, bg, labels, meas, thr, options)
    cov = np.empty((len(blob_ids), 2, 2))
    cov[:, 0, 0] = meas["cxx"][blob_ids]
    cov[:, 1, 1] = meas["cyy"][blob_ids]
    cov[:, 0, 1] = cov[:, 1, 0] = meas["cxy"][blob_ids]
    return ExtractionResult._from_arrays(
        col + 0.5 - w / 2.0, row + 0.5 - h / 2.0, meas["flux"][blob_ids], cov,
        image_width=w, image_height=h, background_mean=bg.mean, background_sigma=sigma,
        threshold=thr, num_blobs_raw=nblobs, saturated=meas["saturated"][blob_ids],
        npix=meas["npix"][blob_ids], peak=meas["peak"][blob_ids], fitted=fitted)


EXTRACT_DOC = """Detect stars in an image and measure their sub-pixel centroids.

Parameters
----------
image : array_like, shape (H, W)
    Any integer or floating dtype (float64, float32, uint16, int16, uint8, ...).
    NaN and inf pixels are ignored: never part of a star, never used in a fit;
    masked pixels likewise. Also a ``numpy.ma.MaskedArray``, an astropy
    ``NDData``/``CCDData`` (its ``mask`` honoured; its ``uncertainty``, when
    given, is the noise map: the threshold is ``sigma_threshold`` times each
    pixel's own noise), an image HDU or ``HDUList`` (the first image), or a
    ``Quantity`` (unit dropped).
{parameters}
options : ExtractionOptions, optional
    All of the above as one object; keyword arguments given as well override
    its values.

Returns
-------
ExtractionResult
    Centroids brightest first, with image and background statistics. A blank
    (constant or all-NaN) image gives an empty result.

Raises
------
InvalidTypeError
    ``image`` is not numeric, or a parameter has the wrong type.
InvalidArgumentError
    ``image`` is not 2-D or is empty, or a parameter is out of range.
"""


@with_options(ExtractionOptions, ("image",), EXTRACT_DOC)
def extract_centroids(image: ArrayLike, options: ExtractionOptions) -> ExtractionResult:
    return extract(image, options)
