"""The quick extraction: :func:`extract_centroids_fast`, tetra3rs's "fast" signature.

tetra3rs 0.14 has a second extraction function with its own argument order and
defaults, a coarse background grid and no sub-pixel fit ("adequate for a star
tracker", about 0.1 px). skysolve gives it the same signature and a lean pipeline
of its own, for frames that need none of the full extractor's repairs:

1. **Sky.** The frame is cut into ``bg_grid`` px blocks (``None`` or 0: one block).
   A block's level is the median of a ``k x k`` lattice of its pixels
   (:data:`_LATTICE`; ``k`` no more than the block's width), spread evenly over
   it, so a few stars in a block move it little. Between the block centres the
   sky is bilinear in the levels, and constant beyond the outermost centres.
2. **Noise.** One sigma for the frame, from the lattice samples' deviations from
   the sky there: the distance from their median down to their lower quartile,
   over ``0.6745`` (Gaussian noise: the standard deviation). The lower half, as
   the sky's own noise, is what faint stars among the samples leave alone; on a
   crowded frame the median absolute deviation came out 20 % high. On quantised
   data whose deviation is within a couple of steps, where the quartiles are
   coarse, the rms of the samples within :data:`_CLIP` such deviations is taken
   instead, and never less than half a step (as the full extractor floors it). A
   camera's step is the greatest common divisor of the differences of a few
   hundred lattice samples (1, or ``2^s`` for counts shifted up by ``s`` bits).
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
   second moments (no PSF divided out). A blob with a pixel at or above
   ``saturation_level`` is flagged saturated and kept. Lines of burned-in text (a
   finder's or an all-sky camera's caption: bright flat blobs side by side along a
   row) are dropped as the full extractor drops them (:func:`.overlay.overlay_blobs`,
   with the blobs that reach the frame's brightest value as its saturated ones);
   other drawn graphics (compass letters, logos, reticles) are not looked for, nor
   the single strokes of anti-aliased grey text that the full extractor finds by
   their one value.

Positions are intensity centroids over the pixels above the threshold: a few
hundredths of a pixel on well-sampled stars, against the fits' thousandths.
Frames the lean pipeline cannot judge go to the full extractor with its fits and
matched filter switched off (``fit_positions=False``, ``matched_filter_sigma=None``,
``deblend='off'``): masked images or images with a noise map, NaN or infinite
pixels, ``saturation_level='auto'``, and noise-free (rendered) frames. The full
extractor's repairs -- JPEG block grids, row banding, colour mosaics, image circles,
dark constant areas, trails, drawn graphics -- are what the quick path leaves out;
:func:`extract_centroids` has them.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _threads
from ..centroids import ExtractionResult
from .blobs import _blob_sums
from .extract import _ONE_THREAD_PIXELS, _check_image, _quantum, _rejected, extract
from .filters import _elongation, _moments, basic_reasons, code
from .kernels import backend, compiled, thread_count
from .linking import label_pixels
from .options import ExtractionOptions
from .overlay import overlay_blobs

__all__ = ["extract_centroids_fast"]

#: Lattice samples per block side (at most the block's width): 64 samples a block.
_LATTICE = 8
#: ... and per frame side when the sky is one level (``bg_grid`` None or 0).
_GLOBAL_LATTICE = 64
#: How far below the median a Gaussian's lower quartile lies, in standard deviations.
_LOWER_QUARTILE = 0.6745
#: A deviation within this many of the data's steps is measured by the clipped rms.
_COARSE_STEPS = 2.0
#: ... which keeps the samples within this many median-based sigmas (at least 3 steps).
_CLIP = 5.0
#: Lattice samples whose differences' divisor is a camera's value step.
_STEP_SAMPLES = 512
#: Fewest rows per band of the candidate pass worth handing to another thread.
_BAND_ROWS = 256
#: The camera types the candidate pass reads as they are; others are read as float64.
_READ_AS_IS = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


def _lattice(n: int, block: int, k: int) -> NDArray[np.intp]:
    """The lattice rows (or columns) of ``n`` pixels cut into ``block`` px blocks: ``k``
    per block, spread evenly over it, the last block's clamped to the frame."""
    nb = -(-n // block)
    offsets = ((np.arange(k) + 0.5) * (block / k)).astype(np.intp)
    return np.minimum((np.arange(nb)[:, None] * block + offsets).ravel(), n - 1)


def _block_medians(samples: NDArray, k: int) -> NDArray[np.float64]:
    """The median of each ``k x k`` block of the lattice ``samples``: ``(ny, nx)``
    (compiled twin: :func:`.kernels.lattice_levels`)."""
    ny, nx = samples.shape[0] // k, samples.shape[1] // k
    blocks = samples.astype(np.float64).reshape(ny, k, nx, k).transpose(0, 2, 1, 3)
    return np.median(blocks.reshape(ny, nx, k * k), axis=2)


def _levels(img: NDArray, block: int, k: int) -> tuple[NDArray[np.float64], tuple]:
    """The block levels ``(ny, nx)`` (medians of each block's ``k x k`` lattice) and the
    lattice: ``(samples (rows x columns), rows, columns)``."""
    h, w = img.shape
    rows, cols = _lattice(h, block, k), _lattice(w, block, k)
    # (whole rows first, then their columns: a tenth of the time of a 2-D gather)
    samples = img.take(rows, axis=0).take(cols, axis=1)
    return (compiled("lattice_levels") or _block_medians)(samples, k), (samples, rows, cols)


def _lattice_sky(grid: NDArray[np.float64], weights_r: tuple, weights_c: tuple,
                 rows: NDArray[np.intp], cols: NDArray[np.intp]) -> NDArray[np.float64]:
    """The sky on the lattice ``rows x cols``: bilinear, as :func:`_candidates` has it (to
    rounding), as the product of each axis's interpolation matrix with the levels."""
    def along(weights: tuple, at: NDArray[np.intp], nb: int) -> NDArray[np.float64]:
        i0, i1, t0, t1 = (a[at] for a in weights)
        m = np.zeros((len(at), nb))
        m[np.arange(len(at)), i0] = t0
        m[np.arange(len(at)), i1] += t1
        return m

    ny, nx = grid.shape
    return along(weights_r, rows, ny) @ grid @ along(weights_c, cols, nx).T


def _step(samples: NDArray) -> float:
    """The value step of a camera's integers, from the lattice: the greatest common
    divisor of the differences of a few hundred samples (1 when they are all equal)."""
    some = samples.ravel()[:: max(1, samples.size // _STEP_SAMPLES)].astype(np.int64)
    return float(np.gcd.reduce(some - some.min())) or 1.0


def _sigma(resid: NDArray[np.float64], quantum: float | None) -> float:
    """The frame's noise sigma from the samples' deviations (see the module notes)."""
    n = len(resid)
    lower, mid = np.partition(resid, (n // 4, n // 2))[[n // 4, n // 2]]
    sigma = (mid - lower) / _LOWER_QUARTILE
    dev = np.abs(resid - mid)
    if quantum is not None:
        if sigma < _COARSE_STEPS * quantum:
            near = (resid - mid)[dev <= max(_CLIP * sigma, 3.0 * quantum)]
            sigma = math.sqrt(float(np.mean(near * near))) if len(near) else 0.0
        sigma = max(sigma, 0.5 * quantum)
    return sigma


def _weights(n: int, block: int, nb: int) -> tuple[NDArray[np.intp], NDArray[np.intp],
                                                     NDArray[np.float64], NDArray[np.float64]]:
    """Per pixel row (or column) of ``n``: the two block levels the sky is interpolated
    between and their weights (bilinear between block centres, constant beyond)."""
    f = np.clip((np.arange(n) + 0.5) / block - 0.5, 0.0, nb - 1.0)
    i0 = np.minimum(f.astype(np.intp), nb - 1)
    i1 = np.minimum(i0 + 1, nb - 1)
    t = f - i0
    return i0, i1, 1.0 - t, t


def _candidates(img, grid, ri0, ri1, rt0, rt1, cj0, cj1, cu0, cu1, limit, r0, r1):
    """The pixels of rows ``r0:r1`` (finite) more than ``limit`` above the sky: ``(flat
    indices, value less the sky)`` (compiled twin: :func:`.kernels.sky_candidates`)."""
    level = grid[ri0[r0:r1]] * rt0[r0:r1, None] + grid[ri1[r0:r1]] * rt1[r0:r1, None]
    d = img[r0:r1].astype(np.float64) - (level[:, cj0] * cu0 + level[:, cj1] * cu1)
    idx = np.flatnonzero(d > limit)
    return idx + r0 * img.shape[1], d.ravel()[idx]


def _sky_at(grid, weights_r, weights_c, rows, cols) -> NDArray[np.float64]:
    """The sky at pixels ``(rows, cols)``, as :func:`_candidates` has it."""
    ri0, ri1, rt0, rt1 = (a[rows] for a in weights_r)
    cj0, cj1, cu0, cu1 = (a[cols] for a in weights_c)
    left = grid[ri0, cj0] * rt0 + grid[ri1, cj0] * rt1
    right = grid[ri0, cj1] * rt0 + grid[ri1, cj1] * rt1
    return left * cu0 + right * cu1


def _sharpness(img, pr, pc, peak, sky) -> NDArray[np.float64]:
    """``(peak - mean of the in-image 8 neighbours) / peak``, above the ``sky`` at the
    peak."""
    h, w = img.shape
    offs = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])
    nr, nc = pr[:, None] + offs[:, 0], pc[:, None] + offs[:, 1]
    inside = (nr >= 0) & (nr < h) & (nc >= 0) & (nc < w)
    near = img[np.clip(nr, 0, h - 1), np.clip(nc, 0, w - 1)].astype(np.float64)
    near -= sky[:, None]
    cnt = inside.sum(axis=1)
    mean = np.where(cnt > 0, np.where(inside, near, 0.0).sum(axis=1) / np.maximum(cnt, 1), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, (peak - mean) / peak, np.inf)


def _quick(arr: NDArray, options: ExtractionOptions) -> ExtractionResult | None:
    """The lean pipeline of the module notes on checked pixels ``arr``; None for a frame
    it cannot judge (NaN or infinite pixels, no noise)."""
    h, w = arr.shape
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        return None  # (then neither the levels nor the candidates hold a NaN)
    img = arr if arr.dtype in _READ_AS_IS else arr.astype(np.float64)
    block = options.local_bg_block_size
    k = _LATTICE if block else _GLOBAL_LATTICE
    block = block or max(h, w)
    grid, (samples, rows, cols) = _levels(img, block, min(k, block))
    weights_r, weights_c = _weights(h, block, grid.shape[0]), _weights(w, block, grid.shape[1])
    # (the deviations from the sky itself: from a block's level, a steep sky's slope
    # across the block would count as noise)
    sigma = _sigma((samples - _lattice_sky(grid, weights_r, weights_c, rows, cols)).ravel(),
                   _step(samples) if arr.dtype.kind in "iu" else _quantum(arr))
    if not (math.isfinite(sigma) and sigma > 0):
        return None
    limit = options.sigma_threshold * sigma
    kernel = compiled("sky_candidates")
    parts = _threads.run_chunks(
        lambda r0, r1: (kernel or _candidates)(img, grid, *weights_r, *weights_c, limit, r0,
                                               r1),
        _threads.split(h, thread_count(), _BAND_ROWS))
    idx, val = (np.concatenate([p[q] for p in parts]) for q in (0, 1))
    lab, nblobs = (compiled("label_pixels") or label_pixels)(idx, w)
    n = nblobs + 1
    sums = compiled("blob_sums")
    if sums is not None:
        rows, cols = np.divmod(idx, w)
        npix, flux, peak, pr, pc, sw, mx, my, cxx, cyy, cxy = sums(lab, rows, cols, val, n)
    else:
        npix, flux, peak, pr, pc, sw, mx, my, cxx, cyy, cxy = _blob_sums(lab, idx, val, n, w)
        rows, cols = np.divmod(idx, w)
    sky = _sky_at(grid, weights_r, weights_c, pr, pc)
    sat_level = options.saturation_level
    saturated = (np.zeros(n, bool) if sat_level is None else
                 np.bincount(lab, weights=img.ravel()[idx] >= float(sat_level), minlength=n) > 0)
    meas = {"npix": npix, "flux": flux, "peak": peak, "sumw": sw, "cx": pc + mx,
            "cy": pr + my, "cxx": cxx, "cyy": cyy, "pr": pr, "pc": pc, "bg_peak": sky,
            "sigma": np.broadcast_to(sigma, (n,)), "saturated": saturated,
            "sharpness": _sharpness(img, pr, pc, peak, sky)}
    if options.border_margin > 0:
        for key, fn, start in (("rmin", np.minimum, h), ("rmax", np.maximum, -1),
                               ("cmin", np.minimum, w), ("cmax", np.maximum, -1)):
            meas[key] = np.full(n, start, dtype=np.intp)
            fn.at(meas[key], lab, rows if key[0] == "r" else cols)
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
    reason[kept[overlay_blobs(meas, kept, limit, (h, w))]] = code("overlay")
    meas["saturated"] = saturated
    ids = np.flatnonzero(reason == 0)
    ids = ids[np.argsort(-flux[ids], kind="stable")][:options.max_centroids]
    cov = np.empty((len(ids), 2, 2))
    cov[:, 0, 0], cov[:, 1, 1] = cxx[ids], cyy[ids]
    cov[:, 0, 1] = cov[:, 1, 0] = cxy[ids]
    sat = saturated[ids]
    return ExtractionResult._from_arrays(
        meas["cx"][ids] + 0.5 - w / 2.0, meas["cy"][ids] + 0.5 - h / 2.0, flux[ids], cov,
        image_width=w, image_height=h, background_mean=float(np.mean(grid)),
        background_sigma=sigma, threshold=limit, num_blobs_raw=nblobs, saturated=sat,
        npix=npix[ids], peak=peak[ids], fitted=np.zeros(len(ids), bool),
        flags=np.where(sat, "saturated", "star"), rejected=_rejected(meas, reason, h, w))


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
    notes: none of :func:`extract_centroids`'s repairs of JPEG blocks, banding,
    image circles or drawn graphics (captions are dropped), no fits and no
    matched filter.

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
